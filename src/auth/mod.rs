//! Credentials: staff passwords (argon2id) and signed tokens (JWT, HS256) for staff, subject
//! sessions and magic links.

pub mod password;
pub mod token;

pub use token::{StaffClaims, TokenError, TokenKeys};

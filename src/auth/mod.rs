//! Credentials: staff passwords (argon2id), one-time codes for the staff second factor (TOTP), and signed tokens (JWT, HS256) for staff, subject
//! sessions and magic links.

pub mod password;
pub mod signing;
pub mod token;
pub mod totp;

pub use token::{StaffClaims, TokenError, TokenKeys};

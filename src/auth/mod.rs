//! Credentials: staff passwords (argon2id), staff tokens (JWT, HS256) and the stop-gap subject
//! token that guards a request until identity verification arrives (issue #4).

pub mod password;
pub mod subject_token;
pub mod token;

pub use token::{StaffClaims, TokenError, TokenKeys};

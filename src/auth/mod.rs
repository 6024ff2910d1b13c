//! Credentials: staff passwords (argon2id), one-time codes for the staff second factor (TOTP), and signed tokens (JWT, HS256) for staff, subject
//! sessions and magic links.

pub mod password;
pub mod sealing;
pub mod signing;
pub mod token;
pub mod totp;
pub mod vault;

pub use token::{StaffClaims, TokenError, TokenKeys};

/// Compares two secrets (codes, tokens, keys) in constant time for their length.
pub fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

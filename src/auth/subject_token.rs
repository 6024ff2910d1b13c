//! STOP-GAP (replaced by identity verification and subject sessions, issue #4): a random
//! token handed to whoever submits a request, required to read it, reply or withdraw. Only its
//! SHA-256 is stored. It proves possession of the submission receipt, not identity.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 random bytes, hex-encoded (64 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.trim().as_bytes()))
}

/// Compares in time independent of where the first difference is.
pub fn matches(token: &str, stored_digest: &str) -> bool {
    let given = digest(token);
    given.len() == stored_digest.len()
        && given
            .bytes()
            .zip(stored_digest.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_issued_token_matches_its_digest() {
        let t = generate();
        assert_eq!(t.len(), 64);
        let d = digest(&t);
        assert!(matches(&t, &d));
        assert!(!matches(&generate(), &d));
        assert!(!matches("", &d));
    }
}

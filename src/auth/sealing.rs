//! Sealing data at rest: AES-256-GCM under a data key, one chunk at a time.
//!
//! Each sealed chunk is `nonce (12 random bytes) || ciphertext || tag`. The associated data
//! binds the chunk to its place (`"{blob}:{seq}:{last}"`), so chunks cannot be swapped between
//! files, reordered, or cut off at a chunk boundary without the opening failing: the STREAM
//! construction's guarantees with random nonces (a package of 1,000,000 rows is a few hundred
//! chunks; random 96-bit nonces are safe far beyond that under one key).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE: usize = 12;

/// A 256-bit data key and its id (stored beside every sealed value, so a rotated key can be
/// told from the current one).
#[derive(Clone)]
pub struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a data key is 64 hexadecimal digits (32 bytes)")]
    BadKey,
    #[error("sealed data does not open: altered, misplaced or under another key")]
    Open,
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("the index key must be at least 32 characters")]
    BadIndexKey,
}

impl DataKey {
    /// From 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<DataKey, SealError> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.trim().as_bytes())
            .map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        // The id names the key without revealing it: a hash under a fixed label.
        let id: String = Sha256::digest([b"rightsflow-data-key:".as_slice(), &bytes].concat())[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        Ok(DataKey { id, cipher })
    }

    /// A fresh random key (tests, benchmarks, a first start in development).
    pub fn generate_hex() -> String {
        let mut buf = [0u8; 32];
        rand::rng().fill_bytes(&mut buf);
        buf.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain`, bound to `place`.
    pub fn seal(&self, place: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: place.as_bytes(),
                },
            )
            // Only fails for inputs beyond GCM's limit (64 GiB); chunks are far smaller.
            .unwrap_or_default();
        [nonce.as_slice(), &sealed].concat()
    }

    /// Opens what [`seal`](Self::seal) made for the same `place`.
    pub fn open(&self, place: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

/// Where chunk `seq` of blob `blob` sits (`last`: the final chunk, so a cut-off file fails).
pub fn chunk_place(blob: &str, seq: i64, last: bool) -> String {
    format!("{blob}:{seq}:{}", u8::from(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_hex(&DataKey::generate_hex()).expect("a generated key is valid")
    }

    #[test]
    fn sealed_data_opens_only_in_its_place_and_under_its_key() {
        let k = key();
        let sealed = k.seal(&chunk_place("b1", 0, false), b"li.lei@example.com");
        assert!(!sealed
            .windows(b"li.lei".len())
            .any(|w| w == b"li.lei".as_slice()));
        assert_eq!(
            k.open(&chunk_place("b1", 0, false), &sealed)
                .expect("opens"),
            b"li.lei@example.com"
        );
        // Another place (blob, position, or the last-chunk flag), another key, one flipped bit.
        for place in [
            chunk_place("b2", 0, false),
            chunk_place("b1", 1, false),
            chunk_place("b1", 0, true),
        ] {
            assert!(k.open(&place, &sealed).is_err(), "{place}");
        }
        assert!(key().open(&chunk_place("b1", 0, false), &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(k.open(&chunk_place("b1", 0, false), &flipped).is_err());
        // The same text sealed twice reads differently (fresh nonce).
        assert_ne!(
            sealed,
            k.seal(&chunk_place("b1", 0, false), b"li.lei@example.com")
        );
    }

    #[test]
    fn keys_are_64_hex_digits_and_ids_are_stable() {
        assert!(DataKey::from_hex("abcd").is_err());
        assert!(DataKey::from_hex(&"zz".repeat(32)).is_err());
        let hex = DataKey::generate_hex();
        let (a, b) = (
            DataKey::from_hex(&hex).expect("valid"),
            DataKey::from_hex(&hex.to_uppercase()).expect("valid"),
        );
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 8);
        assert!(!hex.contains(a.id()));
    }
}

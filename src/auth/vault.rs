//! The keys personal data is kept under: the current data key (new values are sealed with it),
//! the keys it replaced (kept to open older values until `rightsflow keys rotate` has re-sealed
//! them), and the index key of the blind indexes (exact lookups by email or phone without
//! decrypting the table).
//!
//! A sealed text value is `enc1:<key id>:<base64 of nonce || ciphertext || tag>`; the associated
//! data binds it to its column and row (`requests.subject_email:<id>`), so a value copied into
//! another row or column does not open. A value without the prefix was written before
//! encryption existed and is read as it is, until rotation seals it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::sealing::{DataKey, SealError};

const PREFIX: &str = "enc1:";

/// What kind of value a blind index is of (the label keeps an email's index from matching a
/// phone number's).
#[derive(Debug, Clone, Copy)]
pub enum Blind {
    Email,
    Phone,
}

pub struct Vault {
    current: DataKey,
    previous: Vec<DataKey>,
    index: Vec<u8>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous: Vec<&str> = self.previous.iter().map(DataKey::id).collect();
        write!(
            f,
            "Vault(current {}, previous {previous:?})",
            self.current.id()
        )
    }
}

impl Vault {
    /// `index_key`: any secret of at least 32 characters (hex or not); it never changes once
    /// indexes are written (a new one would need every index computed again).
    pub fn new(
        current: DataKey,
        previous: Vec<DataKey>,
        index_key: &str,
    ) -> Result<Vault, SealError> {
        if index_key.trim().len() < 32 {
            return Err(SealError::BadIndexKey);
        }
        Ok(Vault {
            current,
            previous,
            index: index_key.trim().as_bytes().to_vec(),
        })
    }

    /// A vault with fresh random keys (tests, benchmarks).
    pub fn generate() -> Vault {
        let key = DataKey::from_hex(&DataKey::generate_hex()).unwrap_or_else(|_| unreachable!());
        Vault {
            current: key,
            previous: vec![],
            index: DataKey::generate_hex().into_bytes(),
        }
    }

    pub fn current(&self) -> &DataKey {
        &self.current
    }

    /// The configured key with this id, current or previous.
    pub fn key(&self, id: &str) -> Option<&DataKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id() == id)
    }

    /// Seals a text value for `place` (column and row) under the current key.
    pub fn seal_text(&self, place: &str, plain: &str) -> String {
        let sealed = self.current.seal(place, plain.as_bytes());
        format!(
            "{PREFIX}{}:{}",
            self.current.id(),
            data_encoding::BASE64_NOPAD.encode(&sealed)
        )
    }

    /// Opens what [`seal_text`](Self::seal_text) made for the same place, under whichever
    /// configured key sealed it; a value from before encryption (no prefix) as it is.
    pub fn open_text(&self, place: &str, stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, body) = rest.split_once(':').ok_or(SealError::Open)?;
        let key = self
            .key(id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let sealed = data_encoding::BASE64_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| SealError::Open)?;
        String::from_utf8(key.open(place, &sealed)?).map_err(|_| SealError::Open)
    }

    /// Whether a stored value is sealed under the current key already (rotation skips it).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(id, _)| id == self.current.id())
    }

    /// The stored prefix of values sealed under the current key (for SQL `LIKE`).
    pub fn current_prefix(&self) -> String {
        format!("{PREFIX}{}:", self.current.id())
    }

    /// The blind index of a value: keyed HMAC-SHA256 of its normalised form (emails compare
    /// without case, phone numbers as the domain normalised them), hex.
    pub fn blind(&self, kind: Blind, value: &str) -> String {
        let normalised = match kind {
            Blind::Email => format!("email:{}", value.trim().to_lowercase()),
            Blind::Phone => format!("phone:{}", value.trim()),
        };
        self.mac(normalised.as_bytes())
    }

    /// Keyed HMAC-SHA256 (hex) of a chain anchor under the index key: proves an anchor file kept
    /// outside the database was written by this deployment and not edited since. The prefix
    /// keeps it apart from every blind index ("email:", "phone:").
    pub fn anchor_mac(&self, body: &str) -> String {
        self.mac(format!("anchor:{body}").as_bytes())
    }

    /// Keyed HMAC-SHA256 (hex) of what a rate limit counts by (a client address, a request
    /// reference), so the shared counters hold neither. Its own prefix, as above.
    pub fn rate_key(&self, limiter: &str, key: &str) -> String {
        self.mac(format!("rate:{limiter}:{key}").as_bytes())
    }

    fn mac(&self, bytes: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.index) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(bytes);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_hex(&DataKey::generate_hex()).expect("a generated key is valid")
    }

    #[test]
    fn sealed_text_opens_in_its_place_under_current_or_previous_keys() {
        let old = key();
        let v1 = Vault::new(old.clone(), vec![], &"i".repeat(32)).expect("vault");
        let sealed = v1.seal_text("requests.subject_email:r1", "Li.Lei@example.com");
        assert!(!sealed.contains("Li.Lei") && !sealed.contains("example"));
        assert!(v1.is_current(&sealed));
        assert_eq!(
            v1.open_text("requests.subject_email:r1", &sealed)
                .expect("opens"),
            "Li.Lei@example.com"
        );
        // Another row or column: refused.
        assert!(v1.open_text("requests.subject_email:r2", &sealed).is_err());
        assert!(v1.open_text("requests.subject_phone:r1", &sealed).is_err());
        // After rotation the old value still opens, but is no longer current.
        let v2 = Vault::new(key(), vec![old], &"i".repeat(32)).expect("vault");
        assert!(!v2.is_current(&sealed));
        assert_eq!(
            v2.open_text("requests.subject_email:r1", &sealed)
                .expect("opens under the previous key"),
            "Li.Lei@example.com"
        );
        // Without the old key it names the key it needs.
        let v3 = Vault::new(key(), vec![], &"i".repeat(32)).expect("vault");
        assert!(matches!(
            v3.open_text("requests.subject_email:r1", &sealed),
            Err(SealError::UnknownKey(id)) if id == v1.current().id()
        ));
        // Values from before encryption read as they are.
        assert_eq!(
            v2.open_text("x:1", "{\"a\":1}").expect("plain"),
            "{\"a\":1}"
        );
        assert!(!v2.is_current("{\"a\":1}"));
    }

    #[test]
    fn blind_indexes_match_normalised_values_only_under_the_same_index_key() {
        let v = Vault::new(key(), vec![], &"a".repeat(40)).expect("vault");
        let w = Vault::new(key(), vec![], &"b".repeat(40)).expect("vault");
        assert_eq!(
            v.blind(Blind::Email, "Li.Lei@Example.com"),
            v.blind(Blind::Email, " li.lei@example.com")
        );
        assert_ne!(
            v.blind(Blind::Email, "li.lei@example.com"),
            v.blind(Blind::Email, "han.mei@example.com")
        );
        assert_ne!(
            v.blind(Blind::Email, "+8613800000000"),
            v.blind(Blind::Phone, "+8613800000000")
        );
        assert_ne!(
            v.blind(Blind::Email, "li.lei@example.com"),
            w.blind(Blind::Email, "li.lei@example.com")
        );
        assert!(Vault::new(key(), vec![], "short").is_err());
    }
}

//! The reference a subject quotes: `DSR-XXXX-XXXX`, eight symbols of Crockford's base-32
//! alphabet (no I, L, O or U, so it reads aloud and copies by hand without confusion). 40 bits
//! from a cryptographic RNG make it hard to guess; it is still not a secret on its own.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reference(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a request reference (expected DSR-XXXX-XXXX)")]
pub struct InvalidReference;

impl Reference {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut symbols = [0u8; 8];
        for s in &mut symbols {
            *s = ALPHABET[rng.random_range(0..ALPHABET.len())];
        }
        let text = String::from_utf8_lossy(&symbols).into_owned();
        Reference(format!("DSR-{}-{}", &text[..4], &text[4..]))
    }

    /// Accepts any case, with or without the dashes and the `DSR` prefix, and maps the
    /// look-alikes Crockford allows (O→0, I/L→1).
    pub fn parse(raw: &str) -> Result<Self, InvalidReference> {
        let upper = raw.trim().to_ascii_uppercase();
        let body = upper.strip_prefix("DSR").unwrap_or(&upper);
        let mut symbols = String::with_capacity(8);
        for c in body.chars() {
            let c = match c {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(InvalidReference);
            }
            symbols.push(c);
        }
        if symbols.len() != 8 {
            return Err(InvalidReference);
        }
        Ok(Reference(format!(
            "DSR-{}-{}",
            &symbols[..4],
            &symbols[4..]
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reference {
    type Error = InvalidReference;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Reference::parse(&value)
    }
}

impl From<Reference> for String {
    fn from(value: Reference) -> Self {
        value.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_references_parse_back_and_differ() {
        let a = Reference::generate();
        assert_eq!(Reference::parse(a.as_str()), Ok(a.clone()));
        assert_eq!(a.as_str().len(), 13);
        let many: std::collections::HashSet<_> = (0..1000).map(|_| Reference::generate()).collect();
        assert_eq!(many.len(), 1000);
    }

    #[test]
    fn parsing_is_forgiving_of_case_dashes_and_look_alikes() {
        let want = Reference::parse("DSR-7K2Q-9XPM").map(String::from);
        assert_eq!(want, Ok("DSR-7K2Q-9XPM".to_owned()));
        assert_eq!(Reference::parse("dsr7k2q9xpm").map(String::from), want);
        assert_eq!(
            Reference::parse("DSR-OOIL-0000").map(String::from),
            Ok("DSR-0011-0000".to_owned())
        );
        for bad in [
            "",
            "DSR-7K2Q-9XP",
            "DSR-7K2Q-9XPMM",
            "DSR-7K2Q-9XPU",
            "DSR-数据-9XPM",
        ] {
            assert_eq!(Reference::parse(bad), Err(InvalidReference), "{bad}");
        }
    }
}

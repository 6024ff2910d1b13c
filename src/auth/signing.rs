//! Signatures on the calls Rightsflow makes to other systems (the SMS gateway, the consent
//! webhook, HTTP data systems) and on what data systems send back (answers, callbacks):
//! `X-Rightsflow-Timestamp` and `X-Rightsflow-Signature`, the hex HMAC-SHA256 over
//! `"{timestamp}.{body}"`, so the receiver can check origin and freshness (reject old
//! timestamps) before acting on anything.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm cannot run.
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How far a signed message's timestamp may be from our clock, either way (seconds): older
/// messages are refused as possible replays.
pub const MAX_SKEW_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the message is not signed (X-Rightsflow-Timestamp and X-Rightsflow-Signature)")]
    Missing,
    #[error("the signature's timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks a signed message: its timestamp within [`MAX_SKEW_SECONDS`] of `now`, and its
/// signature made by any of `secrets` (several while a secret is being rotated), compared in
/// constant time.
pub fn verify(
    secrets: &[String],
    timestamp: Option<&str>,
    signature_hex: Option<&str>,
    body: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(given)) = (timestamp, signature_hex) else {
        return Err(SignatureError::Missing);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Missing)?;
    if (now - ts).abs() > MAX_SKEW_SECONDS {
        return Err(SignatureError::Stale);
    }
    let given = given.trim().to_ascii_lowercase();
    if secrets
        .iter()
        .any(|secret| super::equal(&signature(secret, ts, body), &given))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::{signature, verify, SignatureError};

    #[test]
    fn verification_takes_any_current_secret_within_five_minutes() {
        let secrets = vec![
            "old-secret-0123456789abcdef".to_owned(),
            "new-secret-0123456789abcdef".to_owned(),
        ];
        let sig = signature(&secrets[1], 1000, "{}");
        assert_eq!(
            verify(&secrets, Some("1000"), Some(&sig), "{}", 1200),
            Ok(())
        );
        assert_eq!(
            verify(&secrets, Some("1000"), Some(&sig.to_uppercase()), "{}", 700),
            Ok(())
        );
        assert_eq!(
            verify(&secrets, Some("1000"), Some(&sig), "{}", 1301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&secrets, Some("1000"), Some(&sig), "{ }", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets[..1], Some("1000"), Some(&sig), "{}", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secrets, None, Some(&sig), "{}", 1000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(&secrets, Some("soon"), Some(&sig), "{}", 1000),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn signatures_depend_on_secret_time_and_body() {
        let a = signature("0123456789abcdef", 1, "{}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, signature("0123456789abcdeX", 1, "{}"));
        assert_ne!(a, signature("0123456789abcdef", 2, "{}"));
        assert_ne!(a, signature("0123456789abcdef", 1, "{ }"));
    }
}

//! Signed messages: base64 of a 64-byte Ed25519 signature followed by the JSON it signs
//! (libsodium's "combined mode"), sent as `text/plain`. Checked in the order DRP 1.0 §3.07
//! gives: it decodes, the signature holds under the agent's verify key, the agent named in it
//! is the agent the token (or the path) names, the business is us, it was issued in the past
//! and expires in the future. The first check that fails is the answer.

use chrono::{DateTime, NaiveDateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey, SIGNATURE_LENGTH};
use serde_json::{Map, Value};

/// Why a signed message was refused, in the order of the checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the body is not base64 of a signature followed by a message")]
    Encoding,
    #[error("the signature does not verify with the agent's key")]
    Signature,
    #[error("the signed message is not a JSON object with the required claims: {0}")]
    Claims(String),
    #[error("agent-id in the message is not the agent of the token")]
    WrongAgent,
    #[error("business-id in the message is not this business")]
    WrongBusiness,
    #[error("issued-at lies in the future")]
    NotYetIssued,
    #[error("expires-at has passed")]
    Expired,
}

impl Refusal {
    /// The stable error code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Encoding => "invalid_encoding",
            Refusal::Signature => "bad_signature",
            Refusal::Claims(_) => "invalid_claims",
            Refusal::WrongAgent => "wrong_agent",
            Refusal::WrongBusiness => "wrong_business",
            Refusal::NotYetIssued => "not_yet_issued",
            Refusal::Expired => "expired",
        }
    }

    /// 400 for what cannot be read, 403 for what is read and not trusted.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::Encoding | Refusal::Claims(_) => 400,
            _ => 403,
        }
    }
}

/// A verify key as agents register it: base64 of the 32-byte Ed25519 public key.
pub fn parse_verify_key(b64: &str) -> Result<VerifyingKey, String> {
    let bytes = data_encoding::BASE64
        .decode(b64.trim().as_bytes())
        .map_err(|_| "the verify key is not base64".to_owned())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "the verify key must be 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key".to_owned())
}

/// Decodes the body and checks its signature; returns the signed bytes.
pub fn open(body: &[u8], key: &VerifyingKey) -> Result<Vec<u8>, Refusal> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = data_encoding::BASE64
        .decode(&text)
        .map_err(|_| Refusal::Encoding)?;
    if raw.len() < SIGNATURE_LENGTH {
        return Err(Refusal::Encoding);
    }
    let (sig, message) = raw.split_at(SIGNATURE_LENGTH);
    let sig: [u8; SIGNATURE_LENGTH] = sig.try_into().map_err(|_| Refusal::Encoding)?;
    key.verify_strict(message, &Signature::from_bytes(&sig))
        .map_err(|_| Refusal::Signature)?;
    Ok(message.to_vec())
}

/// Signs `message` in combined mode and encodes it: what we send (callbacks) and what an agent
/// sends us.
pub fn seal(message: &[u8], key: &SigningKey) -> String {
    let mut buf = key.sign(message).to_bytes().to_vec();
    buf.extend_from_slice(message);
    data_encoding::BASE64.encode(&buf)
}

/// An ISO 8601 instant: RFC 3339, or without an offset (read as UTC, as Python's
/// `isoformat()` writes it).
pub fn parse_instant(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn claim<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, Refusal> {
    m.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Claims(format!("{name} is missing or not a string")))
}

fn instant(m: &Map<String, Value>, name: &str) -> Result<DateTime<Utc>, Refusal> {
    parse_instant(claim(m, name)?)
        .ok_or_else(|| Refusal::Claims(format!("{name} is not an ISO 8601 timestamp")))
}

/// Checks the signed message's claims after its signature: agent, business, times. Returns
/// the whole message.
pub fn check_claims(
    message: &[u8],
    agent_id: &str,
    business_id: &str,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, Refusal> {
    let m: Map<String, Value> = serde_json::from_slice(message)
        .map_err(|e| Refusal::Claims(format!("not a JSON object: {e}")))?;
    if claim(&m, "agent-id")? != agent_id {
        return Err(Refusal::WrongAgent);
    }
    if claim(&m, "business-id")? != business_id {
        return Err(Refusal::WrongBusiness);
    }
    if instant(&m, "issued-at")? > now {
        return Err(Refusal::NotYetIssued);
    }
    if instant(&m, "expires-at")? <= now {
        return Err(Refusal::Expired);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn message(agent: &str, business: &str, issued: i64, expires: i64) -> Vec<u8> {
        let now = Utc::now();
        json!({
            "agent-id": agent, "business-id": business,
            "issued-at": (now + Duration::seconds(issued)).to_rfc3339(),
            "expires-at": (now + Duration::seconds(expires)).to_rfc3339(),
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn checks_run_in_the_specifications_order() {
        let (agent, other) = (key(1), key(2));
        let vk = agent.verifying_key();
        let check = |body: &str| {
            open(body.as_bytes(), &vk)
                .and_then(|m| check_claims(&m, "AGENT", "BIZ", Utc::now()).map(|_| ()))
        };
        let good = seal(&message("AGENT", "BIZ", -5, 300), &agent);
        assert_eq!(check(&good), Ok(()));
        assert_eq!(check("not base64!"), Err(Refusal::Encoding));
        assert_eq!(check("AAAA"), Err(Refusal::Encoding));
        // Everything else wrong too: the signature is checked first.
        let forged = seal(&message("OTHER", "X", 60, -60), &other);
        assert_eq!(check(&forged), Err(Refusal::Signature));
        let wrong_agent = seal(&message("OTHER", "X", 60, -60), &agent);
        assert_eq!(check(&wrong_agent), Err(Refusal::WrongAgent));
        let wrong_business = seal(&message("AGENT", "X", 60, -60), &agent);
        assert_eq!(check(&wrong_business), Err(Refusal::WrongBusiness));
        let early = seal(&message("AGENT", "BIZ", 60, 120), &agent);
        assert_eq!(check(&early), Err(Refusal::NotYetIssued));
        let late = seal(&message("AGENT", "BIZ", -120, -60), &agent);
        assert_eq!(check(&late), Err(Refusal::Expired));
        let not_json = seal(b"[1,2]", &agent);
        assert_eq!(
            check(&not_json).map_err(|e| e.code()),
            Err("invalid_claims")
        );
    }

    #[test]
    fn a_changed_byte_breaks_the_signature() {
        let agent = key(3);
        let sealed = seal(&message("AGENT", "BIZ", -5, 300), &agent);
        let mut raw = data_encoding::BASE64
            .decode(sealed.as_bytes())
            .unwrap_or_default();
        let last = raw.len() - 2;
        raw[last] ^= 1;
        let tampered = data_encoding::BASE64.encode(&raw);
        assert_eq!(
            open(tampered.as_bytes(), &agent.verifying_key()),
            Err(Refusal::Signature)
        );
    }

    #[test]
    fn instants_with_and_without_offsets() {
        assert!(parse_instant("2026-11-30T03:00:00Z").is_some());
        assert!(parse_instant("2026-11-30T03:00:00.123456+08:00").is_some());
        assert_eq!(
            parse_instant("2026-11-30T03:00:00.5"),
            parse_instant("2026-11-30T03:00:00.5Z")
        );
        assert!(parse_instant("yesterday").is_none());
    }

    #[test]
    fn verify_keys_are_base64_of_32_bytes() {
        let vk = data_encoding::BASE64.encode(key(4).verifying_key().as_bytes());
        assert!(parse_verify_key(&vk).is_ok());
        assert!(parse_verify_key("AAAA").is_err());
        assert!(parse_verify_key("%%").is_err());
    }
}

//! Staff bearer tokens: short-lived HS256 JWTs naming the staff member and role. The role in
//! the token is a hint for clients; the server re-reads the account on every request, so a
//! disabled account or a changed role takes effect at once.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::Role;

pub const ISSUER: &str = "rightsflow";
const AUDIENCE: &str = "rightsflow-staff";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffClaims {
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the signing key is unusable: {0}")]
    Key(String),
    #[error("the token is invalid or expired")]
    Invalid,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime: Duration,
    /// For `keyed_hash`: the secret hashed with a purpose label, so it is never the signing key
    /// itself.
    hash_key: Vec<u8>,
}

impl TokenKeys {
    pub fn new(secret: &[u8], lifetime: Duration) -> Result<TokenKeys, TokenError> {
        if secret.len() < 32 {
            return Err(TokenError::Key(
                "the JWT secret must be at least 32 bytes".into(),
            ));
        }
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret)
                .map_err(|e| TokenError::Key(e.to_string()))?,
            decoding: DecodingKey::from_secret(secret)
                .map_err(|e| TokenError::Key(e.to_string()))?,
            lifetime,
            hash_key: {
                use sha2::Digest;
                sha2::Sha256::digest([b"rightsflow keyed hash:".as_slice(), secret].concat())
                    .to_vec()
            },
        })
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn issue(
        &self,
        staff_id: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<String, TokenError> {
        let claims = StaffClaims {
            sub: staff_id.to_owned(),
            role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: (now + self.lifetime).timestamp(),
        };
        self.sign(&claims)
    }

    /// A keyed hash (HMAC-SHA256, hex) with a key derived from the signing key, for values too
    /// short to hash plainly (a 6-digit code has a million possibilities).
    pub fn keyed_hash(&self, value: &str) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&self.hash_key) else {
            return String::new();
        };
        mac.update(value.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn verify(&self, token: &str) -> Result<StaffClaims, TokenError> {
        self.verify_claims(token, AUDIENCE)
    }

    /// Signs any claims with this key (HS256). The claims must carry `iss`, `aud` and `exp`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Key(e.to_string()))
    }

    /// Checks signature, issuer, `audience` and expiry, and returns the claims. Tokens for one
    /// purpose (staff, subject session, magic link) are refused for another by their audience.
    pub fn verify_claims<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<T, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience]);
        validation.leeway = 5;
        decode::<T>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_fail_when_expired_or_forged() {
        let keys =
            TokenKeys::new(&[7u8; 32], Duration::minutes(60)).unwrap_or_else(|e| panic!("{e}"));
        let t = keys
            .issue("s1", Role::Reviewer, Utc::now())
            .unwrap_or_else(|e| panic!("{e}"));
        let claims = keys.verify(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((claims.sub.as_str(), claims.role), ("s1", Role::Reviewer));
        let old = keys
            .issue("s1", Role::Admin, Utc::now() - Duration::hours(2))
            .unwrap_or_default();
        assert!(keys.verify(&old).is_err());
        let other =
            TokenKeys::new(&[8u8; 32], Duration::minutes(60)).unwrap_or_else(|e| panic!("{e}"));
        assert!(other.verify(&t).is_err());
        assert!(TokenKeys::new(b"short", Duration::minutes(1)).is_err());
    }
}

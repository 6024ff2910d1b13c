//! Staff bearer tokens: short-lived HS256 JWTs naming the staff member and role. The role in
//! the token is a hint for clients; the server re-reads the account on every request, so a
//! disabled account or a changed role takes effect at once.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::Role;

const ISSUER: &str = "rightsflow";
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
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Key(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<StaffClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        decode::<StaffClaims>(token, &self.decoding, &validation)
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

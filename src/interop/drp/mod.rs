//! The Data Rights Protocol 1.0 (Consumer Reports), the covered business's side:
//!
//! - `message.rs`: Ed25519 signatures in libsodium's combined mode, and the claims every
//!   signed message carries, checked in the order the specification gives;
//! - `status.rs`: our statuses and reasons as DRP's, and the status object;
//! - `exercise.rs`: DRP actions and identity claims as our request kinds and proofs;
//! - `service.rs`: agents, key set-up, requests, status, revoke;
//! - `callback.rs`: signed status callbacks to the agent, sent from the outbox.

pub mod callback;
pub mod exercise;
pub mod message;
pub mod service;
pub mod status;

/// The outbox kind of a status callback.
pub const DRP_CALLBACK: &str = "drp_callback";

/// What the DRP side needs from the configuration: who we are in the network and the key our
/// callbacks are signed with.
#[derive(Clone)]
pub struct DrpSettings {
    pub business_id: String,
    pub signing_key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for DrpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrpSettings")
            .field("business_id", &self.business_id)
            .field("signing_key", &"<redacted>")
            .finish()
    }
}

impl DrpSettings {
    /// From the configured business id and signing key (base64 of the 32-byte seed).
    pub fn from_config(business_id: &str, signing_key: &str) -> Result<DrpSettings, String> {
        let seed = data_encoding::BASE64
            .decode(signing_key.trim().as_bytes())
            .map_err(|_| "drp.signing_key is not base64".to_owned())?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| {
            "drp.signing_key must be 32 bytes (base64 of an Ed25519 seed)".to_owned()
        })?;
        if business_id.trim().is_empty() {
            return Err("drp.business_id is empty".into());
        }
        Ok(DrpSettings {
            business_id: business_id.trim().to_owned(),
            signing_key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Our verify key as agents register it: base64 of the 32-byte public key.
    pub fn verify_key(&self) -> String {
        data_encoding::BASE64.encode(self.signing_key.verifying_key().as_bytes())
    }
}

/// A fresh signing key (base64 seed) and its verify key (base64), for `rightsflow drp keygen`.
pub fn generate_key_pair() -> (String, String) {
    let seed: [u8; 32] = rand::random();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    (
        data_encoding::BASE64.encode(&seed),
        data_encoding::BASE64.encode(key.verifying_key().as_bytes()),
    )
}

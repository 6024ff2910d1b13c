//! OpenDSR 2.0 (formerly OpenGDPR), the processor's side (docs/INTEROP.md):
//!
//! - `status.rs`: our statuses as OpenDSR's, and the status object;
//! - `service.rs`: controllers (registered by an admin), requests made, read and cancelled;
//! - `callback.rs`: signed status callbacks to every `status_callback_urls` entry, from the
//!   outbox.
//!
//! Signatures follow §4.2 (FIPS 186-4): ECDSA over P-256 with SHA-256, the DER signature in
//! base64, in the `X-OpenDSR-Signature` header over the exact body bytes.

pub mod callback;
pub mod service;
pub mod status;

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

/// The outbox kind of a status callback.
pub const OPENDSR_CALLBACK: &str = "opendsr_callback";

/// The response and callback headers (§8.3, §8.6), and the OpenGDPR names §10.1 asks us to
/// honour: both are sent.
pub const DOMAIN_HEADERS: [&str; 2] = ["X-OpenDSR-Processor-Domain", "X-OpenGDPR-Processor-Domain"];
pub const SIGNATURE_HEADERS: [&str; 2] = ["X-OpenDSR-Signature", "X-OpenGDPR-Signature"];

/// The API version we speak (2.0; requests on the OpenGDPR route names are answered alike).
pub const API_VERSION: &str = "2.0";

/// What OpenDSR needs from the configuration: the key our responses and callbacks are signed
/// with, the domain they are signed for, and the certificate published through discovery.
#[derive(Clone)]
pub struct OpendsrSettings {
    pub signing_key: p256::ecdsa::SigningKey,
    pub processor_domain: String,
    /// The PEM certificate (chain) of `signing_key`, issued to `processor_domain`; without one
    /// the certificate route serves the public key alone.
    pub certificate: Option<String>,
}

impl std::fmt::Debug for OpendsrSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpendsrSettings")
            .field("processor_domain", &self.processor_domain)
            .field("signing_key", &"<redacted>")
            .field("certificate", &self.certificate.is_some())
            .finish()
    }
}

/// A P-256 private key: PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), or base64 of its DER (one
/// line, for an environment variable).
pub fn parse_signing_key(text: &str) -> Result<p256::ecdsa::SigningKey, String> {
    let text = text.trim();
    let key = if text.starts_with("-----") {
        p256::ecdsa::SigningKey::from_pkcs8_pem(text).ok()
    } else {
        data_encoding::BASE64
            .decode(text.as_bytes())
            .ok()
            .and_then(|der| p256::ecdsa::SigningKey::from_pkcs8_der(&der).ok())
    };
    key.ok_or_else(|| {
        "opendsr.signing_key must be a P-256 private key in PKCS#8 (PEM, or base64 of DER)".into()
    })
}

impl OpendsrSettings {
    pub fn new(
        signing_key: &str,
        processor_domain: &str,
        certificate: Option<String>,
    ) -> Result<OpendsrSettings, String> {
        let domain = processor_domain.trim();
        if domain.is_empty() || domain.contains('/') || domain.contains(char::is_whitespace) {
            return Err(format!(
                "opendsr.processor_domain must be a host name, not {domain:?}"
            ));
        }
        if let Some(pem) = &certificate {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err("opendsr.certificate_file is not a PEM certificate".into());
            }
        }
        Ok(OpendsrSettings {
            signing_key: parse_signing_key(signing_key)?,
            processor_domain: domain.to_owned(),
            certificate,
        })
    }

    /// Base64 of the DER ECDSA P-256/SHA-256 signature of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let sig: p256::ecdsa::Signature = self.signing_key.sign(body);
        data_encoding::BASE64.encode(sig.to_der().as_bytes())
    }

    /// The public key as a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----").
    pub fn public_key_pem(&self) -> String {
        self.signing_key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The headers that sign `body`: the domain and the signature, under both names.
    pub fn signature_headers(&self, body: &[u8]) -> Vec<(&'static str, String)> {
        let signature = self.sign(body);
        DOMAIN_HEADERS
            .iter()
            .map(|h| (*h, self.processor_domain.clone()))
            .chain(SIGNATURE_HEADERS.iter().map(|h| (*h, signature.clone())))
            .collect()
    }
}

/// A fresh P-256 private key as PKCS#8 PEM, for `rightsflow opendsr keygen`.
pub fn generate_key() -> Result<String, String> {
    loop {
        // A random 32-byte string is a valid scalar but for a chance of about 2^-32.
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key
                .to_pkcs8_pem(LineEnding::LF)
                .map(|pem| pem.to_string())
                .map_err(|e| e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;

    #[test]
    fn a_generated_key_signs_what_its_public_key_verifies() {
        let pem = generate_key().unwrap();
        let s = OpendsrSettings::new(&pem, "privacy.example.test", None).unwrap();
        let body = br#"{"request_status":"pending"}"#;
        let sig = data_encoding::BASE64
            .decode(s.sign(body).as_bytes())
            .unwrap();
        let sig = p256::ecdsa::DerSignature::from_bytes(&sig).unwrap();
        let vk = s.signing_key.verifying_key();
        assert!(vk.verify(body, &sig).is_ok());
        assert!(vk.verify(b"{}", &sig).is_err());
        assert!(s.public_key_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        // The same key as one line of base64 DER.
        let der = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem)
            .unwrap()
            .to_pkcs8_der()
            .unwrap();
        let b64 = data_encoding::BASE64.encode(der.as_bytes());
        assert!(parse_signing_key(&b64).is_ok());
        assert!(parse_signing_key("AAAA").is_err());
        assert!(OpendsrSettings::new(&pem, "https://x.test/", None).is_err());
    }
}

//! SMS through a pluggable gateway: `http` posts a signed JSON body to a configured URL (the
//! operator's SMS provider or a small adapter in front of it); `log` writes a log line without
//! the text (development). Bodies are short and in the subject's language.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What an `sms` outbox row carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmsPayload {
    pub to: String,
    pub body: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("sms configuration: {0}")]
    Config(String),
    #[error("the sms gateway refused or failed: {0}")]
    Send(String),
}

pub enum SmsGateway {
    Http {
        url: String,
        secret: String,
        agent: ureq::Agent,
    },
    Log,
}

pub use crate::auth::signing::signature;

impl SmsGateway {
    pub fn http(url: &str, secret: &str) -> Result<SmsGateway, SmsError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SmsError::Config(format!(
                "RIGHTSFLOW_SMS_URL must be an http(s) URL, not {url:?}"
            )));
        }
        if secret.len() < 16 {
            return Err(SmsError::Config(
                "RIGHTSFLOW_SMS_SECRET must be at least 16 characters".into(),
            ));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(15)))
            .http_status_as_error(false)
            .build();
        Ok(SmsGateway::Http {
            url: url.to_owned(),
            secret: secret.to_owned(),
            agent: config.into(),
        })
    }

    pub fn send(&self, id: &str, sms: &SmsPayload) -> Result<(), SmsError> {
        match self {
            SmsGateway::Log => {
                tracing::info!(message_id = %id, message = %sms.message, chars = sms.body.chars().count(), "sms (log gateway; content not logged)");
                Ok(())
            }
            SmsGateway::Http { url, secret, agent } => {
                let body =
                    serde_json::json!({ "id": id, "to": sms.to, "text": sms.body }).to_string();
                let timestamp = chrono::Utc::now().timestamp();
                let response = agent
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("X-Rightsflow-Timestamp", &timestamp.to_string())
                    .header(
                        "X-Rightsflow-Signature",
                        &signature(secret, timestamp, &body),
                    )
                    .header("Idempotency-Key", id)
                    .send(&body)
                    .map_err(|e| SmsError::Send(e.to_string()))?;
                match response.status().as_u16() {
                    200..=299 => Ok(()),
                    status => Err(SmsError::Send(format!("HTTP {status}"))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_and_secrets_are_checked() {
        assert!(SmsGateway::http("ftp://x", "0123456789abcdef").is_err());
        assert!(SmsGateway::http("http://127.0.0.1:9/sms", "short").is_err());
    }
}

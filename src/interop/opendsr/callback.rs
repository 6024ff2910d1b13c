//! Status callbacks (§8.5–8.6): one outbox row per change of a request's OpenDSR status and per
//! URL in its `status_callback_urls` (queued with the change,
//! `storage::opendsr::queue_callbacks`), sent by the outbox worker as a JSON POST signed in
//! `X-OpenDSR-Signature` (and `X-OpenGDPR-Signature`) over the exact body bytes.

use serde::Deserialize;

use super::service;
use crate::domain::RequestState;
use crate::fulfilment::run::FulfilError;
use crate::service::Services;
use crate::storage::outbox::OutboxRow;

#[derive(Deserialize)]
struct Payload {
    controller_id: String,
    subject_request_id: String,
    url: String,
    state: RequestState,
}

/// Sends one callback row.
pub fn send(s: &Services, row: &OutboxRow) -> Result<(), FulfilError> {
    let cfg = service::settings(s)
        .map_err(|_| FulfilError::Permanent("opendsr is not configured any more".into()))?;
    let p: Payload = serde_json::from_str(&row.payload)
        .map_err(|e| FulfilError::Permanent(format!("opendsr callback payload: {e}")))?;
    let body = service::callback_body(s, &p.controller_id, &p.subject_request_id, &p.url, &p.state)
        .map_err(|e| FulfilError::Permanent(e.to_string()))?
        .to_string();
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("Idempotency-Key", row.id.clone()),
    ];
    headers.extend(cfg.signature_headers(body.as_bytes()));
    crate::interop::callback::post(&p.url, &headers, &body, "opendsr callback")?;
    tracing::info!(outbox_id = %row.id, "opendsr status callback delivered");
    Ok(())
}

//! Status callbacks (§2.03): one outbox row per change of a request's DRP status (queued with
//! the change, `storage::drp::queue_callback`), sent by the outbox worker as a POST of the
//! status object to the agent's `status_callback`, signed with our business key in the same
//! combined mode as the agent's requests, `text/plain`. Anything but a 2xx is retried with the
//! worker's back-off and, in the end, parked among the failed deliveries for an admin to retry.

use serde::Deserialize;

use super::{message, service};
use crate::domain::RequestState;
use crate::fulfilment::run::FulfilError;
use crate::service::Services;
use crate::storage::outbox::OutboxRow;

#[derive(Deserialize)]
struct Payload {
    drp_request_id: String,
    state: RequestState,
}

/// Sends one callback row.
pub fn send(s: &Services, row: &OutboxRow) -> Result<(), FulfilError> {
    let cfg = service::settings(s)
        .map_err(|_| FulfilError::Permanent("drp is not configured any more".into()))?;
    let p: Payload = serde_json::from_str(&row.payload)
        .map_err(|e| FulfilError::Permanent(format!("drp callback payload: {e}")))?;
    let permanent = |e: service::DrpError| FulfilError::Permanent(e.to_string());
    let (url, status) = service::callback(s, &p.drp_request_id, &p.state).map_err(permanent)?;
    let body = message::seal(status.to_string().as_bytes(), &cfg.signing_key);
    let headers = [
        ("Content-Type", "text/plain".to_owned()),
        ("Idempotency-Key", row.id.clone()),
    ];
    crate::interop::callback::post(&url, &headers, &body, "drp callback")?;
    tracing::info!(outbox_id = %row.id, "drp status callback delivered");
    Ok(())
}

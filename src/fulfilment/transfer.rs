//! Sending a portability package to another processor (GDPR Art. 20(2), PIPL Art. 45), when the
//! subject chose one of the destinations the operator registered. Once the package is built, an
//! outbox row (`transfer_package`, retried like any other) streams it from sealed storage, chunk
//! by chunk, in one HTTPS POST: `Content-Type: application/zip`, `X-Rightsflow-Content-SHA256`
//! (the package's checksum), `X-Rightsflow-Timestamp` and `X-Rightsflow-Signature` (HMAC-SHA256
//! with the destination's first secret over `"{timestamp}.{sha256}"`: the receiver checks the
//! signature, then that the body hashes to the signed value). The event log records where it
//! went and its checksum.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::registry::{Destination, Registry};
use super::run::FulfilError;
use crate::auth::signing;
use crate::domain::details::RequestDetails;
use crate::domain::{Actor, Command, FreeText};
use crate::service::{requests, ServiceError, Services};
use crate::storage::outbox::{self, OutboxRow, TRANSFER};
use crate::storage::rows::StoredRequest;
use crate::storage::StoreError;

/// The destination a portability request chose, if it still exists.
pub fn destination_of<'a>(registry: &'a Registry, r: &StoredRequest) -> Option<&'a Destination> {
    match RequestDetails::parse(r.state.kind, r.details.clone()) {
        Ok(RequestDetails::Portability(d)) => registry.destination(d.destination.as_deref()?),
        _ => None,
    }
}

/// Queues the transfer of a request's package, once (a fixed row id per request).
pub fn queue(s: &Services, r: &StoredRequest, now: DateTime<Utc>) -> Result<(), FulfilError> {
    if destination_of(s.systems(), r).is_none() {
        return Ok(());
    }
    let row = OutboxRow::new(
        format!("{TRANSFER}:{}", r.id),
        Some(&r.id),
        TRANSFER,
        json!({ "request": r.id }).to_string(),
        now,
    );
    match outbox::insert(&mut *s.db().conn().map_err(ServiceError::from)?, &row) {
        Ok(()) | Err(StoreError::Duplicate(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The `transfer_package` row: sends the package and records it.
pub fn send(s: &Services, request_id: &str, now: DateTime<Utc>) -> Result<(), FulfilError> {
    let r = requests::get(s, request_id)?;
    let Some(dest) = destination_of(s.systems(), &r) else {
        return Err(FulfilError::Permanent(
            "the destination is no longer configured".into(),
        ));
    };
    let name = format!("{}-package.zip", r.reference);
    let file = crate::storage::results::package_of(
        &mut *s.db().conn().map_err(ServiceError::from)?,
        &r.id,
        &name,
    )?
    .ok_or_else(|| FulfilError::Permanent("the package is gone (expired)".into()))?;
    let mut body = crate::service::results::reader(s, &file)
        .map_err(|e| FulfilError::Permanent(format!("the package cannot be opened: {e}")))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(dest.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let ts = now.timestamp();
    let secret = dest
        .http
        .secrets
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let response = agent
        .post(&dest.http.url)
        .header("Content-Type", "application/zip")
        .header("Content-Length", &file.size.to_string())
        .header("X-Rightsflow-Timestamp", &ts.to_string())
        .header("X-Rightsflow-Content-SHA256", &file.sha256)
        .header(
            "X-Rightsflow-Signature",
            &signing::signature(secret, ts, &file.sha256),
        )
        .header("X-Rightsflow-Event", "portability_package")
        .header("Idempotency-Key", &format!("{TRANSFER}:{}", r.id))
        .send(ureq::SendBody::from_reader(&mut body))
        .map_err(|e| FulfilError::Transient(format!("cannot reach {}: {e}", dest.label)))?;
    let status = response.status().as_u16();
    if !(200..=299).contains(&status) {
        return Err(FulfilError::Transient(format!(
            "{} answered HTTP {status}",
            dest.label
        )));
    }
    let text = format!(
        "portability package sent to {} ({} bytes, sha256 {})",
        dest.label, file.size, file.sha256
    );
    let text = FreeText::parse(&text).map_err(|e| FulfilError::Permanent(e.to_string()))?;
    requests::act(s, &r.id, &Actor::System, &Command::Note { text }, None, now)?;
    tracing::info!(reference = %r.reference, destination = %dest.name, "package transferred");
    Ok(())
}

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

/// An origin an admin registers for an agent's callbacks, written as `scheme://host[:port]`
/// (http or https; a path, query, fragment or credentials are refused rather than ignored).
pub fn registered_origin(input: &str) -> Result<String, String> {
    let refuse =
        || format!("the callback origin must look like https://agent.example.com (got {input:?})");
    let url = url::Url::parse(input.trim()).map_err(|_| refuse())?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || !bare
    {
        return Err(refuse());
    }
    Ok(url.origin().ascii_serialization())
}

/// Whether a `status_callback` an agent sent may be used: an http(s) URL at the origin the
/// admin registered for the agent. Without a registered origin the agent gets no callbacks
/// (it polls): otherwise any agent could make our server send requests to any address,
/// inside our network included.
pub fn allowed(origin: Option<&str>, callback: &str) -> Result<(), String> {
    let Some(origin) = origin else {
        return Err(
            "no callback origin is registered for this agent: status_callback cannot be used"
                .into(),
        );
    };
    let url = url::Url::parse(callback)
        .map_err(|_| "status_callback must be an http(s) URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.password().is_some()
        || !url.username().is_empty()
    {
        return Err("status_callback must be an http(s) URL without credentials".into());
    }
    if url.origin().ascii_serialization() != origin {
        return Err(format!(
            "status_callback must be at the agent's registered origin {origin}"
        ));
    }
    Ok(())
}

/// Sends one callback row.
pub fn send(s: &Services, row: &OutboxRow) -> Result<(), FulfilError> {
    let cfg = service::settings(s)
        .map_err(|_| FulfilError::Permanent("drp is not configured any more".into()))?;
    let p: Payload = serde_json::from_str(&row.payload)
        .map_err(|e| FulfilError::Permanent(format!("drp callback payload: {e}")))?;
    let permanent = |e: service::DrpError| FulfilError::Permanent(e.to_string());
    let (url, origin) = service::callback_target(s, &p.drp_request_id).map_err(permanent)?;
    let url =
        url.ok_or_else(|| FulfilError::Permanent("the request has no status_callback".into()))?;
    // Checked again at sending: the admin may have changed the agent's origin since.
    allowed(origin.as_deref(), &url).map_err(FulfilError::Permanent)?;
    let status = service::callback_status(s, &p.drp_request_id, &p.state).map_err(permanent)?;
    let body = message::seal(status.to_string().as_bytes(), &cfg.signing_key);
    let headers = [
        ("Content-Type", "text/plain".to_owned()),
        ("Idempotency-Key", row.id.clone()),
    ];
    crate::interop::callback::post(&url, &headers, &body, "drp callback")?;
    tracing::info!(outbox_id = %row.id, "drp status callback delivered");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_registered_bare_and_callbacks_must_match_them() {
        assert_eq!(
            registered_origin("https://Agent.Example.com/").as_deref(),
            Ok("https://agent.example.com")
        );
        assert_eq!(
            registered_origin("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        for bad in [
            "https://a.test/cb",
            "https://u:p@a.test",
            "ftp://a.test",
            "a.test",
            "",
        ] {
            assert!(registered_origin(bad).is_err(), "{bad}");
        }
        let origin = Some("https://a.test");
        assert!(allowed(origin, "https://a.test/drp/status?x=1").is_ok());
        assert!(
            allowed(origin, "https://a.test:443/drp").is_ok(),
            "the default port is the same origin"
        );
        for bad in [
            "https://a.test:444/drp",
            "http://a.test/drp",
            "https://b.test/drp",
            "https://a.test.b.test/drp",
            "https://x@a.test/drp",
            "not a url",
        ] {
            assert!(allowed(origin, bad).is_err(), "{bad}");
        }
        assert!(
            allowed(None, "https://a.test/drp").is_err(),
            "no origin, no callbacks"
        );
    }
}

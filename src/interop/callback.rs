//! Sending a protocol's status callback: one POST, 15 s at most; a 2xx is done, anything else
//! is retried by the outbox worker with its back-off (and, in the end, parked among the failed
//! deliveries for an admin to retry).

use crate::fulfilment::run::FulfilError;

pub fn post(
    url: &str,
    headers: &[(&str, String)],
    body: &str,
    what: &str,
) -> Result<(), FulfilError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(15)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(url);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let res = req
        .send(body)
        .map_err(|e| FulfilError::Transient(format!("{what}: {e}")))?;
    match res.status().as_u16() {
        200..=299 => Ok(()),
        code => Err(FulfilError::Transient(format!("{what}: HTTP {code}"))),
    }
}

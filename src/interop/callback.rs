//! Sending a protocol's status callback: one POST, 15 s at most; a 2xx is done, anything else
//! is retried by the outbox worker with its back-off (and, in the end, parked among the failed
//! deliveries for an admin to retry).

use crate::fulfilment::run::FulfilError;

/// An origin an admin registers for a caller's (a DRP agent's, an OpenDSR controller's) callbacks, written as `scheme://host[:port]`
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

/// Whether a callback URL a caller sent may be used: an http(s) URL at the origin the admin
/// registered for the caller. Without a registered origin the caller gets no callbacks (it
/// polls): otherwise any registered caller could make our server send requests to any
/// address, inside our network included.
pub fn allowed(origin: Option<&str>, callback: &str) -> Result<(), String> {
    let Some(origin) = origin else {
        return Err(
            "no callback origin is registered for this caller: callbacks cannot be used".into(),
        );
    };
    let url = url::Url::parse(callback)
        .map_err(|_| "a callback URL must be an http(s) URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.password().is_some()
        || !url.username().is_empty()
    {
        return Err("a callback URL must be an http(s) URL without credentials".into());
    }
    if url.origin().ascii_serialization() != origin {
        return Err(format!(
            "a callback URL must be at the registered callback origin {origin}"
        ));
    }
    Ok(())
}

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

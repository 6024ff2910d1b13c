//! Security headers on every response. Portal and console pages set their own (a stricter CSP
//! that allows their scripts and stylesheets, see `portal::page::secure`); everything else —
//! JSON, errors, `/dev/mail`, health probes — gets these defaults, so no answer of ours can be
//! framed, sniffed into another type, or leak its URL through the referrer.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// For answers that are not pages: nothing may load or run; inline style only, for the
/// development mailbox's own `<style>`.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Two years, as browsers' preload lists expect; sent only over HTTPS (RFC 6797 §7.2).
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Middleware: adds each header the handler did not set itself.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Behind a TLS-terminating proxy the scheme comes from Forwarded / X-Forwarded-Proto.
    let https = req.connection_info().scheme() == "https";
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, DEFAULT_CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        set_if_absent(headers, name, value);
    }
    if https {
        set_if_absent(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    Ok(res)
}

fn set_if_absent(headers: &mut header::HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

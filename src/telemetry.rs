//! Logging with `tracing`. Request spans carry a request id, the method and the route template
//! (`/api/v1/requests/{reference}`), never the concrete path, query string, client address or
//! user agent: those can identify a person, and logs must hold no personal data.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Crates held at `warn` because their debug output contains personal data.
const QUIET_CRATES: [&str; 1] = ["handlebars=warn"];

/// Installs the global subscriber (`RUST_LOG` filters; default `info`). Safe to call twice:
/// the second call does nothing (tests start many applications in one process).
pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Whatever RUST_LOG says, crates that log the data they handle at debug level stay quiet:
    // handlebars logs every value it renders (names, addresses, codes).
    for quiet in QUIET_CRATES {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

pub struct PrivacyRootSpan;

impl RootSpanBuilder for PrivacyRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "http_request",
            http.method = %request.method(),
            http.route = %route,
            request_id = %request_id,
            http.status_code = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        if status.is_server_error() {
            tracing::error!(parent: &span, status = status.as_u16(), "request failed");
        } else {
            tracing::info!(parent: &span, status = status.as_u16(), "request done");
        }
    }
}

/// Middleware: echoes the request id as `X-Request-Id`, so a user's report can be matched to
/// the log lines of their request.
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// Removes what may identify a person from text we did not write (a mail server's or gateway's
/// error message may quote the recipient): words with `@`, and words holding 7 or more digits
/// (phone numbers; timestamps too, which costs nothing here), are replaced.
pub fn scrub(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let bare = word.trim_end();
            let digits = bare.chars().filter(char::is_ascii_digit).count();
            let tail = &word[bare.len()..];
            if bare.contains('@') {
                format!("<address>{tail}")
            } else if digits >= 7 {
                format!("<number>{tail}")
            } else {
                word.to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn scrub_hides_addresses_and_long_numbers() {
        let raw = "permanent error (550): 5.1.1 <li.lei@example.com>: Recipient rejected, call +8613800138000 now";
        let clean = scrub(raw);
        assert!(
            !clean.contains("li.lei") && !clean.contains("13800138000"),
            "{clean}"
        );
        assert!(
            clean.contains("550")
                && clean.contains("5.1.1")
                && clean.contains("Recipient rejected"),
            "{clean}"
        );
    }
}

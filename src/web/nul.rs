//! Text from outside never holds the NUL character (U+0000). PostgreSQL cannot store it in a
//! text column, so a NUL in an id, a name or a note reached the database as an error and came
//! back as a 500; SQLite would store it and cut it short in some functions. No honest input
//! has one, so it is refused at the door, before any handler or query sees it:
//!
//! - in the path (`%00`): 404 `not_found`, like any other id that names nothing;
//! - in the query string: 422 `invalid_query`;
//! - in a JSON body (`\u0000`) or a form (`%00`): 422 `invalid_body`.
//!
//! Bodies of other types are left alone: an attached result is a file, and NUL is data there.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest};

use super::error::ApiError;

/// True when a JSON text holds the escape `\u0000` (not an escaped backslash followed by
/// `u0000`, which is harmless text). A raw NUL byte is already invalid JSON.
pub fn json_has_nul(text: &[u8]) -> bool {
    let mut backslashes = 0usize;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\\' {
            backslashes += 1;
            continue;
        }
        if backslashes % 2 == 1 && *b == b'u' && text[i + 1..].starts_with(b"0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

/// True when URL-encoded text (a path, a query string, a form) holds `%00`, or a raw NUL.
pub fn urlencoded_has_nul(text: &[u8]) -> bool {
    text.contains(&0) || text.windows(3).any(|w| w == b"%00")
}

fn nul_in_body() -> ApiError {
    ApiError::invalid(
        "invalid_body",
        "请求内容不能包含空字符（U+0000）",
        "The request may not contain the NUL character (U+0000)",
    )
}

/// Middleware: refuses a NUL in the path, the query or a JSON or form body (see above).
pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if urlencoded_has_nul(req.path().as_bytes()) {
        return Err(ApiError::not_found().into());
    }
    if urlencoded_has_nul(req.query_string().as_bytes()) {
        return Err(ApiError::invalid(
            "invalid_query",
            "查询参数不能包含空字符（U+0000）",
            "Query parameters may not contain the NUL character (U+0000)",
        )
        .into());
    }
    let essence = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let check: fn(&[u8]) -> bool = match essence.as_str() {
        "application/json" => json_has_nul,
        "application/x-www-form-urlencoded" => urlencoded_has_nul,
        _ => return next.call(req).await,
    };
    // Attached results (files) and fulfilment callbacks (checked in their handler) have limits of their own, larger than the application's body limit.
    if req.path().ends_with("/results") || req.path().ends_with("/callback") {
        return next.call(req).await;
    }
    // Read under the application's body limit (the same limit the JSON extractor applies),
    // then handed on unchanged.
    let (http, mut payload) = req.into_parts();
    let body = match web::Bytes::from_request(&http, &mut payload).await {
        Ok(body) => body,
        Err(e) => return Err(payload_error(e)),
    };
    if check(&body) {
        return Err(nul_in_body().into());
    }
    next.call(ServiceRequest::from_parts(http, body.into()))
        .await
}

/// A body that could not be read: too large (413, as the JSON extractor would answer), or cut
/// off (as actix answers it).
fn payload_error(e: actix_web::Error) -> actix_web::Error {
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "请求内容过大",
            "The request body is too large",
        )
        .into(),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(json_has_nul(br#"{"name":"a\u0000b"}"#));
        assert!(json_has_nul(br#"{"a\u0000":1}"#));
        assert!(
            json_has_nul(br#"["\\\u0000"]"#),
            "an escaped backslash, then a NUL"
        );
        assert!(
            !json_has_nul(br#"{"name":"a\\u0000b"}"#),
            "a backslash, then text"
        );
        assert!(!json_has_nul(br#"{"name":"\u0001 u0000"}"#));
        assert!(urlencoded_has_nul(b"name=a%00b"));
        assert!(
            !urlencoded_has_nul(b"name=a%2500b"),
            "an encoded percent sign, then text"
        );
    }
}

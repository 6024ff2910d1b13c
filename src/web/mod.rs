//! The HTTP layer (actix-web): JSON API under `/api/v1`, its OpenAPI document, health probes.
//! Handlers parse input into domain values, call a service, and render a view; they never
//! decide workflow questions themselves.

pub mod audit;
pub mod consents;
pub mod console;
pub mod dev;
pub mod drp;
pub mod error;
pub mod extract;
pub mod fulfilment;
pub mod headers;
pub mod health;
pub mod limits;
pub mod nul;
pub mod openapi;
pub mod opendsr;
pub mod outbox;
#[cfg(test)]
mod parsers_props;
pub mod portal;
pub mod results;
pub mod staff;
pub mod subject;
pub mod submission;
pub mod verify_page;
pub mod views;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use std::sync::Arc;

use actix_web::{web, HttpRequest};

pub use error::ApiError;

use crate::notifications::Notifier;

/// The last page number a paged list accepts (the console's queue, the audit log): past it the
/// offset would overflow, and no list is that long.
pub const MAX_PAGE: i64 = 1_000_000;

/// Every route of the application. `/dev/mail` only while email goes to files.
pub fn configure(cfg: &mut web::ServiceConfig, notifier: &web::Data<Arc<Notifier>>) {
    // The API first: routes are tried in order, and each pattern with a parameter is a regular
    // expression to run; the API's callers (platforms, agents, the benchmark) need not pay for
    // the portal's and the console's dozens.
    cfg.configure(health::routes)
        .service(
            web::scope("/api/v1")
                .configure(subject::routes)
                .configure(results::subject_routes)
                .configure(staff::routes)
                .configure(results::staff_routes)
                .configure(outbox::routes)
                .configure(consents::routes)
                .configure(fulfilment::routes)
                .configure(audit::routes),
        )
        .route("/api/openapi.json", web::get().to(openapi::document))
        // The Data Rights Protocol and OpenDSR, each under its own prefix.
        .configure(drp::routes)
        .configure(opendsr::routes)
        .configure(verify_page::routes)
        .configure(portal::routes)
        .configure(console::routes);
    if notifier.mailer.dev_mailbox().is_some() {
        cfg.configure(dev::routes);
    }
}

/// JSON bodies: a size limit, and errors in the API's shape.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req: &HttpRequest| json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::invalid(
            "invalid_query",
            format!("查询参数无效：{err}"),
            format!("Invalid query parameters: {err}"),
        )
        .into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err: PathError, _req| ApiError::not_found().into())
}

/// The error for a JSON body read by hand (where the body is optional).
pub fn json_body_error(e: serde_json::Error) -> ApiError {
    json_error(JsonPayloadError::Deserialize(e))
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("请求内容过大（上限 {limit} 字节）"),
            format!("The request body is too large (limit {limit} bytes)"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "请求内容须为 JSON（Content-Type: application/json）",
            "The body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::invalid(
            "invalid_body",
            format!("请求内容缺少字段或字段值无效：{e}"),
            format!("A field is missing or has an invalid value: {e}"),
        ),
        JsonPayloadError::Deserialize(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("请求内容不是有效的 JSON：{e}"),
            format!("The body is not valid JSON: {e}"),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "无法读取请求内容",
            "The request body could not be read",
        ),
    }
}

/// Anything no route matches.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

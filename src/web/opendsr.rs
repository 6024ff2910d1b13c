//! The OpenDSR 2.0 routes, mounted under `/opendsr/v1` (docs/INTEROP.md), with the v1
//! OpenGDPR route names beside the 2.0 ones (§10.1). Bodies are JSON; every successful answer
//! is signed (`X-OpenDSR-Signature` over the exact body bytes, with the processor domain).
//! Errors take the specification's shape (§7.6):
//! `{"error": {"code": <HTTP status>, "message", "errors": [{"domain", "reason", "message"}]}}`,
//! `reason` being our stable code, in English (the protocol's language).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::drp::{bearer, blocking};
use crate::domain::Locale;
use crate::interop::opendsr::service::{self, OpendsrError};
use crate::service::{now, ServiceError, Services};
use crate::storage::opendsr::ControllerRow;
use crate::web::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/opendsr/v1")
            .route("/discovery", web::get().to(discovery))
            .route("/certificate.pem", web::get().to(certificate))
            .route("/requests", web::post().to(create))
            .route("/requests/{subject_request_id}", web::get().to(status))
            .route("/requests/{subject_request_id}", web::delete().to(cancel))
            .route("/opengdpr_requests", web::post().to(create_legacy))
            .route(
                "/opengdpr_requests/{subject_request_id}",
                web::get().to(status),
            )
            .route(
                "/opengdpr_requests/{subject_request_id}",
                web::delete().to(cancel),
            ),
    );
}

fn error_body(status: StatusCode, domain: &str, reason: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": {
            "code": status.as_u16(), "message": message,
            "errors": [{ "domain": domain, "reason": reason, "message": message }],
        } }))
}

/// The error answer (§7.5–7.6) of an OpenDSR route.
pub fn error_response(e: OpendsrError) -> HttpResponse {
    let message = e.to_string();
    match e {
        OpendsrError::NotConfigured | OpendsrError::NotFound => {
            error_body(StatusCode::NOT_FOUND, "Request", "not_found", &message)
        }
        OpendsrError::Unauthorized => {
            let mut res = error_body(
                StatusCode::UNAUTHORIZED,
                "Authentication",
                "unauthorized",
                &message,
            );
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            res
        }
        OpendsrError::Invalid { reason, .. } => {
            error_body(StatusCode::BAD_REQUEST, "Validation", reason, &message)
        }
        OpendsrError::Service(inner) => {
            let shown = match inner {
                ServiceError::Store(_) | ServiceError::Internal(_) => {
                    tracing::error!(error = %crate::telemetry::scrub(&inner.to_string()), "opendsr request failed");
                    ApiError::internal()
                }
                other => ApiError::from(other),
            };
            error_body(
                shown.status(),
                "Server",
                shown.code(),
                shown.message(Locale::En),
            )
        }
    }
}

/// A signed JSON answer: the body as sent, its signature in the headers (§8.3).
fn signed(s: &Services, status: StatusCode, v: &Value) -> HttpResponse {
    let body = v.to_string();
    let mut res = HttpResponse::build(status);
    res.content_type("application/json");
    if let Some(cfg) = s.opendsr() {
        for (name, value) in cfg.signature_headers(body.as_bytes()) {
            res.insert_header((name, value));
        }
    }
    res.body(body)
}

/// §7.3 and §9.2 also ask for `processor_signature` in the body: the signature of the body as
/// it is without that field (compact JSON, our field order). The header signs the whole body.
fn with_processor_signature(s: &Services, mut v: Value) -> Value {
    if let (Some(cfg), Some(m)) = (s.opendsr(), v.as_object()) {
        let signature = cfg.sign(Value::Object(m.clone()).to_string().as_bytes());
        if let Some(m) = v.as_object_mut() {
            m.insert("processor_signature".into(), json!(signature));
        }
    }
    v
}

fn answer(s: &Services, ok: StatusCode, r: Result<Value, OpendsrError>) -> HttpResponse {
    match r {
        Ok(v) => signed(s, ok, &v),
        Err(e) => error_response(e),
    }
}

async fn controller_of(
    req: &HttpRequest,
    s: &web::Data<Services>,
) -> Result<ControllerRow, OpendsrError> {
    let (s, token) = (s.clone(), bearer(req));
    blocking(move || service::authenticate(&s, token.as_deref())).await
}

#[tracing::instrument(skip_all)]
async fn discovery(s: web::Data<Services>) -> HttpResponse {
    answer(&s, StatusCode::OK, service::discovery(&s))
}

/// The certificate discovery points at (§6.3): the configured one, or, without one, the
/// public key alone (docs/INTEROP.md says why that is not what §4.1 asks).
async fn certificate(s: web::Data<Services>) -> HttpResponse {
    match s.opendsr() {
        Some(cfg) => HttpResponse::Ok()
            .content_type("application/x-pem-file")
            .body(
                cfg.certificate
                    .clone()
                    .unwrap_or_else(|| cfg.public_key_pem()),
            ),
        None => error_response(OpendsrError::NotConfigured),
    }
}

/// Largest request read: a request is a few hundred bytes.
const BODY_LIMIT: usize = 64 * 1024;

async fn create_with(
    req: HttpRequest,
    s: web::Data<Services>,
    payload: web::Payload,
    legacy: bool,
) -> HttpResponse {
    let controller = match controller_of(&req, &s).await {
        Ok(c) => c,
        Err(e) => return error_response(e),
    };
    let body = match payload.to_bytes_limited(BODY_LIMIT).await {
        Ok(Ok(b)) => b.to_vec(),
        Ok(Err(_)) => {
            let m = "the body could not be read";
            return error_body(StatusCode::BAD_REQUEST, "Validation", "invalid_body", m);
        }
        Err(_) => {
            let m = "the body is too large";
            return error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Validation",
                "payload_too_large",
                m,
            );
        }
    };
    let services = s.clone();
    let r = blocking(move || service::create(&services, &controller, &body, legacy, now())).await;
    answer(
        &s,
        StatusCode::CREATED,
        r.map(|v| with_processor_signature(&s, v)),
    )
}

#[tracing::instrument(skip_all)]
async fn create(req: HttpRequest, s: web::Data<Services>, payload: web::Payload) -> HttpResponse {
    create_with(req, s, payload, false).await
}

#[tracing::instrument(skip_all)]
async fn create_legacy(
    req: HttpRequest,
    s: web::Data<Services>,
    payload: web::Payload,
) -> HttpResponse {
    create_with(req, s, payload, true).await
}

#[tracing::instrument(skip_all)]
async fn status(req: HttpRequest, s: web::Data<Services>, path: web::Path<String>) -> HttpResponse {
    let controller = match controller_of(&req, &s).await {
        Ok(c) => c,
        Err(e) => return error_response(e),
    };
    let (services, id) = (s.clone(), path.into_inner());
    let r = blocking(move || service::status(&services, &controller, &id)).await;
    answer(&s, StatusCode::OK, r)
}

#[tracing::instrument(skip_all)]
async fn cancel(req: HttpRequest, s: web::Data<Services>, path: web::Path<String>) -> HttpResponse {
    let controller = match controller_of(&req, &s).await {
        Ok(c) => c,
        Err(e) => return error_response(e),
    };
    let (services, id) = (s.clone(), path.into_inner());
    let r = blocking(move || service::cancel(&services, &controller, &id, now())).await;
    answer(
        &s,
        StatusCode::ACCEPTED,
        r.map(|v| with_processor_signature(&s, v)),
    )
}

/// The OpenDSR routes in the OpenAPI document, both route names; errors in OpenDSR's shape
/// (the door's own refusals, a NUL byte or the broad rate limit, keep the API's shape).
pub fn openapi_paths() -> Value {
    let error = json!({ "description": "An error (OpenDSR §7.6; `errors[0].reason` is our stable code)", "content": { "application/json": { "schema": { "oneOf": [ { "$ref": "#/components/schemas/OpendsrError" }, { "$ref": "#/components/schemas/Error" } ] } } } });
    let responses = |code: u16, what: &str, schema: &str, errors: &[u16]| -> Value {
        let mut m = serde_json::Map::new();
        m.insert(code.to_string(), json!({ "description": what, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } }));
        for e in errors {
            m.insert(e.to_string(), error.clone());
        }
        Value::Object(m)
    };
    let auth = json!([{ "opendsrBearer": [] }]);
    let id = json!({ "name": "subject_request_id", "in": "path", "required": true, "schema": { "type": "string" } });
    let request = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/OpendsrRequest" } } } });
    let create = |legacy: bool| {
        json!({
            "summary": if legacy { "OpenDSR request, by its OpenGDPR v1 route name (§7, §10.1; `regulation` defaults to gdpr)" } else { "OpenDSR request (§7)" },
            "security": auth, "requestBody": request,
            "responses": responses(201, "Received; signed (X-OpenDSR-Signature)", "OpendsrCreated", &[400, 401, 404, 413]),
        })
    };
    let item = |legacy: bool| {
        json!({
            "get": { "summary": if legacy { "OpenDSR request status, OpenGDPR route name (§8)" } else { "OpenDSR request status (§8)" }, "security": auth, "parameters": [id], "responses": responses(200, "The status; signed", "OpendsrStatus", &[400, 401, 404]) },
            "delete": { "summary": if legacy { "OpenDSR cancellation, OpenGDPR route name (§9)" } else { "OpenDSR cancellation, while pending (§9)" }, "security": auth, "parameters": [id], "responses": responses(202, "Cancelled; signed", "OpendsrCancelled", &[400, 401, 404]) },
        })
    };
    json!({
        "/opendsr/v1/discovery": { "get": { "summary": "OpenDSR discovery (§6)", "responses": responses(200, "What we support; signed", "OpendsrDiscovery", &[404]) } },
        "/opendsr/v1/certificate.pem": { "get": { "summary": "The certificate (or, without one configured, the public key) our OpenDSR signatures verify with", "responses": {
            "200": { "description": "PEM", "content": { "application/x-pem-file": { "schema": { "type": "string" } } } },
            "404": error,
        } } },
        "/opendsr/v1/requests": { "post": create(false) },
        "/opendsr/v1/requests/{subject_request_id}": item(false),
        "/opendsr/v1/opengdpr_requests": { "post": create(true) },
        "/opendsr/v1/opengdpr_requests/{subject_request_id}": item(true),
    })
}

/// The schemas [`openapi_paths`] refers to.
pub fn openapi_schemas() -> Value {
    let time = json!({ "type": "string", "format": "date-time" });
    json!({
        "OpendsrError": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message", "errors"], "properties": {
            "code": { "type": "integer" }, "message": { "type": "string" },
            "errors": { "type": "array", "items": { "type": "object", "properties": { "domain": { "type": "string" }, "reason": { "type": "string" }, "message": { "type": "string" } } } } } } } },
        "OpendsrDiscovery": { "type": "object", "required": ["api_version", "supported_identities", "supported_subject_request_types", "processor_certificate"], "properties": {
            "api_version": { "type": "string" }, "supported_identities": { "type": "array" },
            "supported_subject_request_types": { "type": "array", "items": { "type": "string" } }, "processor_certificate": { "type": "string" } } },
        "OpendsrRequest": { "type": "object", "required": ["subject_request_id", "subject_request_type", "submitted_time", "subject_identities"], "properties": {
            "subject_request_id": { "type": "string", "format": "uuid" }, "subject_request_type": { "enum": ["access", "portability", "erasure"] },
            "regulation": { "enum": ["gdpr", "ccpa"] }, "submitted_time": time,
            "subject_identities": { "type": "array", "items": { "type": "object", "properties": { "identity_type": { "type": "string" }, "identity_value": { "type": "string" }, "identity_format": { "type": "string" } } } },
            "api_version": { "type": "string" }, "status_callback_urls": { "type": "array", "items": { "type": "string" } }, "extensions": { "type": "object" } } },
        "OpendsrCreated": { "type": "object", "required": ["controller_id", "subject_request_id", "received_time", "expected_completion_time", "encoded_request", "processor_signature"], "properties": {
            "controller_id": { "type": "string" }, "subject_request_id": { "type": "string" }, "received_time": time, "expected_completion_time": time,
            "encoded_request": { "type": "string" }, "api_version": { "type": "string" }, "processor_signature": { "type": "string" } } },
        "OpendsrStatus": { "type": "object", "required": ["controller_id", "subject_request_id", "request_status", "expected_completion_time"], "properties": {
            "controller_id": { "type": "string" }, "subject_request_id": { "type": "string" },
            "request_status": { "enum": ["pending", "in_progress", "completed", "cancelled"] }, "expected_completion_time": time,
            "api_version": { "type": "string" }, "results_url": { "type": "string" }, "extensions": { "type": "object" } } },
        "OpendsrCancelled": { "type": "object", "required": ["controller_id", "subject_request_id", "received_time", "processor_signature"], "properties": {
            "controller_id": { "type": "string" }, "subject_request_id": { "type": "string" }, "received_time": time,
            "api_version": { "type": "string" }, "processor_signature": { "type": "string" } } }
    })
}

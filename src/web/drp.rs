//! The Data Rights Protocol 1.0 routes, mounted under `/drp/v1` (docs/INTEROP.md). Signed
//! bodies are read as raw bytes whatever their content type (the protocol sends `text/plain`);
//! answers are JSON. Errors take the protocol's shape (§3.06): `{"code": "<HTTP status>",
//! "message", "fatal": false}`, plus our stable `error` code; a failed key set-up is a 403
//! with no body at all, as §2.05.1 says.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::domain::Locale;
use crate::interop::drp::service::{self, DrpError};
use crate::service::{now, ServiceError, Services};
use crate::storage::drp::AgentRow;
use crate::web::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/drp/v1")
            .route("/agent/{agent_id}", web::post().to(key_setup))
            .route("/agent/{agent_id}", web::get().to(agent_info))
            .route("/data-rights-request", web::post().to(exercise))
            .route("/data-rights-request/{request_id}", web::get().to(status))
            .route(
                "/data-rights-request/{request_id}",
                web::delete().to(revoke),
            ),
    );
}

/// Runs blocking work off the executor, in the caller's span (for each protocol's errors).
pub(crate) async fn blocking<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<ServiceError> + Send + 'static,
{
    let span = tracing::Span::current();
    web::block(move || span.in_scope(f))
        .await
        .map_err(|_| E::from(ServiceError::Internal("blocking task failed".into())))?
}

/// The error answer (§3.06) of a DRP route.
pub fn error_response(e: DrpError) -> HttpResponse {
    let message = e.to_string();
    let (status, code, message) = match e {
        DrpError::NotConfigured | DrpError::NotFound => {
            (StatusCode::NOT_FOUND, "not_found", message)
        }
        DrpError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", message),
        DrpError::Refused(r) => (
            StatusCode::from_u16(r.http_status()).unwrap_or(StatusCode::FORBIDDEN),
            r.code(),
            message,
        ),
        DrpError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", message),
        DrpError::Unsupported(_) => (StatusCode::BAD_REQUEST, "unsupported", message),
        DrpError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", message),
        DrpError::NotRevocable => (StatusCode::CONFLICT, "not_revocable", message),
        DrpError::Service(inner) => {
            let shown = match inner {
                ServiceError::Store(_) | ServiceError::Internal(_) => {
                    tracing::error!(error = %crate::telemetry::scrub(&inner.to_string()), "drp request failed");
                    ApiError::internal()
                }
                other => ApiError::from(other),
            };
            (
                shown.status(),
                shown.code(),
                shown.message(Locale::En).to_owned(),
            )
        }
    };
    let mut res = plain_error(status, code, &message);
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    res
}

fn answer(r: Result<serde_json::Value, DrpError>) -> HttpResponse {
    match r {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => error_response(e),
    }
}

/// Largest signed body read: a request is a few hundred bytes of claims.
const BODY_LIMIT: usize = 64 * 1024;

/// The raw body, whatever its content type, up to [`BODY_LIMIT`] (an answer in DRP's shape
/// past it).
async fn read_body(payload: web::Payload) -> Result<Vec<u8>, HttpResponse> {
    match payload.to_bytes_limited(BODY_LIMIT).await {
        Ok(Ok(body)) => Ok(body.to_vec()),
        Ok(Err(_)) => Err(plain_error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "the body could not be read",
        )),
        Err(_) => Err(plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is too large",
        )),
    }
}

fn plain_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "code": status.as_u16().to_string(), "message": message, "fatal": false, "error": code,
    }))
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
}

async fn agent_of(req: &HttpRequest, s: &web::Data<Services>) -> Result<AgentRow, DrpError> {
    let (s, token) = (s.clone(), bearer(req));
    blocking(move || service::authenticate(&s, token.as_deref())).await
}

/// §2.05: a token for the agent the path names, or 403 with no body.
#[tracing::instrument(skip_all)]
async fn key_setup(
    s: web::Data<Services>,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(res) => return res,
    };
    let (services, agent_id) = (s.clone(), path.into_inner());
    let id = agent_id.clone();
    match blocking(move || service::key_setup(&services, &id, &body, now())).await {
        Ok(token) => HttpResponse::Ok().json(json!({ "agent-id": agent_id, "token": token })),
        Err(DrpError::NotConfigured) => error_response(DrpError::NotConfigured),
        Err(DrpError::Service(e)) => error_response(DrpError::Service(e)),
        Err(e) => {
            tracing::info!(refusal = %e, "drp key set-up refused");
            HttpResponse::Forbidden().finish()
        }
    }
}

/// §2.06: `{}` when the token is the path's agent's.
#[tracing::instrument(skip_all)]
async fn agent_info(
    req: HttpRequest,
    s: web::Data<Services>,
    path: web::Path<String>,
) -> HttpResponse {
    answer(match agent_of(&req, &s).await {
        Ok(agent) if agent.id == *path => Ok(json!({})),
        Ok(_) => Err(DrpError::Forbidden),
        Err(e) => Err(e),
    })
}

/// The agent of the bearer token, then the signed body it sent.
async fn agent_and_body(
    req: &HttpRequest,
    s: &web::Data<Services>,
    payload: web::Payload,
) -> Result<(AgentRow, Vec<u8>), HttpResponse> {
    let agent = agent_of(req, s).await.map_err(error_response)?;
    Ok((agent, read_body(payload).await?))
}

#[tracing::instrument(skip_all)]
async fn exercise(req: HttpRequest, s: web::Data<Services>, payload: web::Payload) -> HttpResponse {
    let (agent, body) = match agent_and_body(&req, &s, payload).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let services = s.clone();
    answer(blocking(move || service::exercise(&services, &agent, &body, now())).await)
}

#[tracing::instrument(skip_all)]
async fn status(req: HttpRequest, s: web::Data<Services>, path: web::Path<String>) -> HttpResponse {
    let agent = match agent_of(&req, &s).await {
        Ok(a) => a,
        Err(e) => return error_response(e),
    };
    let (services, id) = (s.clone(), path.into_inner());
    answer(blocking(move || service::status(&services, &agent, &id)).await)
}

#[tracing::instrument(skip_all)]
async fn revoke(
    req: HttpRequest,
    s: web::Data<Services>,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let (agent, body) = match agent_and_body(&req, &s, payload).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let (services, id) = (s.clone(), path.into_inner());
    answer(blocking(move || service::revoke(&services, &agent, &id, &body, now())).await)
}

/// The DRP routes in the OpenAPI document: signed bodies are `text/plain` (base64 of the
/// signature and the JSON), answers JSON; errors in DRP's shape (the door's own refusals, a
/// NUL byte or the broad rate limit, keep the API's shape).
pub fn openapi_paths() -> serde_json::Value {
    let signed = json!({ "required": true, "content": { "text/plain": { "schema": { "type": "string", "description": "base64 of the 64-byte Ed25519 signature followed by the signed JSON (libsodium combined mode)" } } } });
    let error = json!({ "description": "An error (DRP §3.06; `error` is our stable code)", "content": { "application/json": { "schema": { "oneOf": [ { "$ref": "#/components/schemas/DrpError" }, { "$ref": "#/components/schemas/Error" } ] } } } });
    let errors = |codes: &[u16]| -> serde_json::Map<String, serde_json::Value> {
        codes
            .iter()
            .map(|c| (c.to_string(), error.clone()))
            .collect()
    };
    let with = |mut ok: serde_json::Map<String, serde_json::Value>, codes: &[u16]| {
        ok.extend(errors(codes));
        serde_json::Value::Object(ok)
    };
    let status_ok = |what: &str| -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("200".into(), json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/DrpStatus" } } } }));
        m
    };
    let auth = json!([{ "drpBearer": [] }]);
    let agent_id = json!({ "name": "agent_id", "in": "path", "required": true, "schema": { "type": "string" } });
    let request_id = json!({ "name": "request_id", "in": "path", "required": true, "schema": { "type": "string" } });
    let mut setup_ok = serde_json::Map::new();
    setup_ok.insert("200".into(), json!({ "description": "The pair-wise bearer token", "content": { "application/json": { "schema": { "type": "object", "required": ["agent-id", "token"], "properties": { "agent-id": { "type": "string" }, "token": { "type": "string" } } } } } }));
    setup_ok.insert(
        "403".into(),
        json!({ "description": "Validation failed (no body, §2.05.1)" }),
    );
    let mut info_ok = serde_json::Map::new();
    info_ok.insert("200".into(), json!({ "description": "The token is this agent's", "content": { "application/json": { "schema": { "type": "object" } } } }));
    json!({
        "/drp/v1/agent/{agent_id}": {
            "post": { "summary": "DRP pair-wise key set-up (§2.05)", "parameters": [agent_id], "requestBody": signed, "responses": with(setup_ok, &[400, 404, 413]) },
            "get": { "summary": "DRP agent information (§2.06)", "security": auth, "parameters": [agent_id], "responses": with(info_ok, &[400, 401, 403, 404]) }
        },
        "/drp/v1/data-rights-request": {
            "post": { "summary": "DRP data rights exercise (§2.01)", "security": auth, "requestBody": signed, "responses": with(status_ok("The new request's status"), &[400, 401, 403, 404, 413, 422]) }
        },
        "/drp/v1/data-rights-request/{request_id}": {
            "get": { "summary": "DRP data rights status (§2.02)", "security": auth, "parameters": [request_id], "responses": with(status_ok("The request's status"), &[400, 401, 403, 404]) },
            "delete": { "summary": "DRP data rights revoke (§2.04)", "security": auth, "parameters": [request_id], "requestBody": signed, "responses": with(status_ok("The request, revoked"), &[400, 401, 403, 404, 409, 413, 422]) }
        }
    })
}

/// The schemas [`openapi_paths`] refers to.
pub fn openapi_schemas() -> serde_json::Value {
    json!({
        "DrpError": { "type": "object", "required": ["code", "message", "fatal", "error"], "properties": {
            "code": { "type": "string" }, "message": { "type": "string" }, "fatal": { "type": "boolean" }, "error": { "type": "string" } } },
        "DrpStatus": { "type": "object", "required": ["request_id", "received_at", "status"], "properties": {
            "request_id": { "type": "string" }, "agent_request_id": { "type": "string" },
            "received_at": { "type": "string", "format": "date-time" }, "expected_by": { "type": "string", "format": "date-time" },
            "status": { "enum": ["open", "in_progress", "fulfilled", "revoked", "denied", "expired"] },
            "reason": { "enum": ["need_user_verification", "suspected_fraud", "insuf_verification", "no_match", "claim_not_covered", "outside_jurisdiction", "too_many_requests", "other"] },
            "processing_details": { "type": "string" }, "user_verification_url": { "type": "string" },
            "results_url": { "type": "string" }, "expires_at": { "type": "string", "format": "date-time" } } }
    })
}

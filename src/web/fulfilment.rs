//! Fulfilment routes: an HTTP data system's callback for a task it accepted (signed with its
//! secret, checked before anything is read), and staff ending tasks through the API: a manual
//! task marked done, any open task recorded as impossible.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::{blocking, ApiError};
use super::extract::StaffActor;
use crate::auth::signing::SignatureError;
use crate::fulfilment::http::MAX_ANSWER_BYTES;
use crate::fulfilment::run::{self, CallbackError};
use crate::service::{now, Services};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/fulfilment/tasks/{task}/callback")
            .app_data(web::PayloadConfig::new(MAX_ANSWER_BYTES as usize))
            .route(web::post().to(callback)),
    )
    .route("/staff/tasks/{task}/done", web::post().to(done))
    .route(
        "/staff/requests/{id}/restriction/lift",
        web::post().to(lift_restriction),
    )
    .route("/staff/tasks/{task}/waive", web::post().to(waive));
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tracing::instrument(skip_all)]
async fn callback(
    req: HttpRequest,
    s: web::Data<Services>,
    limits: web::Data<super::limits::Limits>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    super::limits::check(&limits.callbacks, &super::limits::client(&req)).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::invalid(
            "invalid_answer",
            "回调内容须为 UTF-8 JSON",
            "A callback is UTF-8 JSON",
        )
    })?;
    // PostgreSQL cannot store a NUL in the recorded result (see `nul.rs`).
    if super::nul::json_has_nul(text.as_bytes()) {
        return Err(ApiError::invalid(
            "invalid_answer",
            "回调内容不能包含空字符（U+0000）",
            "A callback may not contain the NUL character (U+0000)",
        ));
    }
    let (ts, sig) = (
        header(&req, "X-Rightsflow-Timestamp"),
        header(&req, "X-Rightsflow-Signature"),
    );
    let services = s.clone();
    let task = path.into_inner();
    let outcome = web::block(move || {
        run::receive_callback(
            &services,
            &task,
            ts.as_deref(),
            sig.as_deref(),
            &text,
            now(),
        )
    })
    .await
    .map_err(|_| ApiError::internal())?;
    match outcome {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({ "recorded": true }))),
        Err(CallbackError::NotFound) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "没有这个任务",
            "No such task",
        )),
        Err(CallbackError::Signature(e)) => {
            tracing::warn!(error = %e, "a fulfilment callback was refused");
            let (code, zh, en) = match e {
                SignatureError::Stale => (
                    "stale_signature",
                    "签名时间与当前时间相差超过五分钟",
                    "The signature's timestamp is more than five minutes from now",
                ),
                _ => (
                    "invalid_signature",
                    "签名无效",
                    "The signature does not match",
                ),
            };
            Err(ApiError::new(StatusCode::UNAUTHORIZED, code, zh, en))
        }
        Err(CallbackError::Invalid(why)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_answer",
            format!("回调内容无效：{why}"),
            format!("The callback is not valid: {why}"),
        )),
        Err(CallbackError::Ended) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "task_ended",
            "该任务已结束",
            "The task has ended already",
        )),
        Err(CallbackError::Failed(e)) => {
            tracing::error!(error = %e, "recording a fulfilment callback failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "try_again",
                "暂时无法记录，请稍后重试",
                "Could not record it now; try again later",
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoneBody {
    /// What was done.
    what: String,
    #[serde(default)]
    evidence: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn done(
    s: web::Data<Services>,
    who: StaffActor,
    path: web::Path<String>,
    body: web::Json<DoneBody>,
) -> Result<HttpResponse, ApiError> {
    let services = s.clone();
    let task = path.into_inner();
    let DoneBody { what, evidence } = body.into_inner();
    blocking(move || run::mark_done(&services, &who.0, &task, &what, evidence.as_deref(), now()))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "done" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaiveBody {
    reason: String,
}

#[tracing::instrument(skip_all)]
async fn waive(
    s: web::Data<Services>,
    who: StaffActor,
    path: web::Path<String>,
    body: web::Json<WaiveBody>,
) -> Result<HttpResponse, ApiError> {
    let services = s.clone();
    let task = path.into_inner();
    let reason = body.into_inner().reason;
    blocking(move || run::waive(&services, &who.0, &task, &reason, now())).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "waived" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiftBody {
    reason: String,
}

/// A reviewer or admin lifts a restriction in force: the subject is told now, the systems act
/// after the notice period.
#[tracing::instrument(skip_all)]
async fn lift_restriction(
    s: web::Data<Services>,
    who: StaffActor,
    path: web::Path<String>,
    body: web::Json<LiftBody>,
) -> Result<HttpResponse, ApiError> {
    let services = s.clone();
    let id = path.into_inner();
    let reason = body.into_inner().reason;
    let effective = blocking(move || {
        crate::fulfilment::restriction::lift(&services, &who.0, &id, &reason, now())
    })
    .await?;
    Ok(HttpResponse::Accepted().json(json!({ "lifts_at": effective })))
}

//! The platform's side of the consent ledger: read a platform account's current consents and
//! history, record a grant or withdrawal made in the platform's own pages. Authenticated by
//! the platform's key (`consents.api_key`), compared in constant time.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::{blocking, ApiError};
use crate::fulfilment::{consents, gpc};
use crate::service::{now, Services};
use crate::storage::from_db_time;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/subjects/{platform_user_id}/consents", web::get().to(read))
        .route(
            "/subjects/{platform_user_id}/consents",
            web::post().to(record),
        )
        .route("/platform/gpc", web::post().to(gpc_signal));
}

/// The platform's key, or the answer that ends the request.
fn platform(req: &HttpRequest, s: &Services) -> Result<(), ApiError> {
    let Some(key) = &s.consents().api_key else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "同意记录接口未启用",
            "The consent API is not enabled",
        ));
    };
    let given = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if crate::auth::equal(given, key.expose()) {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

fn checked_user(id: &str) -> Result<String, ApiError> {
    if id.is_empty() || id.chars().count() > 128 || id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_platform_user_id",
            "平台用户 ID 无效",
            "The platform user id is invalid",
        ));
    }
    Ok(id.to_owned())
}

async fn read(
    req: HttpRequest,
    s: web::Data<Services>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    platform(&req, &s)?;
    let user = checked_user(&path.into_inner())?;
    let (services, u) = (s.clone(), user.clone());
    let (current, history) = blocking(move || consents::current(&services, &u)).await?;
    let history: Vec<_> = history
        .iter()
        .map(|e| json!({ "purpose": e.purpose, "granted": e.granted, "source": e.source, "at": from_db_time(e.at) }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "platform_user_id": user,
        "consents": current,
        "history": history,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    purpose: String,
    granted: bool,
    /// `platform` when absent; e.g. `gpc` for a Global Privacy Control signal.
    #[serde(default)]
    source: Option<String>,
}

async fn record(
    req: HttpRequest,
    s: web::Data<Services>,
    path: web::Path<String>,
    body: web::Json<RecordBody>,
) -> Result<HttpResponse, ApiError> {
    platform(&req, &s)?;
    let user = checked_user(&path.into_inner())?;
    let RecordBody {
        purpose,
        granted,
        source,
    } = body.into_inner();
    if !s.consents().purposes.contains(&purpose) {
        return Err(ApiError::invalid(
            "unknown_purpose",
            format!("未知的同意用途：{purpose}"),
            format!("Unknown consent purpose: {purpose}"),
        ));
    }
    let source = source.unwrap_or_else(|| "platform".into());
    let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-:.".contains(c);
    if source.is_empty() || source.len() > 64 || !source.chars().all(plain) {
        return Err(ApiError::invalid(
            "invalid_source",
            "来源须为 1–64 个小写字母、数字或 _-:. 字符",
            "The source must be 1-64 lower-case letters, digits or _-:. characters",
        ));
    }
    let services = s.clone();
    let event = blocking(move || {
        consents::record_from_platform(&services, &user, &purpose, granted, &source, now())
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "purpose": event.purpose,
        "granted": event.granted,
        "source": event.source,
        "at": from_db_time(event.at),
    })))
}

/// Global Privacy Control (docs/INTEROP.md): the platform forwards a signed-in user's
/// `Sec-GPC` header with the token it signed for them (`X-Platform-Token`). `Sec-GPC: 1` opts
/// the account out of sharing and personalised advertising in the consent ledger (source
/// `gpc`); any other value, or none, changes nothing and says so (`"gpc": false`).
async fn gpc_signal(req: HttpRequest, s: web::Data<Services>) -> Result<HttpResponse, ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let token = header("x-platform-token").unwrap_or_default();
    let user = super::subject::platform_user(&s, token)?;
    if !gpc::is_signal(header("sec-gpc")) {
        return Ok(HttpResponse::Ok().json(json!({
            "platform_user_id": user, "gpc": false,
            "withdrawn": [], "already_withdrawn": [], "kept": [],
        })));
    }
    let (services, u) = (s.clone(), user.clone());
    let outcome = blocking(move || gpc::record(&services, &u, now())).await?;
    Ok(HttpResponse::Ok().json(json!({
        "platform_user_id": user, "gpc": true,
        "withdrawn": outcome.withdrawn,
        "already_withdrawn": outcome.already_withdrawn,
        "kept": outcome.kept,
    })))
}

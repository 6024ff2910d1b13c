//! Staff view of the outbox: messages that could not be delivered, and an admin's retry.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::{blocking, ApiError};
use super::extract::StaffActor;
use crate::service::{now, ServiceError, Services};
use crate::storage::{outbox, StoreError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/staff/outbox/failed", web::get().to(failed))
        .route("/staff/outbox/{id}/retry", web::post().to(retry));
}

/// Parked deliveries with their last error (no message content: it may hold personal data).
async fn failed(s: web::Data<Services>, _who: StaffActor) -> Result<HttpResponse, ApiError> {
    let services = s.clone();
    let rows = blocking(move || Ok(outbox::failed(&mut *services.db().conn()?, 200)?)).await?;
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "request_id": r.request_id, "kind": r.kind, "attempts": r.attempts,
                "last_error": r.last_error, "created_at": crate::storage::from_db_time(r.created_at),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// Puts a failed row back in the queue (admins only).
async fn retry(
    s: web::Data<Services>,
    who: StaffActor,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !who.0.administers() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            "只有管理员可以重试发送",
            "Only admins may retry deliveries",
        ));
    }
    let id = path.into_inner();
    let services = s.clone();
    let result =
        blocking(
            move || match outbox::retry_failed(&mut *services.db().conn()?, &id, now()) {
                Ok(()) => Ok(Ok(())),
                Err(StoreError::Conflict) => Ok(Err(())),
                Err(e) => Err(ServiceError::from(e)),
            },
        )
        .await?;
    match result {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({ "status": "pending" }))),
        Err(()) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_failed",
            "该消息不处于发送失败状态",
            "This delivery is not in the failed state",
        )),
    }
}

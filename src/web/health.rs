//! Liveness and readiness probes for load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::blocking;
use crate::service::{ServiceError, Services};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The process is up and serving.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers; 503 when it does not, so a balancer stops sending traffic here.
async fn readyz(s: web::Data<Services>) -> HttpResponse {
    let services = s.clone();
    let backend = s.db().backend().as_str();
    match blocking(move || services.db().ping().map_err(ServiceError::from)).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "database": backend })),
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "database": backend })),
    }
}

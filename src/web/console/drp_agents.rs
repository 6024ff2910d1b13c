//! Authorised agents of the Data Rights Protocol (admins): register one with its verify key,
//! change its key, turn it off or on. Every change is in the audit log (storage::drp).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::session::{finish, form, page_for, signed_in};
use super::Tpl;
use crate::interop::drp::service::{self as drp, DrpError};
use crate::service::staff::ConsoleUser;
use crate::service::{now, ServiceError, Services};
use crate::storage::from_db_time;
use crate::web::error::{blocking, ApiError};

fn refused(e: DrpError) -> ServiceError {
    match e {
        DrpError::Service(e) => e,
        DrpError::NotFound => ServiceError::NotFound,
        other => ServiceError::Internal(other.to_string()),
    }
}

async fn render(
    req: &HttpRequest,
    s: &web::Data<Services>,
    n: &Tpl,
    user: &ConsoleUser,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let page = page_for(req, user);
    if !user.actor.administers() {
        return super::error_page(&page, n, user, &ApiError::from(ServiceError::NotPermitted));
    }
    let (services, p) = (s.clone(), page.clone());
    let loaded = blocking(move || {
        let rows = drp::agents(services.db()).map_err(refused)?;
        Ok(rows
            .iter()
            .map(|a| {
                json!({
                    "id": a.id, "name": a.name, "verify_key": a.verify_key, "active": a.active,
                    "callback_origin": a.callback_origin,
                    "updated_at": p.time(from_db_time(a.updated_at)),
                })
            })
            .collect::<Vec<Value>>())
    })
    .await;
    let rows = match loaded {
        Ok(rows) => rows,
        Err(e) => return super::error_page(&page, n, user, &e),
    };
    let ctx = json!({
        "rows": rows,
        "error": error,
        "business_id": s.drp().map(|d| d.business_id.clone()),
        "business_key": s.drp().map(|d| d.verify_key()),
    });
    let title = page.t("drp.title");
    finish(page.render(n, status, "drp_agents", &title, ctx), user)
}

pub async fn list(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    match signed_in(&req, &s).await {
        Ok(user) => render(&req, &s, &n, &user, StatusCode::OK, None).await,
        Err(to) => to,
    }
}

/// Registers an agent, or changes the name and key of one.
pub async fn add(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (user, page, posted) = match form(&req, &s, &n, body).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let field = |k: &str| posted.one(k).unwrap_or_default().trim().to_owned();
    let (id, name, key) = (field("id"), field("name"), field("verify_key"));
    let origin = Some(field("callback_origin")).filter(|o| !o.is_empty());
    let (services, actor) = (s.clone(), user.actor.clone());
    let done = web::block(move || {
        let origin = origin.as_deref();
        drp::register_agent(services.db(), &actor, &id, &name, &key, origin, now())
    })
    .await;
    match done {
        Ok(Ok(())) => finish(page.redirect("/console/drp-agents?done=1"), &user),
        Ok(Err(DrpError::Invalid(_))) => {
            let msg = page.t("drp.bad_input");
            render(
                &req,
                &s,
                &n,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(msg),
            )
            .await
        }
        Ok(Err(e)) => super::error_page(&page, &n, &user, &ApiError::from(refused(e))),
        Err(_) => super::error_page(&page, &n, &user, &ApiError::internal()),
    }
}

/// Turns an agent off or on.
pub async fn change(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (user, page, posted) = match form(&req, &s, &n, body).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let active = posted.one("active") == Some("1");
    let (services, actor, id) = (s.clone(), user.actor.clone(), path.into_inner());
    let done = blocking(move || {
        drp::set_agent_active(services.db(), &actor, &id, active, now()).map_err(refused)
    })
    .await;
    match done {
        Ok(()) => finish(page.redirect("/console/drp-agents?done=1"), &user),
        Err(e) => super::error_page(&page, &n, &user, &e),
    }
}

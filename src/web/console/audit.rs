//! `/console/audit`: the audit log for auditors — who signed in, who changed which account,
//! who looked at which request, exports, downloads and configuration changes — filtered by
//! request reference or action, newest first. Auditors only.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::session::{finish, page_for, signed_in};
use super::Tpl;
use crate::service::Services;
use crate::storage::audit_log::action;
use crate::web::audit::{entry, load, LogQuery, PAGE_SIZE};
use crate::web::error::{blocking, ApiError};

/// The actions the filter offers, in the order shown.
const ACTIONS: [&str; 12] = [
    action::REQUEST_VIEWED,
    action::RESULT_DOWNLOADED,
    action::QUEUE_EXPORTED,
    action::EVIDENCE_EXPORTED,
    action::SIGN_IN,
    action::SIGN_IN_FAILED,
    action::ACCOUNT_ADDED,
    action::ROLE_CHANGED,
    action::ACCOUNT_ENABLED,
    action::ACCOUNT_DISABLED,
    action::CONFIG_CHANGED,
    action::REQUEST_ANONYMISED,
];

pub async fn page(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let page = page_for(&req, &user);
    let q = match web::Query::<LogQuery>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(_) => {
            let e = ApiError::invalid(
                "invalid_filter",
                page.t("audit.bad_filter"),
                page.t("audit.bad_filter"),
            );
            return super::error_page(&page, &n, &user, &e);
        }
    };
    let (services, actor) = (s.clone(), user.actor.clone());
    let chosen = (q.request.clone(), q.action.clone());
    let loaded = match blocking(move || load(&services, &actor, &q)).await {
        Ok(p) => p,
        Err(e) => return super::error_page(&page, &n, &user, &e),
    };
    let label = |a: &str| page.t(&format!("audit.actions.{}", a.replace('.', "_")));
    let entries: Vec<Value> = loaded
        .rows
        .iter()
        .map(|r| {
            let mut v = entry(&loaded, r);
            v["action_label"] = json!(label(&r.action));
            v["at_text"] = json!(page.time(r.at()));
            v["role_label"] = json!(r
                .actor_role
                .as_deref()
                .map(|role| page.t(&format!("roles.{role}"))));
            v["actor_label"] = json!(page.t(&format!("audit.actors.{}", r.actor_type)));
            v["details_text"] = json!(r.details);
            v
        })
        .collect();
    let actions: Vec<Value> = ACTIONS
        .iter()
        .map(|a| json!({ "value": a, "label": label(a), "selected": chosen.1.as_deref() == Some(*a) }))
        .collect();
    let pages = (loaded.total + PAGE_SIZE - 1) / PAGE_SIZE;
    let ctx = json!({
        "entries": entries,
        "actions": actions,
        "request": chosen.0,
        "total": loaded.total,
        "page": loaded.page,
        "pages": pages.max(1),
        "next": (loaded.page < pages).then_some(loaded.page + 1),
        "prev": (loaded.page > 1).then_some(loaded.page - 1),
    });
    let title = page.t("audit.title");
    finish(page.render(&n, StatusCode::OK, "audit", &title, ctx), &user)
}

//! The auditor's view of the audit log (`GET /api/v1/audit/log`, and the console's
//! `/console/audit`): who signed in, who changed which account, who looked at which request,
//! who exported or downloaded what, when the configuration changed. Auditors only.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{blocking, ApiError};
use super::extract::StaffActor;
use crate::domain::{Actor, Reference};
use crate::service::{ServiceError, Services};
use crate::storage::audit_log::{Filter, LogRow};

pub const PAGE_SIZE: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit/log", web::get().to(log));
}

/// The filters, as the query string gives them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// A request's reference (DSR-…).
    pub request: Option<String>,
    /// A staff account's id.
    pub staff: Option<String>,
    pub action: Option<String>,
    pub page: Option<i64>,
}

/// One page of entries with the staff members' emails and the requests' references.
pub struct LogPage {
    pub rows: Vec<LogRow>,
    pub total: i64,
    pub page: i64,
    pub emails: HashMap<String, String>,
    pub references: HashMap<String, String>,
}

/// Reads one page for `who` (auditors only).
pub fn load(s: &Services, who: &Actor, q: &LogQuery) -> Result<LogPage, ServiceError> {
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }
    let mut filter = Filter {
        actor_id: given(&q.staff).map(str::to_owned),
        action: given(&q.action).map(str::to_owned),
        request_id: None,
    };
    let page = q.page.unwrap_or(1);
    if !(1..=super::MAX_PAGE).contains(&page) {
        return Err(ServiceError::InvalidFilter("page"));
    }
    let mut conn = s.db().conn()?;
    if let Some(r) = given(&q.request) {
        let reference = Reference::parse(r).map_err(|_| ServiceError::InvalidFilter("request"))?;
        // An unknown reference finds nothing, like any filter that matches nothing.
        filter.request_id = Some(
            crate::storage::requests::find_by_reference(&mut conn, &reference)
                .map(|r| r.id)
                .unwrap_or_default(),
        );
    }
    drop(conn);
    let (rows, total) =
        crate::service::audit_log::list(s, who, &filter, PAGE_SIZE, (page - 1) * PAGE_SIZE)?;
    let mut conn = s.db().conn()?;
    let emails = crate::storage::staff::all(&mut conn)?
        .into_iter()
        .map(|r| (r.id, r.email))
        .collect();
    // The references of the requests on this page, in one query (not the requests
    // themselves: their contact data is not needed here, so it is not opened).
    let ids: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.request_id.as_deref())
        .collect();
    let references = crate::storage::requests::references_of(&mut conn, &ids)?;
    Ok(LogPage {
        rows,
        total,
        page,
        emails,
        references,
    })
}

/// An entry as the API and the console show it.
pub fn entry(p: &LogPage, r: &LogRow) -> Value {
    let details: Value = serde_json::from_str(&r.details).unwrap_or(Value::Null);
    json!({
        "seq": r.seq,
        "at": r.at(),
        "actor": {
            "type": r.actor_type,
            "id": r.actor_id,
            "role": r.actor_role,
            "email": r.actor_id.as_ref().and_then(|id| p.emails.get(id)),
        },
        "action": r.action,
        "request": r.request_id.as_ref().map(|id| json!({
            "id": id,
            "reference": p.references.get(id),
        })),
        "details": details,
        "hash": r.hash,
    })
}

async fn log(
    s: web::Data<Services>,
    who: StaffActor,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let services = s.clone();
    let q = q.into_inner();
    let p = blocking(move || load(&services, &who.0, &q)).await?;
    let items: Vec<Value> = p.rows.iter().map(|r| entry(&p, r)).collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": items,
        "total": p.total,
        "page": p.page,
        "page_size": PAGE_SIZE,
    })))
}

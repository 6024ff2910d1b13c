//! The data systems, recipients and destinations fulfilment works with (read-only: they are
//! configured in the file and checked at start-up), so staff can see where a request goes and
//! why. Any signed-in staff member; no URLs or secrets are shown.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::session::{finish, page_for, signed_in};
use super::Tpl;
use crate::fulfilment::registry::{Connector, System};
use crate::service::Services;
use crate::web::portal::page::Page;

fn row(page: &Page, x: &System) -> Value {
    let categories: Vec<String> = x
        .categories()
        .iter()
        .map(|c| page.t(&format!("systems.categories.{}", c.as_str())))
        .collect();
    let keys: Vec<String> = match &x.connector {
        Connector::Sql { dataset, .. } => dataset
            .subject
            .keys
            .keys()
            .map(|k| format!("{k:?}"))
            .collect(),
        Connector::Http(h) => h.keys.iter().map(|k| format!("{k:?}")).collect(),
        Connector::Manual { .. } => vec![],
    };
    json!({
        "name": x.name,
        "label": x.label,
        "connector": page.t(&format!("systems.connectors.{}", x.kind())),
        "categories": categories.join("、"),
        "keys": keys.join(", "),
        "purposes": x.purposes().join(", "),
        "purpose": x.recipient.as_ref().map(|p| p.0.clone()),
        "instructions": match &x.connector {
            Connector::Manual { instructions, .. } => Some(instructions.clone()),
            _ => None,
        },
        "timeout": x.timeout.as_secs(),
    })
}

pub async fn list(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let page = page_for(&req, &user);
    let registry = s.systems();
    let systems: Vec<Value> = registry
        .systems()
        .iter()
        .filter(|x| x.recipient.is_none())
        .map(|x| row(&page, x))
        .collect();
    let recipients: Vec<Value> = registry.recipients().map(|x| row(&page, x)).collect();
    let destinations: Vec<Value> = registry
        .destinations()
        .iter()
        .map(|d| json!({ "name": d.name, "label": d.label }))
        .collect();
    let ctx = json!({
        "systems": systems,
        "recipients": recipients,
        "destinations": destinations,
        "notice_days": s.restriction_notice_days(),
    });
    let title = page.t("systems.title");
    finish(
        page.render(&n, StatusCode::OK, "systems", &title, ctx),
        &user,
    )
}

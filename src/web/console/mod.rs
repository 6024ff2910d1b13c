//! The staff console: server-rendered pages for customer-service staff and the privacy officer
//! (Handlebars under `templates/console/`). Every route checks the session on the server; what
//! a role may do to a request is the core's decision, shown as the actions the page offers.
//! See docs/CONSOLE.md.

pub mod audit;
pub mod dashboard;
pub mod drp_agents;
pub mod queue;
pub mod request;
pub mod second_factor;
pub mod session;
pub mod staff_admin;
pub mod systems;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::domain::{Locale, RejectionReason, RequestKind, Status};
use crate::notifications::Notifier;
use crate::service::staff::ConsoleUser;
use crate::web::error::ApiError;
use crate::web::portal::page::Page;

pub type Tpl = web::Data<Arc<Notifier>>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(home))
        .route("/console/sign-in", web::get().to(session::sign_in_form))
        .route("/console/sign-in", web::post().to(session::sign_in))
        .route("/console/sign-in/code", web::post().to(second_factor::code))
        .route("/console/sign-out", web::post().to(session::sign_out))
        .route("/console/account", web::get().to(second_factor::account))
        .route(
            "/console/account/totp",
            web::post().to(second_factor::account_totp),
        )
        .route("/console/dashboard", web::get().to(dashboard::dashboard))
        .route("/console/queue", web::get().to(queue::queue))
        .route("/console/queue.csv", web::get().to(queue::csv))
        .route("/console/queue/bulk", web::post().to(queue::bulk))
        .route("/console/requests/{id}", web::get().to(request::show))
        .route(
            "/console/requests/{id}/actions",
            web::post().to(request::act),
        )
        .route(
            "/console/requests/{id}/tasks/{task}/waive",
            web::post().to(request::waive),
        )
        .route(
            "/console/requests/{id}/tasks/{task}/done",
            web::post().to(request::mark_done),
        )
        .route(
            "/console/requests/{id}/restriction/lift",
            web::post().to(request::lift_restriction),
        )
        .route("/console/systems", web::get().to(systems::list))
        .route("/console/audit", web::get().to(audit::page))
        .route("/console/staff", web::get().to(staff_admin::list))
        .route("/console/staff", web::post().to(staff_admin::add))
        .route("/console/staff/{id}", web::post().to(staff_admin::change))
        .route("/console/drp-agents", web::get().to(drp_agents::list))
        .route("/console/drp-agents", web::post().to(drp_agents::add))
        .route(
            "/console/drp-agents/{id}",
            web::post().to(drp_agents::change),
        );
}

async fn home(req: HttpRequest) -> HttpResponse {
    Page::console(&req).redirect("/console/queue")
}

/// The core's own labels for statuses, kinds and rejection reasons, in the page's language.
pub fn label<T: Labelled>(page: &Page, value: T) -> &'static str {
    match page.locale {
        Locale::ZhCn => value.zh(),
        Locale::En => value.en(),
    }
}

pub trait Labelled {
    fn zh(self) -> &'static str;
    fn en(self) -> &'static str;
}

macro_rules! labelled {
    ($($t:ty),*) => {$(
        impl Labelled for $t {
            fn zh(self) -> &'static str { self.label_zh() }
            fn en(self) -> &'static str { self.label_en() }
        }
    )*};
}
labelled!(RequestKind, RejectionReason);

/// Statuses as staff say them (the core's labels speak to the subject: "waiting for you").
pub fn status_label(page: &Page, status: Status) -> String {
    page.t(&format!("statuses.{}", status.as_str()))
}

/// A page for an error, with the staff member still signed in (403 for a role that may not,
/// 404 for no such request, …).
pub fn error_page(page: &Page, n: &Notifier, user: &ConsoleUser, e: &ApiError) -> HttpResponse {
    let title = page.t("error.title");
    session::finish(
        page.render(
            n,
            e.status(),
            "error",
            &title,
            json!({ "message": e.message(page.locale), "code": e.code() }),
        ),
        user,
    )
}

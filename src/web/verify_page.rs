//! `/verify`: where the magic link in the code email lands, a portal page. The GET shows a
//! button and changes nothing (mail scanners open links to check them, which must not use up
//! the single-use link); the POST verifies, opens the session (cookie) and says so.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::blocking;
use super::portal::csrf;
use super::portal::page::{web_query, Page};
use crate::notifications::Notifier;
use crate::service::{now, verification, Services};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/verify", web::get().to(show))
        .route("/verify", web::post().to(confirm));
}

fn render(
    page: &Page,
    n: &Notifier,
    status: StatusCode,
    state: &str,
    token: Option<String>,
    reference: Option<String>,
    status_label: Option<&str>,
) -> HttpResponse {
    let title = page.t(&format!("magic.{state}_title"));
    page.render(
        n,
        status,
        "magic",
        &title,
        json!({
            "state": state,
            "message": page.t(&format!("magic.{state}")),
            "token": token,
            "reference": reference,
            "status": status_label,
        }),
    )
}

async fn show(req: HttpRequest, n: web::Data<Arc<Notifier>>) -> HttpResponse {
    let page = Page::new(&req);
    match web_query(&req, "token").filter(|t| !t.is_empty() && t.len() < 4096) {
        Some(token) => render(
            &page,
            &n,
            StatusCode::OK,
            "confirm",
            Some(token),
            None,
            None,
        ),
        None => render(&page, &n, StatusCode::OK, "bad", None, None, None),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
    /// Required like on every portal form: without it another site could post its author's
    /// own unused link and sign the visitor in to the author's request. The GET page sets
    /// the cookie it pairs with, even in a browser that has never seen the portal.
    #[serde(default)]
    csrf: Option<String>,
}

async fn confirm(
    req: HttpRequest,
    s: web::Data<Services>,
    n: web::Data<Arc<Notifier>>,
    limits: web::Data<super::limits::Limits>,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let page = Page::new(&req);
    let form = form.into_inner();
    if !csrf::check(&req, form.csrf.as_deref()) {
        // Not re-offered: a token posted from elsewhere is not the visitor's own link.
        return render(
            &page,
            &n,
            StatusCode::FORBIDDEN,
            "expired",
            None,
            None,
            None,
        );
    }
    if let Err(e) = super::limits::check(&limits.code_checks_ip, &super::limits::client(&req)).await
    {
        return render(&page, &n, e.status(), "bad", None, None, None);
    }
    let token = form.token;
    let services = s.clone();
    match blocking(move || verification::verify_magic_link(&services, &token, now())).await {
        Ok(session) => {
            let status = match page.locale {
                crate::domain::Locale::ZhCn => session.request.state.status.label_zh(),
                crate::domain::Locale::En => session.request.state.status.label_en(),
            };
            let mut res = render(
                &page,
                &n,
                StatusCode::OK,
                "ok",
                None,
                Some(session.request.reference.to_string()),
                Some(status),
            );
            let _ = res.add_cookie(&super::subject::session_cookie(&session));
            res
        }
        Err(_) => render(&page, &n, StatusCode::UNAUTHORIZED, "bad", None, None, None),
    }
}

//! Signing in to the console: the session cookie (a short-lived JWT naming a revocable
//! session), the page guard every console route goes through, sign-in and sign-out.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::Tpl;
use crate::service::staff::{self, ConsoleUser};
use crate::service::{now, Services};
use crate::web::error::blocking;
use crate::web::limits::Limits;
use crate::web::portal::csrf;
use crate::web::portal::forms::Posted;
use crate::web::portal::page::{web_query, Page};

/// HttpOnly (no script reads it), Secure, SameSite=Strict, and only sent to `/console`.
pub const COOKIE: &str = "rf_staff";

fn cookie(user: &ConsoleUser) -> Cookie<'static> {
    let seconds = (user.token_expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    Cookie::build(COOKIE, user.token.clone())
        .path("/console")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(seconds))
        .finish()
}

fn gone() -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, "").path("/console").finish();
    c.make_removal();
    c
}

/// Where a visitor without a live session goes: the sign-in page, then back here.
fn to_sign_in(req: &HttpRequest) -> HttpResponse {
    let next = if req.method() == actix_web::http::Method::GET {
        let q = req.query_string();
        let here = if q.is_empty() {
            req.path().to_owned()
        } else {
            format!("{}?{q}", req.path())
        };
        format!("?next={}", crate::percent::encode(&here, b"/"))
    } else {
        String::new()
    };
    let mut b = HttpResponse::SeeOther();
    crate::web::portal::page::secure(&mut b);
    b.insert_header(("Location", format!("/console/sign-in{next}")))
        .cookie(gone())
        .finish()
}

/// A safe place to return to after signing in: a console path on this site, nothing else.
pub fn next_of(raw: Option<String>) -> String {
    raw.filter(|n| n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/console/queue".into())
}

/// The signed-in staff member, or the response that sends the visitor to sign in.
pub async fn signed_in(
    req: &HttpRequest,
    s: &web::Data<Services>,
) -> Result<ConsoleUser, HttpResponse> {
    let Some(token) = req
        .cookie(COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|t| !t.is_empty())
    else {
        return Err(to_sign_in(req));
    };
    let services = s.clone();
    blocking(move || staff::console_authenticate(&services, &token, now()))
        .await
        .map_err(|_| to_sign_in(req))
}

/// The console page for this user: their name and role in the layout, the renewed cookie on
/// the response.
pub fn page_for(req: &HttpRequest, user: &ConsoleUser) -> Page {
    Page::console(req).with_user(json!({
        "email": user.staff.email,
        "role": user.staff.role,
        "role_label": role_label(req, &user.staff.role),
        "admin": user.actor.administers(),
        "auditor": matches!(&user.actor, crate::domain::Actor::Staff { role: crate::domain::Role::Auditor, .. }),
        "acts": matches!(&user.actor, crate::domain::Actor::Staff { role, .. } if role.acts()),
    }))
}

fn role_label(req: &HttpRequest, role: &str) -> String {
    Page::console(req).t(&format!("roles.{role}"))
}

/// Sets the (possibly renewed) session cookie on a console response.
pub fn finish(mut res: HttpResponse, user: &ConsoleUser) -> HttpResponse {
    let _ = res.add_cookie(&cookie(user));
    res
}

fn sign_in_page(
    page: &Page,
    n: &Tpl,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<String>,
) -> HttpResponse {
    let title = page.t("sign_in.title");
    page.render(
        n,
        status,
        "sign_in",
        &title,
        json!({ "email": email, "next": next, "error": error }),
    )
}

pub async fn sign_in_form(req: HttpRequest, n: Tpl) -> HttpResponse {
    let page = Page::console(&req);
    let next = next_of(web_query(&req, "next"));
    // After signing out, a notice; after a code step that took too long, an error.
    let (notice, error) = match web_query(&req, "done").as_deref() {
        Some("signed_out") => (Some(page.t("sign_in.signed_out")), None),
        Some("expired") => (None, Some(page.t("sign_in.expired"))),
        _ => (None, None),
    };
    let title = page.t("sign_in.title");
    page.render(
        &n,
        StatusCode::OK,
        "sign_in",
        &title,
        json!({ "email": "", "next": next, "error": error, "notice": notice }),
    )
}

pub async fn sign_in(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    limits: web::Data<Limits>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let page = Page::console(&req);
    let posted = Posted(body.into_inner());
    let email = posted.one("email").unwrap_or_default().to_owned();
    let next = next_of(posted.one("next").map(str::to_owned));
    if !csrf::check(&req, posted.one(csrf::FIELD)) {
        return sign_in_page(
            &page,
            &n,
            StatusCode::FORBIDDEN,
            &email,
            &next,
            Some(page.t("errors.csrf")),
        );
    }
    if let Err(e) = crate::web::staff::limit_sign_in(&req, &s, &limits).await {
        let mut res = sign_in_page(
            &page,
            &n,
            e.status(),
            &email,
            &next,
            Some(e.message(page.locale).to_owned()),
        );
        e.set_retry_after(&mut res);
        return res;
    }
    let password = posted.one("password").unwrap_or_default().to_owned();
    let services = s.clone();
    let typed = email.clone();
    match blocking(move || staff::console_sign_in(&services, &typed, &password, now())).await {
        Ok(step) => super::second_factor::after_password(&page, &n, &next, step),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => sign_in_page(
            &page,
            &n,
            StatusCode::UNAUTHORIZED,
            &email,
            &next,
            Some(page.t("sign_in.failed")),
        ),
        Err(e) => sign_in_page(
            &page,
            &n,
            e.status(),
            &email,
            &next,
            Some(e.message(page.locale).to_owned()),
        ),
    }
}

pub async fn sign_out(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let posted = Posted(body.into_inner());
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let page = page_for(&req, &user);
    if !csrf::check(&req, posted.one(csrf::FIELD)) {
        return super::error_page(&page, &n, &user, &csrf::error());
    }
    let services = s.clone();
    let sid = user.session_id.clone();
    if let Err(e) = blocking(move || staff::console_sign_out(&services, &sid, now())).await {
        return super::error_page(&page, &n, &user, &e);
    }
    let mut res = Page::console(&req).redirect("/console/sign-in?done=signed_out");
    let _ = res.add_cookie(&gone());
    res
}

/// The start of every console form handler: the signed-in staff member, their page, and the
/// posted form with its token checked; or the response that ends the request here.
pub async fn form(
    req: &HttpRequest,
    s: &web::Data<Services>,
    n: &Tpl,
    body: web::Form<Vec<(String, String)>>,
) -> Result<(ConsoleUser, Page, Posted), HttpResponse> {
    let user = signed_in(req, s).await?;
    let page = page_for(req, &user);
    let posted = Posted(body.into_inner());
    if !csrf::check(req, posted.one(csrf::FIELD)) {
        return Err(super::error_page(&page, n, &user, &csrf::error()));
    }
    Ok((user, page, posted))
}

//! The second factor in the console: the code step of signing in (and the enrolment an admin
//! can require there), and each staff member's own account page (set up or turn off the
//! second factor, their recent sign-ins).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::session::{finish, form, page_for, signed_in};
use super::Tpl;
use crate::auth::totp;
use crate::service::second_factor::{self, Enrolment};
use crate::service::staff::{self, ConsoleStep};
use crate::service::{now, ServiceError, Services};
use crate::storage::from_db_time;
use crate::web::error::blocking;
use crate::web::limits::Limits;
use crate::web::portal::csrf;
use crate::web::portal::forms::Posted;
use crate::web::portal::page::Page;

/// Carries a right password to the code step: HttpOnly, Secure, SameSite=Strict, sent only
/// to the sign-in pages, gone after five minutes.
const PENDING_COOKIE: &str = "rf_staff_pending";
const PENDING_PATH: &str = "/console/sign-in";

fn pending_cookie(value: &str, minutes: i64) -> Cookie<'static> {
    Cookie::build(PENDING_COOKIE, value.to_owned())
        .path(PENDING_PATH)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::minutes(minutes))
        .finish()
}

/// The enrolment as a page shows it: the QR code (SVG drawn by us), the secret in groups of
/// four for typing, and the address for apps that take a link.
fn enrolment_view(page: &Page, e: &Enrolment) -> Value {
    let grouped: Vec<String> = e
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    json!({
        "qr": totp::qr_svg(&e.uri, &page.t("totp.qr_label")),
        "secret": grouped.join(" "),
        "uri": e.uri,
    })
}

/// The code page of a sign-in (with the enrolment when one is needed).
fn code_page(
    page: &Page,
    n: &Tpl,
    status: StatusCode,
    next: &str,
    enrolment: Option<&Enrolment>,
    error: Option<String>,
) -> HttpResponse {
    let title = page.t(if enrolment.is_some() {
        "totp.enrol_title"
    } else {
        "totp.code_title"
    });
    page.render(
        n,
        status,
        "second_factor",
        &title,
        json!({
            "next": next,
            "enrol": enrolment.map(|e| enrolment_view(page, e)),
            "error": error,
        }),
    )
}

/// What the password step answers when the account has (or must set up) a second factor.
pub fn after_password(page: &Page, n: &Tpl, next: &str, step: ConsoleStep) -> HttpResponse {
    let (pending, enrolment) = match step {
        ConsoleStep::Code { pending } => (pending, None),
        ConsoleStep::Enrol { pending, enrolment } => (pending, Some(enrolment)),
        ConsoleStep::SignedIn(user) => return finish(page.redirect(next), &user),
    };
    let mut res = code_page(page, n, StatusCode::OK, next, enrolment.as_ref(), None);
    let _ = res.add_cookie(&pending_cookie(&pending, 5));
    res
}

/// The code step: the pending cookie from the password step, the code, then the session.
pub async fn code(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    limits: web::Data<Limits>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let page = Page::console(&req);
    let posted = Posted(body.into_inner());
    let next = super::session::next_of(posted.one("next").map(str::to_owned));
    let pending = req
        .cookie(PENDING_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let again = || {
        let mut res = page.redirect("/console/sign-in?done=expired");
        let _ = res.add_cookie(&pending_cookie("", 0));
        res
    };
    if pending.is_empty() {
        return again();
    }
    if !csrf::check(&req, posted.one(csrf::FIELD)) {
        return code_page(
            &page,
            &n,
            StatusCode::FORBIDDEN,
            &next,
            None,
            Some(page.t("errors.csrf")),
        );
    }
    let limited = crate::web::staff::limit_sign_in(&req, &s, &limits).await;
    let typed = posted.one("code").unwrap_or_default().to_owned();
    let (services, p2) = (s.clone(), pending.clone());
    let result = match limited {
        Err(e) => Err(e),
        Ok(()) => {
            blocking(move || staff::console_second_factor(&services, &p2, &typed, now())).await
        }
    };
    match result {
        Ok(user) => {
            let mut res = finish(page.redirect(&next), &user);
            let _ = res.add_cookie(&pending_cookie("", 0));
            res
        }
        Err(e) if e.code() == "unauthorized" => again(),
        Err(e) => {
            // Show the enrolment again when the account is still setting up.
            let services = s.clone();
            let enrolment = blocking(move || second_factor::for_pending(&services, &pending))
                .await
                .ok()
                .flatten();
            let mut res = code_page(
                &page,
                &n,
                e.status(),
                &next,
                enrolment.as_ref(),
                Some(e.message(page.locale).to_owned()),
            );
            e.set_retry_after(&mut res);
            res
        }
    }
}

async fn render_account(
    req: &HttpRequest,
    s: &web::Data<Services>,
    n: &Tpl,
    user: &staff::ConsoleUser,
    status: StatusCode,
    enrolment: Option<Enrolment>,
    message: Option<(bool, String)>,
) -> HttpResponse {
    let page = page_for(req, user).showing_times();
    let (services, id) = (s.clone(), user.staff.id.clone());
    let loaded = blocking(move || {
        let mut conn = services.db().conn()?;
        let me =
            crate::storage::staff::find_by_id(&mut conn, &id)?.ok_or(ServiceError::NotFound)?;
        let sign_ins = crate::storage::staff::sign_ins(&mut conn, Some(&id), 10)?;
        Ok((me, sign_ins))
    })
    .await;
    let (me, sign_ins) = match loaded {
        Ok(v) => v,
        Err(e) => return super::error_page(&page, n, user, &e),
    };
    let sign_ins: Vec<Value> = sign_ins
        .into_iter()
        .map(|(_, outcome, at)| {
            json!({
                "at": page.time(from_db_time(at)),
                "outcome": page.t(&format!("account.outcomes.{outcome}")),
                "ok": outcome == "ok",
            })
        })
        .collect();
    let title = page.t("account.title");
    let ctx = json!({
        "enabled_at": me.totp_enabled_at.map(|t| page.time(from_db_time(t))),
        "required": me.totp_required,
        "enrol": enrolment.map(|e| enrolment_view(&page, &e)),
        "sign_ins": sign_ins,
        "error": message.as_ref().filter(|m| !m.0).map(|m| &m.1),
        "done": message.as_ref().filter(|m| m.0).map(|m| &m.1),
    });
    finish(page.render(n, status, "account", &title, ctx), user)
}

/// The staff member's own account: the second factor and the latest sign-ins.
pub async fn account(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let page = Page::console(&req);
    let done = crate::web::portal::page::web_query(&req, "done")
        .filter(|d| matches!(d.as_str(), "enabled" | "off"))
        .map(|d| (true, page.t(&format!("account.done_{d}"))));
    render_account(&req, &s, &n, &user, StatusCode::OK, None, done).await
}

/// `action=begin` (a new secret to scan), `confirm` (its first code), `off` (with a code).
pub async fn account_totp(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    limits: web::Data<Limits>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (user, page, posted) = match form(&req, &s, &n, body).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let action = posted.one("action").unwrap_or_default().to_owned();
    let typed = posted.one("code").unwrap_or_default().to_owned();
    if action != "begin" {
        // Typing codes is guessing codes: the sign-in limit applies.
        if let Err(e) = crate::web::staff::limit_sign_in(&req, &s, &limits).await {
            return super::error_page(&page, &n, &user, &e);
        }
    }
    let (services, id) = (s.clone(), user.staff.id.clone());
    let done = blocking(move || match action.as_str() {
        "begin" => second_factor::begin(&services, &id).map(Some),
        "confirm" => second_factor::confirm(&services, &id, &typed, now()).map(|()| None),
        "off" => second_factor::turn_off(&services, &id, &typed, now()).map(|()| None),
        _ => Err(ServiceError::NotFound),
    })
    .await;
    let action = posted.one("action").unwrap_or_default();
    match done {
        Ok(Some(enrolment)) => {
            render_account(&req, &s, &n, &user, StatusCode::OK, Some(enrolment), None).await
        }
        Ok(None) => {
            let done = if action == "off" { "off" } else { "enabled" };
            finish(
                page.redirect(&format!("/console/account?done={done}")),
                &user,
            )
        }
        Err(api) => {
            if api.code() != "invalid_totp" {
                return super::error_page(&page, &n, &user, &api);
            }
            let (services, id) = (s.clone(), user.staff.id.clone());
            let enrolment = if action == "confirm" {
                blocking(move || second_factor::pending(&services, &id))
                    .await
                    .ok()
                    .flatten()
            } else {
                None
            };
            let message = (false, api.message(page.locale).to_owned());
            render_account(&req, &s, &n, &user, api.status(), enrolment, Some(message)).await
        }
    }
}

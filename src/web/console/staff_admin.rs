//! Staff accounts (admins): add, change the role of, disable and re-enable staff, require a
//! second factor or reset a lost one. A disabled account's sessions end at once.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::session::{finish, form, page_for, signed_in};
use super::Tpl;
use crate::domain::{EmailAddress, Locale, Role};
use crate::service::second_factor;
use crate::service::staff::{self, ConsoleUser};
use crate::service::{now, ServiceError, Services};
use crate::storage::from_db_time;
use crate::web::error::{blocking, ApiError};

async fn render(
    req: &HttpRequest,
    s: &web::Data<Services>,
    n: &Tpl,
    user: &ConsoleUser,
    status: StatusCode,
    error: Option<String>,
    added: Option<(String, String)>,
) -> HttpResponse {
    let page = page_for(req, user);
    let (services, actor, p) = (s.clone(), user.actor.clone(), page.clone());
    let loaded = blocking(move || {
        let rows = staff::accounts(&services, &actor)?;
        Ok(rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "email": r.email,
                    "role": r.role,
                    "role_label": p.t(&format!("roles.{}", r.role)),
                    "active": r.active,
                    "totp": r.totp().is_some(),
                    "totp_required": r.totp_required,
                    "last_login": r.last_login_at.map(|t| p.time(from_db_time(t))),
                })
            })
            .collect::<Vec<Value>>())
    })
    .await;
    let rows = match loaded {
        Ok(rows) => rows,
        Err(e) => return super::error_page(&page, n, user, &e),
    };
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| json!({ "value": r.as_str(), "label": page.t(&format!("roles.{}", r.as_str())) }))
        .collect();
    let title = page.t("staff.title");
    let ctx = json!({
        "rows": rows,
        "roles": roles,
        "me": user.staff.id,
        "error": error,
        "added": added.map(|(email, password)| json!({ "email": email, "password": password })),
    });
    finish(page.render(n, status, "staff", &title, ctx), user)
}

pub async fn list(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    render(&req, &s, &n, &user, StatusCode::OK, None, None).await
}

/// Adds an account with a generated password, shown once to the admin who made it.
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
    let email = EmailAddress::parse(posted.one("email").unwrap_or_default());
    let role = posted.one("role").unwrap_or_default().parse::<Role>();
    let locale = posted
        .one("locale")
        .and_then(Locale::parse_loose)
        .unwrap_or_default();
    let (Ok(email), Ok(role)) = (email, role) else {
        return render(
            &req,
            &s,
            &n,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(page.t("staff.bad_input")),
            None,
        )
        .await;
    };
    if !user.actor.administers() {
        return super::error_page(
            &page,
            &n,
            &user,
            &ApiError::from(ServiceError::NotPermitted),
        );
    }
    let require_totp = posted.one("totp_required") == Some("1");
    let password = crate::auth::password::generate();
    let (services, shown, e2) = (s.clone(), password.clone(), email.clone());
    let actor = user.actor.clone();
    let added = blocking(move || {
        let row = staff::add(services.db(), &actor, &e2, role, locale, &shown, now())?;
        if require_totp {
            second_factor::set_required(&services, &actor, &row.id, true, now())?;
        }
        Ok(row)
    });
    match added.await {
        Ok(_) => {
            render(
                &req,
                &s,
                &n,
                &user,
                StatusCode::OK,
                None,
                Some((email.as_str().to_owned(), password)),
            )
            .await
        }
        Err(e) => {
            let msg = e.message(page.locale).to_owned();
            render(&req, &s, &n, &user, e.status(), Some(msg), None).await
        }
    }
}

/// Changes a role, or disables / re-enables an account.
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
    let id = path.into_inner();
    let role = posted.one("role").map(|r| r.parse::<Role>());
    let active = posted.one("active").map(|a| a == "1");
    let totp_required = posted.one("totp_required").map(|a| a == "1");
    let totp_reset = posted.one("totp_reset") == Some("1");
    let (services, actor) = (s.clone(), user.actor.clone());
    let done = blocking(move || match (role, active, totp_required) {
        (Some(Ok(role)), _, _) => staff::change_role(&services, &actor, &id, role),
        (_, Some(active), _) => staff::set_active(&services, &actor, &id, active, now()),
        (_, _, Some(required)) => {
            second_factor::set_required(&services, &actor, &id, required, now())
        }
        _ if totp_reset => second_factor::reset(&services, &actor, &id, now()),
        _ => Err(ServiceError::NotFound),
    })
    .await;
    match done {
        Ok(()) => finish(page.redirect("/console/staff?done=1"), &user),
        Err(e) => {
            let msg = e.message(page.locale).to_owned();
            render(&req, &s, &n, &user, e.status(), Some(msg), None).await
        }
    }
}

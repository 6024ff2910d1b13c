//! `/verify`: where the magic link in the code email lands. The GET shows a button and changes
//! nothing (mail scanners open links to check them, which must not use up the single-use link);
//! the POST verifies, opens the session (cookie) and says so, in Chinese or English.

use std::collections::HashMap;

use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{blocking, ApiError};
use super::extract::page_locale;
use crate::domain::Locale;
use crate::notifications::Notifier;
use crate::service::{now, verification, Services};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/verify", web::get().to(show))
        .route("/verify", web::post().to(confirm));
}

fn words(locale: Locale) -> Value {
    match locale {
        Locale::ZhCn => json!({
            "lang": "zh-CN", "reference_label": "请求编号", "status_label": "状态", "button": "确认验证我的身份",
            "confirm_title": "验证您的身份", "confirm": "请点击下方按钮，完成您的个人信息权利请求的身份验证。",
            "ok_title": "身份已验证", "ok": "感谢您！您的身份已验证，我们会按时处理您的请求，并通过邮件告知进展。",
            "bad_title": "链接无法使用", "bad": "该链接无效、已过期或已被使用。请在请求页面重新获取验证码。",
        }),
        Locale::En => json!({
            "lang": "en", "reference_label": "Reference", "status_label": "Status", "button": "Confirm my identity",
            "confirm_title": "Verify your identity", "confirm": "Press the button below to verify your identity for your personal information request.",
            "ok_title": "Identity verified", "ok": "Thank you. Your identity is verified; we will handle your request on time and tell you by email how it goes.",
            "bad_title": "This link cannot be used", "bad": "The link is invalid, expired or already used. Ask for a new code on your request page.",
        }),
    }
}

fn page(notifier: &Notifier, status: StatusCode, ctx: &Value) -> Result<HttpResponse, ApiError> {
    let html = notifier
        .templates
        .render_page("pages/verify.html", ctx)
        .map_err(|e| {
            tracing::error!(error = %e, "verify page");
            ApiError::internal()
        })?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ))
        .body(html))
}

fn context(w: &Value, state: &str, title: &str, message: &str, extra: Value) -> Value {
    let mut ctx = json!({
        "lang": w["lang"], "reference_label": w["reference_label"], "status_label": w["status_label"], "button": w["button"],
        "state": state, "title": w[title], "message": w[message],
        "token": null, "reference": null, "status": null,
    });
    if let (Some(map), Value::Object(more)) = (ctx.as_object_mut(), extra) {
        map.extend(more);
    }
    ctx
}

async fn show(
    req: HttpRequest,
    notifier: web::Data<std::sync::Arc<Notifier>>,
) -> Result<HttpResponse, ApiError> {
    let w = words(page_locale(&req));
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let ctx = match query
        .get("token")
        .filter(|t| !t.is_empty() && t.len() < 4096)
    {
        Some(token) => context(
            &w,
            "",
            "confirm_title",
            "confirm",
            json!({ "token": token }),
        ),
        None => context(&w, "bad", "bad_title", "bad", json!({})),
    };
    page(&notifier, StatusCode::OK, &ctx)
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

async fn confirm(
    req: HttpRequest,
    s: web::Data<Services>,
    notifier: web::Data<std::sync::Arc<Notifier>>,
    limits: web::Data<super::limits::Limits>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    super::limits::check(&limits.code_checks_ip, &super::limits::client(&req))?;
    let loc = page_locale(&req);
    let w = words(loc);
    let token = form.into_inner().token;
    let services = s.clone();
    match blocking(move || verification::verify_magic_link(&services, &token, now())).await {
        Ok(session) => {
            let status = match loc {
                Locale::ZhCn => session.request.state.status.label_zh(),
                Locale::En => session.request.state.status.label_en(),
            };
            let ctx = context(
                &w,
                "ok",
                "ok_title",
                "ok",
                json!({ "reference": session.request.reference.as_str(), "status": status }),
            );
            let mut res = page(&notifier, StatusCode::OK, &ctx)?;
            res.add_cookie(&super::subject::session_cookie(&session))
                .map_err(|_| ApiError::internal())?;
            Ok(res)
        }
        Err(_) => page(
            &notifier,
            StatusCode::UNAUTHORIZED,
            &context(&w, "bad", "bad_title", "bad", json!({})),
        ),
    }
}

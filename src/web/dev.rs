//! `/dev/mail`: the messages the file mail transport wrote, so someone trying Rightsflow without
//! a mail server can read them (a verification code, say). The routes exist only while the file
//! transport is in use; with SMTP configured they are not registered at all.

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use crate::domain::Locale;
use crate::notifications::mail::DevMail;
use crate::notifications::Notifier;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dev/mail", web::get().to(list))
        .route("/dev/mail/{file}", web::get().to(html));
}

/// The folder the file transport writes to; the pages exist only while it is in use.
fn mailbox(notifier: &Notifier) -> Result<std::path::PathBuf, ApiError> {
    Ok(notifier
        .mailer
        .dev_mailbox()
        .ok_or_else(ApiError::not_found)?
        .to_path_buf())
}

async fn list(
    req: HttpRequest,
    notifier: web::Data<Arc<Notifier>>,
) -> Result<HttpResponse, ApiError> {
    let dir = mailbox(&notifier)?;
    let mails = web::block(move || DevMail::read_all(&dir)).await?;
    let ctx = match super::extract::page_locale(&req) {
        Locale::ZhCn => json!({
            "lang": "zh-CN", "title": "开发邮箱", "to_label": "收件人", "html_label": "查看 HTML 版本",
            "note": "未配置 SMTP 服务器，系统发出的邮件保存在数据目录中并显示在此处。配置 RIGHTSFLOW_SMTP_URL 后此页面不再存在。",
            "empty": "还没有邮件。", "mails": mails,
        }),
        Locale::En => json!({
            "lang": "en", "title": "Development mailbox", "to_label": "To", "html_label": "view the HTML part",
            "note": "No SMTP server is configured, so email is written to the data folder and shown here. This page disappears once RIGHTSFLOW_SMTP_URL is set.",
            "empty": "No messages yet.", "mails": mails,
        }),
    };
    let page = notifier
        .templates
        .render_page("dev/mail.html", &ctx)
        .map_err(|e| {
            tracing::error!(error = %e, "dev mail page");
            ApiError::internal()
        })?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(page))
}

/// The HTML part of one message, as the recipient's mail program would show it.
async fn html(
    path: web::Path<String>,
    notifier: web::Data<Arc<Notifier>>,
) -> Result<HttpResponse, ApiError> {
    let dir = mailbox(&notifier)?;
    let id = path.into_inner().trim_end_matches(".html").to_owned();
    // Ids are ours (uuid and dots); anything else could walk out of the folder.
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        || id.contains("..")
    {
        return Err(ApiError::not_found());
    }
    let mail = web::block(move || DevMail::read_all(&dir).into_iter().find(|m| m.id == id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        // The message's own HTML, shown as is: forbid scripts and remote loads.
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(mail.html))
}

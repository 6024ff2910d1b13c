//! The portal's pages: home, a form per right, the code page, the confirmation, "find my
//! request", and the request page with its reply and withdraw forms.

use std::sync::Arc;

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::csrf;
use super::forms::{self, FieldErrors, Posted};
use super::page::{web_query, Page};
use crate::domain::{
    allowed_commands, Actor, Channel, Command, FreeText, Reference, Relationship, RequestKind,
    Status,
};
use crate::notifications::Notifier;
use crate::service::{now, requests, verification, ServiceError, Services};
use crate::storage::rows::StoredRequest;
use crate::web::error::{blocking, ApiError};
use crate::web::limits::{self, Limits};
use crate::web::subject::{session_cookie, SESSION_COOKIE};
use crate::web::views::{status_class, subject_view};

type Tpl = web::Data<Arc<Notifier>>;
type Form = web::Form<Vec<(String, String)>>;

pub const KINDS: [RequestKind; 7] = [
    RequestKind::Access,
    RequestKind::Correction,
    RequestKind::Deletion,
    RequestKind::Restriction,
    RequestKind::Portability,
    RequestKind::ConsentWithdrawal,
    RequestKind::Complaint,
];

/// A page for an error that ends the visit's step (rate limit, bad form token, server fault).
fn error_page(page: &Page, n: &Notifier, e: &ApiError) -> HttpResponse {
    let title = page.t("error.title");
    let mut res = page.render(
        n,
        e.status(),
        "error",
        &title,
        json!({ "message": e.message(page.locale), "code": e.code() }),
    );
    // The limiter's own count of seconds, as the API's answer carries it.
    e.set_retry_after(&mut res);
    res
}

/// The error page for a visitor over the broad rate limit (from the middleware, before any
/// handler ran).
pub fn rate_limited_page(req: &HttpRequest, e: &ApiError) -> HttpResponse {
    let page = Page::new(req);
    match req.app_data::<web::Data<Arc<Notifier>>>() {
        Some(n) => error_page(&page, n, e),
        None => HttpResponse::build(e.status()).finish(),
    }
}

fn checked(req: &HttpRequest, posted: &Posted) -> Result<(), ApiError> {
    if csrf::check(req, posted.one(csrf::FIELD)) {
        Ok(())
    } else {
        Err(csrf::error())
    }
}

fn reference_or_404(raw: &str) -> Result<Reference, ApiError> {
    Reference::parse(raw).map_err(|_| ApiError::not_found())
}

pub async fn home(req: HttpRequest, n: Tpl) -> HttpResponse {
    let page = Page::new(&req);
    let rights: Vec<Value> = KINDS
        .iter()
        .map(|k| {
            json!({
                "kind": k.as_str(),
                "title": page.t(&format!("kinds.{}.title", k.as_str())),
                "summary": page.t(&format!("kinds.{}.summary", k.as_str())),
                "href": format!("/rights/{}", k.as_str()),
            })
        })
        .collect();
    let representatives: Vec<Value> = ["guardian", "relative", "agent"]
        .iter()
        .map(|r| {
            json!({
                "code": r,
                "title": page.t(&format!("representatives.{r}.title")),
                "text": page.t(&format!("representatives.{r}.text")),
            })
        })
        .collect();
    let kinds: Vec<Value> = KINDS
        .iter()
        .map(|k| json!({ "value": k.as_str(), "label": page.t(&format!("kinds.{}.title", k.as_str())) }))
        .collect();
    let notice = web_query(&req, "done")
        .filter(|d| d == "signed_out")
        .map(|_| page.t("home.signed_out"));
    let title = page.t("home.title");
    page.render(
        &n,
        StatusCode::OK,
        "home",
        &title,
        json!({ "rights": rights, "representatives": representatives, "kinds": kinds, "notice": notice }),
    )
}

/// The representatives' chooser on the home page is a GET form (no script): it lands here
/// and goes on to the right form.
pub async fn start(req: HttpRequest, n: Tpl) -> HttpResponse {
    let page = Page::new(&req);
    let chosen = kind_of(&web_query(&req, "kind").unwrap_or_default())
        .and_then(|k| Ok((k, representative(web_query(&req, "for").as_deref())?)));
    match chosen {
        Ok((kind, Some(rep))) => {
            page.redirect(&format!("/rights/{}?for={}", kind.as_str(), rep.as_str()))
        }
        Ok((kind, None)) => page.redirect(&format!("/rights/{}", kind.as_str())),
        Err(e) => error_page(&page, &n, &e),
    }
}

fn kind_of(raw: &str) -> Result<RequestKind, ApiError> {
    raw.parse::<RequestKind>()
        .map_err(|_| ApiError::not_found())
}

fn representative(raw: Option<&str>) -> Result<Option<Relationship>, ApiError> {
    raw.filter(|r| !r.is_empty())
        .map(|r| r.parse::<Relationship>().map_err(|_| ApiError::not_found()))
        .transpose()
}

fn form_page(
    page: &Page,
    n: &Notifier,
    status: StatusCode,
    kind: RequestKind,
    rep: Option<Relationship>,
    posted: Option<&Posted>,
    errors: &FieldErrors,
) -> HttpResponse {
    let k = kind.as_str();
    let title = page.t(&format!("kinds.{k}.title"));
    let form = forms::view(kind, rep, page.locale, posted, errors);
    page.render(
        n,
        status,
        "form",
        &title,
        json!({
            "kind": k,
            "intro": page.t(&format!("kinds.{k}.intro")),
            "action": format!("/rights/{k}"),
            "representative": rep.map(|r| r.as_str()),
            "representative_note": rep.map(|r| page.t(&format!("representatives.{}.note", r.as_str()))),
            "form": form,
        }),
    )
}

pub async fn form(req: HttpRequest, n: Tpl, path: web::Path<String>) -> HttpResponse {
    let page = Page::new(&req);
    let parsed =
        kind_of(&path).and_then(|k| Ok((k, representative(web_query(&req, "for").as_deref())?)));
    match parsed {
        Ok((kind, rep)) => form_page(
            &page,
            &n,
            StatusCode::OK,
            kind,
            rep,
            None,
            &FieldErrors::new(),
        ),
        Err(e) => error_page(&page, &n, &e),
    }
}

pub async fn submit(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    limits: web::Data<Limits>,
    path: web::Path<String>,
    body: Form,
) -> HttpResponse {
    let page = Page::new(&req);
    let posted = Posted(body.into_inner());
    let prepared = (|| {
        checked(&req, &posted)?;
        let kind = kind_of(&path)?;
        let rep = representative(posted.one("representative"))?;
        Ok::<_, ApiError>((kind, rep))
    })();
    let (kind, rep) = match prepared {
        Ok(v) => v,
        Err(e) => return error_page(&page, &n, &e),
    };
    let body = match forms::parse(kind, rep, page.locale, &posted) {
        Ok(b) => b,
        Err(errors) => {
            return form_page(
                &page,
                &n,
                StatusCode::UNPROCESSABLE_ENTITY,
                kind,
                rep,
                Some(&posted),
                &errors,
            )
        }
    };
    let new = match body.parse(page.locale, Channel::Online) {
        Ok(new) => new,
        Err(e) => {
            let errors = FieldErrors::from([(
                forms::field_of(e.code()).to_owned(),
                e.message(page.locale).to_owned(),
            )]);
            return form_page(
                &page,
                &n,
                StatusCode::UNPROCESSABLE_ENTITY,
                kind,
                rep,
                Some(&posted),
                &errors,
            );
        }
    };
    if let Err(e) = limits::check(&limits.submissions, &limits::client(&req)).await {
        return error_page(&page, &n, &e);
    }
    let services = s.clone();
    let submitted = blocking(move || {
        let at = now();
        let (submitted, _) =
            verification::submit_with_first_code(&services, new, &Actor::Subject, at)?;
        Ok(submitted.request.reference)
    })
    .await;
    match submitted {
        Ok(reference) => page.redirect(&format!("/requests/{reference}/verify?sent=1")),
        Err(e) => error_page(&page, &n, &e),
    }
}

/// How the visitor reached the code page: just sent a code, or asked through "find my
/// request" (where we do not say whether the reference and contact matched).
#[derive(Clone, Copy, PartialEq)]
enum Sent {
    No,
    Yes,
    IfKnown,
}

fn verify_page(
    page: &Page,
    n: &Notifier,
    s: &Services,
    status: StatusCode,
    reference: &Reference,
    sent: Sent,
    error: Option<String>,
) -> HttpResponse {
    let wait = if sent == Sent::No {
        0
    } else {
        s.verification().resend_seconds
    };
    let notice = match sent {
        Sent::No => None,
        Sent::Yes => Some(page.t("verify.sent")),
        Sent::IfKnown => Some(page.t("verify.sent_if_known")),
    };
    let title = page.t("verify.title");
    page.render(
        n,
        status,
        "verify",
        &title,
        json!({
            "reference": reference.as_str(),
            "sent": notice,
            "resend_after": wait,
            "code_hint": page.count("verify.code_hint", s.verification().code_minutes),
            "error": error,
        }),
    )
}

pub async fn verify_form(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
) -> HttpResponse {
    let page = Page::new(&req);
    match reference_or_404(&path) {
        Ok(r) => {
            let sent = match web_query(&req, "sent").as_deref() {
                Some("1") => Sent::Yes,
                Some(_) => Sent::IfKnown,
                None => Sent::No,
            };
            verify_page(&page, &n, &s, StatusCode::OK, &r, sent, None)
        }
        Err(e) => error_page(&page, &n, &e),
    }
}

pub async fn verify(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    limits: web::Data<Limits>,
    path: web::Path<String>,
    body: Form,
) -> HttpResponse {
    let page = Page::new(&req);
    let posted = Posted(body.into_inner());
    let checks = form_reference(
        &req,
        &posted,
        &path,
        &limits.code_checks_ip,
        Some(&limits.code_checks_reference),
    )
    .await;
    let reference = match checks {
        Ok(r) => r,
        Err(e) => return error_page(&page, &n, &e),
    };
    let code = posted.one("code").unwrap_or_default().to_owned();
    let (services, r) = (s.clone(), reference.clone());
    match blocking(move || verification::verify_code(&services, &r, &code, now())).await {
        Ok(session) => {
            let mut res = page.redirect(&format!("/requests/{reference}/confirmed"));
            let _ = res.add_cookie(&session_cookie(&session));
            res
        }
        Err(e) if e.status() == StatusCode::UNAUTHORIZED || e.status() == StatusCode::LOCKED => {
            verify_page(
                &page,
                &n,
                &s,
                e.status(),
                &reference,
                Sent::No,
                Some(e.message(page.locale).to_owned()),
            )
        }
        Err(e) => error_page(&page, &n, &e),
    }
}

/// A posted form about one request: its token checked, its reference read, the rate limits
/// (per address, and per reference where given) applied.
async fn form_reference(
    req: &HttpRequest,
    posted: &Posted,
    raw: &str,
    per_address: &limits::Limiter,
    per_reference: Option<&limits::Limiter>,
) -> Result<Reference, ApiError> {
    checked(req, posted)?;
    let reference = reference_or_404(raw)?;
    limits::check(per_address, &limits::client(req)).await?;
    if let Some(limiter) = per_reference {
        limits::check(limiter, reference.as_str()).await?;
    }
    Ok(reference)
}

pub async fn resend(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    limits: web::Data<Limits>,
    path: web::Path<String>,
    body: Form,
) -> HttpResponse {
    let page = Page::new(&req);
    let posted = Posted(body.into_inner());
    let checks = form_reference(&req, &posted, &path, &limits.resends, None).await;
    let reference = match checks {
        Ok(r) => r,
        Err(e) => return error_page(&page, &n, &e),
    };
    let (services, r) = (s.clone(), reference.clone());
    let sent = blocking(
        move || match verification::resend_code(&services, &r, now()) {
            Err(ServiceError::TooSoon { .. }) => Ok(()),
            other => other,
        },
    )
    .await;
    match sent {
        Ok(()) => page.redirect(&format!("/requests/{reference}/verify?sent=if_known")),
        Err(e) => error_page(&page, &n, &e),
    }
}

/// The request a session cookie opens, or where to send the visitor instead.
async fn opened(
    req: &HttpRequest,
    s: &web::Data<Services>,
    raw: &str,
) -> Result<StoredRequest, HttpResponse> {
    let to_find = |raw: &str| {
        HttpResponse::SeeOther()
            .insert_header(("Location", format!("/find?reference={}", encode(raw))))
            .finish()
    };
    let Ok(reference) = Reference::parse(raw) else {
        return Err(to_find(""));
    };
    let Some(token) = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Err(to_find(reference.as_str()));
    };
    let services = s.clone();
    let r = reference.clone();
    blocking(move || requests::get_for_subject(&services, &r, &token))
        .await
        .map_err(|_| to_find(reference.as_str()))
}

fn encode(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

fn due_view(page: &Page, r: &StoredRequest) -> Value {
    json!({
        "due": r.state.due.as_ref().map(|d| page.deadline(d.ends_at)),
        "acknowledge_by": r.state.acknowledge_by.as_ref().map(|d| page.deadline(d.ends_at)),
        "tz": page.tz.name(),
    })
}

pub async fn confirmed(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
) -> HttpResponse {
    let page = Page::new(&req).showing_times();
    let r = match opened(&req, &s, &path).await {
        Ok(r) => r,
        Err(redirect) => return redirect,
    };
    let k = r.state.kind.as_str();
    let title = page.t("confirmed.title");
    page.render(
        &n,
        StatusCode::OK,
        "confirmed",
        &title,
        json!({
            "reference": r.reference.as_str(),
            "kind": page.t(&format!("kinds.{k}.title")),
            "status": status_label(&page, r.state.status),
            "status_class": status_class(r.state.status),
            "verified": r.state.verified_at.is_some(),
            "representative": r.state.representative.is_some(),
            "clock": due_view(&page, &r),
        }),
    )
}

fn status_label(page: &Page, status: Status) -> &'static str {
    match page.locale {
        crate::domain::Locale::ZhCn => status.label_zh(),
        crate::domain::Locale::En => status.label_en(),
    }
}

/// The request page: status, deadline, timeline, questions and reply, messages, actions.
async fn request_page(
    page: Page,
    n: &Notifier,
    s: &web::Data<Services>,
    r: StoredRequest,
    status: StatusCode,
    notice: Option<String>,
    reply_error: Option<String>,
) -> HttpResponse {
    let title = format!("{} · {}", page.t("request.title"), r.reference);
    let (services, p) = (s.clone(), page.clone());
    match blocking(move || request_context(&p, &services, &r, notice, reply_error)).await {
        Ok(ctx) => page.render(n, status, "request", &title, ctx),
        Err(e) => error_page(&page, n, &e),
    }
}

fn request_context(
    page: &Page,
    s: &Services,
    r: &StoredRequest,
    notice: Option<String>,
    reply_error: Option<String>,
) -> Result<Value, ServiceError> {
    let events = requests::events(s, &r.id)?;
    let allowed = allowed_commands(&r.state, &Actor::Subject, &s.context(now()));
    let view = subject_view(r, &events, allowed.clone(), page.locale);
    let timeline: Vec<Value> = view
        .timeline
        .iter()
        .rev()
        .map(|e| {
            json!({
                "at": page.time(e.at),
                "iso": e.at.to_rfc3339(),
                "what": page.t(&format!("events.{}", e.event)),
                "status": e.status.label,
                "message": e.message,
                "question": e.event == "request_info",
                "reply": e.event == "subject_reply",
            })
        })
        .collect();
    let question = view
        .timeline
        .iter()
        .rev()
        .find(|e| e.event == "request_info")
        .and_then(|e| e.message.clone())
        .filter(|_| allowed.contains(&"subject_reply"));
    let messages: Vec<Value> = crate::storage::inbox::for_request(&mut *s.db().conn()?, &r.id)?
        .iter()
        .rev()
        .map(|m| json!({ "subject": m.subject, "body": m.body, "at": page.time(crate::storage::from_db_time(m.created_at)) }))
        .collect();
    let results: Vec<Value> = crate::service::results::live(s, r, now())?
        .iter()
        .map(|m| {
            json!({
                "href": format!("/requests/{}/results/{}", r.reference, m.id),
                "file_name": m.file_name,
                "viewable": m.content_type.starts_with("text/html"),
                "size": human_size(m.size),
                "expires": page.time(crate::storage::from_db_time(m.expires_at)),
            })
        })
        .collect();
    let recipients: Vec<Value> = crate::fulfilment::run::recipients_told(s, &r.id)?
        .iter()
        .map(|x| {
            let categories: Vec<String> = x
                .categories
                .iter()
                .map(|c| page.t(&format!("options.categories.{}", c.as_str())))
                .collect();
            json!({
                "label": x.label,
                "purpose": x.purpose,
                "categories": categories.join("、"),
                "state": if x.told { page.t("request.recipient_told") } else if x.not_told.is_some() { page.t("request.recipient_not_told") } else { page.t("request.recipient_pending") },
                "reason": x.not_told,
            })
        })
        .collect();
    let k = r.state.kind.as_str();
    Ok(json!({
        "results": results,
        "recipients": recipients,
        "reference": r.reference.as_str(),
        "kind": page.t(&format!("kinds.{k}.title")),
        "status": view.status.label,
        "status_code": view.status.code,
        "status_class": status_class(r.state.status),
        "received": page.time(r.state.received_at),
        "clock": due_view(page, r),
        "rejection": view.rejection_reason.as_ref().map(|x| x.label),
        "timeline": timeline,
        "question": question,
        "can_reply": allowed.contains(&"subject_reply"),
        "can_withdraw": allowed.contains(&"withdraw"),
        "reply_error": reply_error,
        "messages": messages,
        "notice": notice,
    }))
}

fn human_size(bytes: i64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// A result download from the request page (the session cookie opens it).
pub async fn result(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let page = Page::new(&req);
    let (raw, id) = path.into_inner();
    let r = match opened(&req, &s, &raw).await {
        Ok(r) => r,
        Err(redirect) => return redirect,
    };
    // `?view=1` shows an HTML report in the browser (still sandboxed) instead of saving it.
    let view = web_query(&req, "view").as_deref() == Some("1");
    let services = s.clone();
    match blocking(move || crate::service::results::download(&services, &r, &id, now())).await {
        Ok(file) if view && file.content_type.starts_with("text/html") => {
            crate::web::results::inline_response(&s, file)
        }
        Ok(file) => crate::web::results::file_response(&s, file),
        Err(e) => error_page(&page, &n, &e),
    }
}

pub async fn show(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
) -> HttpResponse {
    let page = Page::new(&req).showing_times();
    let r = match opened(&req, &s, &path).await {
        Ok(r) => r,
        Err(redirect) => return redirect,
    };
    let notice = web_query(&req, "done")
        .filter(|d| ["reply", "withdrawn"].contains(&d.as_str()))
        .map(|d| page.t(&format!("request.done_{d}")));
    request_page(page, &n, &s, r, StatusCode::OK, notice, None).await
}

/// Reply and withdraw: a subject command from a form, then back to the request page.
pub async fn reply(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
    body: Form,
) -> HttpResponse {
    subject_form(req, s, n, path, body, "reply").await
}

pub async fn withdraw(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
    body: Form,
) -> HttpResponse {
    subject_form(req, s, n, path, body, "withdrawn").await
}

async fn subject_form(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
    body: Form,
    what: &'static str,
) -> HttpResponse {
    let page = Page::new(&req);
    let posted = Posted(body.into_inner());
    if let Err(e) = checked(&req, &posted) {
        return error_page(&page, &n, &e);
    }
    let r = match opened(&req, &s, &path).await {
        Ok(r) => r,
        Err(redirect) => return redirect,
    };
    let command = if what == "reply" {
        match posted.one("message").map(FreeText::parse) {
            Some(Ok(message)) => Command::SubjectReply { message },
            Some(Err(_)) | None => {
                let error = page.t(if posted.one("message").is_some() {
                    "errors.too_long"
                } else {
                    "errors.required"
                });
                return request_page(
                    page,
                    &n,
                    &s,
                    r,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(error),
                )
                .await;
            }
        }
    } else {
        Command::Withdraw {
            reason: posted.one("reason").and_then(|t| FreeText::parse(t).ok()),
        }
    };
    let token = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let services = s.clone();
    let reference = r.reference.clone();
    match blocking(move || requests::subject_act(&services, &reference, &token, &command, now()))
        .await
    {
        Ok(_) => page.redirect(&format!("/requests/{}?done={what}", r.reference)),
        Err(e) => error_page(&page, &n, &e),
    }
}

pub async fn sign_out(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    body: Form,
) -> HttpResponse {
    let page = Page::new(&req);
    let posted = Posted(body.into_inner());
    if let Err(e) = checked(&req, &posted) {
        return error_page(&page, &n, &e);
    }
    if let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) {
        let services = s.clone();
        if let Err(e) =
            blocking(move || verification::close_session(&services, &token, now())).await
        {
            return error_page(&page, &n, &e);
        }
    }
    let mut res = page.redirect("/?done=signed_out");
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    let _ = res.add_cookie(&gone);
    res
}

fn find_page(
    page: &Page,
    n: &Notifier,
    status: StatusCode,
    reference: &str,
    errors: &FieldErrors,
) -> HttpResponse {
    let title = page.t("find.title");
    page.render(
        n,
        status,
        "find",
        &title,
        json!({ "reference": reference, "reference_error": errors.get("reference"), "contact_error": errors.get("contact"), "contact": "" }),
    )
}

pub async fn find_form(req: HttpRequest, n: Tpl) -> HttpResponse {
    let page = Page::new(&req);
    let reference = web_query(&req, "reference")
        .map(|r| encode(&r))
        .unwrap_or_default();
    find_page(&page, &n, StatusCode::OK, &reference, &FieldErrors::new())
}

pub async fn find(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    limits: web::Data<Limits>,
    body: Form,
) -> HttpResponse {
    let page = Page::new(&req);
    let posted = Posted(body.into_inner());
    let allowed = match checked(&req, &posted) {
        Ok(()) => limits::check(&limits.resends, &limits::client(&req)).await,
        Err(e) => Err(e),
    };
    if let Err(e) = allowed {
        return error_page(&page, &n, &e);
    }
    let raw = posted.one("reference").unwrap_or_default().to_owned();
    let contact = posted.one("contact").unwrap_or_default().to_owned();
    let mut errors = FieldErrors::new();
    let reference = Reference::parse(&raw);
    if reference.is_err() {
        errors.insert("reference".into(), page.t("errors.bad_reference"));
    }
    if contact.is_empty() {
        errors.insert("contact".into(), page.t("errors.required"));
    }
    let Ok(reference) =
        reference
            .map_err(|_| ())
            .and_then(|r| if errors.is_empty() { Ok(r) } else { Err(()) })
    else {
        return find_page(
            &page,
            &n,
            StatusCode::UNPROCESSABLE_ENTITY,
            &encode(&raw),
            &errors,
        );
    };
    let (services, r) = (s.clone(), reference.clone());
    match blocking(move || verification::resend_code_to(&services, &r, &contact, now())).await {
        Ok(()) => page.redirect(&format!("/requests/{reference}/verify?sent=if_known")),
        Err(e) => error_page(&page, &n, &e),
    }
}

//! The subject's side of the API: submit a request, follow it, reply, withdraw.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::{blocking, ApiError};
use super::extract::{RequestLocale, SubjectToken};
use super::limits::{self, Limits};
use super::submission::SubmitBody;
use super::views::{due_view, kind_view, status_view, subject_view, SubjectRequestView};
use crate::domain::{allowed_commands, Actor, Channel, Command, FreeText, Locale, Reference};
use crate::service::{now, requests, verification, ServiceError, Services};
use crate::storage::rows::StoredRequest;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/requests", web::post().to(submit))
        .route("/requests/{reference}", web::get().to(show))
        .route("/requests/{reference}/withdraw", web::post().to(withdraw))
        .route("/requests/{reference}/reply", web::post().to(reply))
        .route("/requests/{reference}/messages", web::get().to(messages))
        .route(
            "/requests/{reference}/verification",
            web::post().to(verify_code),
        )
        .route(
            "/requests/{reference}/verification/resend",
            web::post().to(resend_code),
        )
        .route("/verification/magic-link", web::post().to(magic_link))
        .route("/session", web::delete().to(sign_out));
}

#[tracing::instrument(skip_all)]
async fn submit(
    req: HttpRequest,
    s: web::Data<Services>,
    limits: web::Data<Limits>,
    body: web::Json<SubmitBody>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    limits::check(&limits.submissions, &limits::client(&req)).await?;
    let body = body.into_inner();
    if body.received_at.is_some() || body.channel.is_some() {
        return Err(ApiError::invalid(
            "field_not_allowed",
            "received_at 和 channel 只能由工作人员登记",
            "received_at and channel are for requests logged by staff",
        ));
    }
    let mut new = body.parse(lang.0, Channel::Online)?;
    // A user already signed in to the platform arrives with a token the platform signed.
    let platform_token = req
        .headers()
        .get("x-platform-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(token) = &platform_token {
        new.platform_user_id = Some(platform_user(&s, token)?);
    }
    let locale = new.locale;
    let services = s.clone();
    let (submitted, verification, session) = blocking(move || {
        let at = now();
        if new.platform_user_id.is_some() {
            let submitted = requests::submit(&services, new, &Actor::Subject, at)?;
            let session = verification::prove_platform(&services, submitted.request.clone(), at)?;
            let status = if session.request.state.verified_at.is_some() { "verified" } else { "staff_check_needed" };
            return Ok((submitted, json!({ "status": status, "method": "platform_token" }), Some(session)));
        }
        // The request and its first code in one transaction.
        let (submitted, sent) = verification::submit_with_first_code(&services, new, &Actor::Subject, at)?;
        let verification = match sent {
            Some(channel) => json!({ "status": "code_sent", "channel": channel.as_str(), "expires_in": services.verification().code_minutes * 60 }),
            None => json!({ "status": "code_not_sent" }),
        };
        Ok((submitted, verification, None))
    })
    .await?;
    let r = session.as_ref().map_or(&submitted.request, |s| &s.request);
    let location = format!("/api/v1/requests/{}", r.reference);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location.clone()))
        .json(json!({
            "reference": r.reference,
            "status": status_view(r.state.status, locale),
            "kind": kind_view(r.state.kind, locale),
            "jurisdiction": r.state.jurisdiction,
            "received_at": r.state.received_at,
            "due": r.state.due.as_ref().map(|d| due_view(d, locale)),
            "acknowledge_by": r.state.acknowledge_by.as_ref().map(|d| due_view(d, locale)),
            "verification": verification,
            "session": session.as_ref().map(|s| json!({ "token": s.token, "expires_at": s.expires_at })),
            "links": { "self": location },
        })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

/// A one-time code: verifies the request (if it still waits) and opens a session.
#[tracing::instrument(skip_all)]
async fn verify_code(
    req: HttpRequest,
    s: web::Data<Services>,
    limits: web::Data<Limits>,
    path: web::Path<String>,
    body: web::Json<CodeBody>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    limits::check(&limits.code_checks_ip, &limits::client(&req)).await?;
    limits::check(&limits.code_checks_reference, &path.to_ascii_uppercase()).await?;
    // An ill-formed reference is answered like a wrong code, so nothing can be probed.
    let reference = Reference::parse(&path).map_err(|_| {
        ApiError::from(ServiceError::WrongCode {
            attempts_left: None,
        })
    })?;
    let code = body.into_inner().code;
    let services = s.clone();
    let (session, view) = blocking(move || {
        let session = verification::verify_code(&services, &reference, &code, now())?;
        let view = detail(&services, &session.request, lang.0)?;
        Ok((session, view))
    })
    .await?;
    Ok(session_response(&session, view))
}

/// Sends a new code. Always 202, known reference or not; at most one code a minute is sent.
#[tracing::instrument(skip_all)]
async fn resend_code(
    req: HttpRequest,
    s: web::Data<Services>,
    limits: web::Data<Limits>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    limits::check(&limits.resends, &limits::client(&req)).await?;
    let services = s.clone();
    let wait = s.verification().resend_seconds;
    if let Ok(reference) = Reference::parse(&path) {
        blocking(
            move || match verification::resend_code(&services, &reference, now()) {
                Err(ServiceError::TooSoon { .. }) => Ok(()),
                other => other,
            },
        )
        .await?;
    }
    Ok(HttpResponse::Accepted()
        .json(json!({ "status": "sent_if_known", "resend_after_seconds": wait })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    token: String,
}

/// The magic link from the code email: verifies once and opens a session.
#[tracing::instrument(skip_all)]
async fn magic_link(
    req: HttpRequest,
    s: web::Data<Services>,
    limits: web::Data<Limits>,
    body: web::Json<LinkBody>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    limits::check(&limits.code_checks_ip, &limits::client(&req)).await?;
    let token = body.into_inner().token;
    let services = s.clone();
    let (session, view) = blocking(move || {
        let session = verification::verify_magic_link(&services, &token, now())?;
        let view = detail(&services, &session.request, lang.0)?;
        Ok((session, view))
    })
    .await?;
    Ok(session_response(&session, view))
}

/// The session cookie for the portal: HttpOnly (no script reads it), Secure, SameSite=Strict
/// (no other site's page can send it, which also stops cross-site form posts).
pub const SESSION_COOKIE: &str = "rf_session";

pub fn session_cookie(session: &verification::Session) -> actix_web::cookie::Cookie<'static> {
    let seconds = (session.expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    actix_web::cookie::Cookie::build(SESSION_COOKIE, session.token.clone())
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(actix_web::cookie::SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(seconds))
        .finish()
}

fn session_response(session: &verification::Session, view: SubjectRequestView) -> HttpResponse {
    HttpResponse::Ok()
        .cookie(session_cookie(session))
        .json(json!({
            "session": { "token": session.token, "expires_at": session.expires_at },
            "request": view,
        }))
}

/// Ends the session in `Authorization` (sign out).
#[tracing::instrument(skip_all)]
async fn sign_out(s: web::Data<Services>, token: SubjectToken) -> Result<HttpResponse, ApiError> {
    let services = s.clone();
    blocking(move || verification::close_session(&services, &token.0, now())).await?;
    let mut gone = actix_web::cookie::Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// The request as its subject sees it, with what they may do now.
fn detail(
    services: &Services,
    r: &StoredRequest,
    locale: Locale,
) -> Result<SubjectRequestView, ServiceError> {
    let events = requests::events(services, &r.id)?;
    let allowed = allowed_commands(&r.state, &Actor::Subject, &services.context(now()));
    Ok(subject_view(r, &events, allowed, locale))
}

fn reference(raw: &str) -> Result<Reference, ApiError> {
    // An ill-formed reference opens nothing: the same answer as a wrong session.
    Reference::parse(raw).map_err(|_| ApiError::unauthorized())
}

#[tracing::instrument(skip_all)]
async fn show(
    s: web::Data<Services>,
    path: web::Path<String>,
    token: SubjectToken,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    let reference = reference(&path)?;
    let services = s.clone();
    let view = blocking(move || {
        detail(
            &services,
            &requests::get_for_subject(&services, &reference, &token.0)?,
            lang.0,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    #[serde(default)]
    reason: Option<FreeText>,
}

#[tracing::instrument(skip_all)]
async fn withdraw(
    s: web::Data<Services>,
    path: web::Path<String>,
    token: SubjectToken,
    body: web::Bytes,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    // The body is optional (a reason), but when one is sent it must be valid.
    let body: WithdrawBody = if body.iter().all(u8::is_ascii_whitespace) {
        WithdrawBody::default()
    } else {
        serde_json::from_slice(&body).map_err(super::json_body_error)?
    };
    let command = Command::Withdraw {
        reason: body.reason,
    };
    subject_command(s, &path, token, command, lang).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    message: FreeText,
}

#[tracing::instrument(skip_all)]
async fn reply(
    s: web::Data<Services>,
    path: web::Path<String>,
    token: SubjectToken,
    body: web::Json<ReplyBody>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    let command = Command::SubjectReply {
        message: body.into_inner().message,
    };
    subject_command(s, &path, token, command, lang).await
}

async fn subject_command(
    s: web::Data<Services>,
    raw_reference: &str,
    token: SubjectToken,
    command: Command,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    let reference = reference(raw_reference)?;
    let services = s.clone();
    let view = blocking(move || {
        let r = requests::subject_act(&services, &reference, &token.0, &command, now())?;
        detail(&services, &r, lang.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The in-site messages (站内信) sent about this request, oldest first.
#[tracing::instrument(skip_all)]
async fn messages(
    s: web::Data<Services>,
    path: web::Path<String>,
    token: SubjectToken,
) -> Result<HttpResponse, ApiError> {
    let reference = reference(&path)?;
    let services = s.clone();
    let items = blocking(move || {
        let r = requests::get_for_subject(&services, &reference, &token.0)?;
        Ok(crate::storage::inbox::for_request(
            &mut *services.db().conn()?,
            &r.id,
        )?)
    })
    .await?;
    let items: Vec<_> = items
        .iter()
        .map(|m| json!({ "id": m.id, "message": m.message, "locale": m.locale, "subject": m.subject, "body": m.body, "created_at": crate::storage::from_db_time(m.created_at) }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// The platform account a token the platform signed names (422 `platform_not_configured`
/// without the platform's key; 401 `invalid_platform_token` for a bad token).
pub(crate) fn platform_user(s: &Services, token: &str) -> Result<String, ApiError> {
    let verifier = s.platform().ok_or_else(|| {
        ApiError::invalid(
            "platform_not_configured",
            "本服务未启用平台登录",
            "Platform sign-in is not configured here",
        )
    })?;
    Ok(verifier.user_id(token)?)
}

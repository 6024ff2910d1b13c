//! The subject's side of the API: submit a request, follow it, reply, withdraw.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::{blocking, ApiError};
use super::extract::{RequestLocale, SubjectToken};
use super::submission::SubmitBody;
use super::views::{due_view, kind_view, status_view, subject_view, SubjectRequestView};
use crate::domain::{allowed_commands, Actor, Channel, Command, FreeText, Locale, Reference};
use crate::service::{now, requests, ServiceError, Services};
use crate::storage::rows::StoredRequest;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/requests", web::post().to(submit))
        .route("/requests/{reference}", web::get().to(show))
        .route("/requests/{reference}/withdraw", web::post().to(withdraw))
        .route("/requests/{reference}/reply", web::post().to(reply))
        .route("/requests/{reference}/messages", web::get().to(messages));
}

#[tracing::instrument(skip_all)]
async fn submit(
    s: web::Data<Services>,
    body: web::Json<SubmitBody>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.received_at.is_some() || body.channel.is_some() {
        return Err(ApiError::invalid(
            "field_not_allowed",
            "received_at 和 channel 只能由工作人员登记",
            "received_at and channel are for requests logged by staff",
        ));
    }
    let new = body.parse(lang.0, Channel::Online)?;
    let locale = new.locale;
    let services = s.clone();
    let submitted =
        blocking(move || requests::submit(&services, new, &Actor::Subject, now())).await?;
    let r = &submitted.request;
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
            "subject_token": submitted.subject_token,
            "links": { "self": location },
        })))
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
    // An ill-formed reference names no request: the same answer as an unknown one.
    Reference::parse(raw).map_err(|_| ApiError::not_found())
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

//! The staff side of the API: sign in, the queue, one request with its timeline, actions, and
//! logging requests that arrived by phone or letter.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::error::{blocking, ApiError};
use super::extract::{RequestLocale, StaffActor};
use super::submission::SubmitBody;
use super::views::{staff_view, StaffRequestView};
use crate::domain::{
    allowed_commands, Actor, Channel, Command, Jurisdiction, Locale, RequestKind, Status,
};
use crate::service::{now, requests, staff, ServiceError, Services};
use crate::storage::requests::{ListFilter, Sort};
use crate::storage::rows::StoredRequest;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/staff/login", web::post().to(login))
        .route("/staff/requests", web::get().to(list))
        .route("/staff/requests", web::post().to(log_request))
        .route("/staff/requests/{id}", web::get().to(show))
        .route("/staff/requests/{id}/actions", web::post().to(act));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    /// The authenticator app's 6-digit code, for an account with a second factor.
    #[serde(default)]
    totp_code: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn login(
    req: actix_web::HttpRequest,
    s: web::Data<Services>,
    limits: web::Data<super::limits::Limits>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    limit_sign_in(&req, &s, &limits).await?;
    let LoginBody {
        email,
        password,
        totp_code,
    } = body.into_inner();
    let services = s.clone();
    let (token, row) =
        blocking(move || staff::login(&services, &email, &password, totp_code.as_deref(), now()))
            .await?;
    Ok(HttpResponse::Ok().json(json!({
        "token": token,
        "token_type": "Bearer",
        "expires_in": s.tokens().lifetime().num_seconds(),
        "staff": { "id": row.id, "email": row.email, "role": row.role },
    })))
}

/// The per-address limit on staff sign-ins (API and console). An attempt over the limit is
/// recorded like any other (`rate_limited`, without the typed email).
pub async fn limit_sign_in(
    req: &actix_web::HttpRequest,
    s: &web::Data<Services>,
    limits: &super::limits::Limits,
) -> Result<(), ApiError> {
    let Err(e) = super::limits::check(&limits.staff_logins, &super::limits::client(req)).await
    else {
        return Ok(());
    };
    let services = s.clone();
    let recorded = blocking(move || {
        let mut conn = services.db().conn()?;
        Ok(crate::storage::staff::record_sign_in(
            &mut conn,
            None,
            "rate_limited",
            now(),
        )?)
    })
    .await;
    if let Err(failed) = recorded {
        tracing::warn!(error = %failed, "could not record a rate-limited sign-in");
    }
    Err(e)
}

/// Query parameters of the queue. Everything is optional; values are checked, not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    jurisdiction: Option<String>,
    /// A staff id, or `me`.
    assignee: Option<String>,
    /// A date (`2026-10-23`, through the end of that day UTC) or an RFC 3339 instant.
    due_before: Option<String>,
    overdue: Option<bool>,
    /// Only requests flagged as duplicates.
    duplicate: Option<bool>,
    /// `due` (default), `-due`, `received`, `-received`.
    sort: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn bad_query(param: &str) -> ApiError {
    ApiError::invalid(
        "invalid_query",
        format!("查询参数 {param} 的值无效"),
        format!("The value of query parameter {param} is not valid"),
    )
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_time(NaiveTime::from_hms_opt(23, 59, 59)?).and_utc())
}

impl ListQuery {
    fn into_filter(self, me: Option<&str>, now: DateTime<Utc>) -> Result<ListFilter, ApiError> {
        fn opt<T: std::str::FromStr>(v: Option<String>, name: &str) -> Result<Option<T>, ApiError> {
            v.map(|v| v.parse().map_err(|_| bad_query(name)))
                .transpose()
        }
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        if !(1..=200).contains(&limit) {
            return Err(bad_query("limit"));
        }
        if offset < 0 {
            return Err(bad_query("offset"));
        }
        let sort = match self.sort.as_deref() {
            None | Some("due") => Sort::DueAsc,
            Some("-due") => Sort::DueDesc,
            Some("received") => Sort::ReceivedAsc,
            Some("-received") => Sort::ReceivedDesc,
            Some(_) => return Err(bad_query("sort")),
        };
        let assignee = match self.assignee.as_deref() {
            Some("me") => me.map(str::to_owned),
            other => other.map(str::to_owned),
        };
        Ok(ListFilter {
            status: opt::<Status>(self.status, "status")?,
            kind: opt::<RequestKind>(self.kind, "kind")?,
            jurisdiction: opt::<Jurisdiction>(self.jurisdiction, "jurisdiction")?,
            assignee,
            due_before: self
                .due_before
                .map(|t| parse_instant(&t).ok_or_else(|| bad_query("due_before")))
                .transpose()?,
            overdue_at: self.overdue.filter(|o| *o).map(|_| now),
            duplicates_only: self.duplicate.unwrap_or(false),
            sort,
            limit,
            offset,
            ..ListFilter::default()
        })
    }
}

#[tracing::instrument(skip_all)]
async fn list(
    s: web::Data<Services>,
    who: StaffActor,
    query: web::Query<ListQuery>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    let at = now();
    let filter = query.into_inner().into_filter(who.0.staff_id(), at)?;
    let (limit, offset) = (filter.limit, filter.offset);
    let services = s.clone();
    let (items, total) = blocking(move || {
        let (page, total) = requests::list(&services, &filter)?;
        let ctx = services.context(at);
        let items: Vec<_> = page
            .iter()
            .map(|r| {
                staff_view(
                    r,
                    allowed_commands(&r.state, &who.0, &ctx),
                    None,
                    lang.0,
                    at,
                )
            })
            .collect();
        Ok((items, total))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "items": items, "total": total, "limit": limit, "offset": offset })))
}

#[tracing::instrument(skip_all)]
async fn show(
    s: web::Data<Services>,
    who: StaffActor,
    path: web::Path<String>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let services = s.clone();
    let at = now();
    let view = blocking(move || {
        detail(
            &services,
            &requests::open_for_staff(&services, &who.0, &id)?,
            &who.0,
            lang.0,
            at,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A request with its timeline and what this staff member may do with it now.
fn detail(
    services: &Services,
    r: &StoredRequest,
    who: &Actor,
    locale: Locale,
    at: DateTime<Utc>,
) -> Result<StaffRequestView, ServiceError> {
    let events = requests::events(services, &r.id)?;
    let allowed = allowed_commands(&r.state, who, &services.context(at));
    Ok(staff_view(r, allowed, Some(&events), locale, at))
}

/// An action body is a command plus, optionally, `expected_version`: the version the staff
/// member decided on (a newer stored version fails with 409). Read by hand rather than with
/// `#[serde(flatten)]` so that unknown fields (a misspelt `expected_version`) are refused.
struct ActionBody {
    command: Command,
    expected_version: Option<i64>,
}

impl ActionBody {
    fn parse(mut body: serde_json::Value) -> Result<ActionBody, ApiError> {
        let expected_version = match body
            .as_object_mut()
            .and_then(|o| o.remove("expected_version"))
        {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                super::json_body_error(serde::de::Error::custom(
                    "expected_version must be a whole number",
                ))
            })?),
        };
        let command = serde_json::from_value(body).map_err(super::json_body_error)?;
        Ok(ActionBody {
            command,
            expected_version,
        })
    }
}

#[tracing::instrument(skip_all)]
async fn act(
    s: web::Data<Services>,
    who: StaffActor,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let ActionBody {
        command,
        expected_version,
    } = ActionBody::parse(body.into_inner())?;
    let services = s.clone();
    let at = now();
    let view = blocking(move || {
        let r = requests::act(&services, &id, &who.0, &command, expected_version, at)?;
        detail(&services, &r, &who.0, lang.0, at)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A request received by phone, letter, email or in person, with its real receipt time, so
/// the legal clock starts when it really arrived.
#[tracing::instrument(skip_all)]
async fn log_request(
    s: web::Data<Services>,
    who: StaffActor,
    body: web::Json<SubmitBody>,
    lang: RequestLocale,
) -> Result<HttpResponse, ApiError> {
    if !who.0.may_log_requests() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "not_permitted",
            "您无权登记请求",
            "You may not log requests",
        ));
    }
    let body = body.into_inner();
    let channel = match body.channel.as_deref() {
        Some(c) => c
            .parse::<Channel>()
            .ok()
            .filter(|c| *c != Channel::Online)
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_channel",
                    "渠道必须是 phone、letter、email 或 in_person",
                    "The channel must be phone, letter, email or in_person",
                )
            })?,
        None => {
            return Err(ApiError::invalid(
                "missing_channel",
                "请注明请求的来源渠道",
                "Say how the request arrived (channel)",
            ))
        }
    };
    if body.received_at.is_none() {
        return Err(ApiError::invalid(
            "missing_received_at",
            "请填写实际收到请求的时间",
            "Give the time the request really arrived (received_at)",
        ));
    }
    // Without an explicit locale the subject is served in Chinese, not in whatever language
    // the staff member's browser prefers.
    let new = body.parse(Locale::default(), channel)?;
    let services = s.clone();
    let at = now();
    let actor = who.0.clone();
    let submitted = blocking(move || requests::submit(&services, new, &actor, at)).await?;
    let r = &submitted.request;
    let allowed = allowed_commands(&r.state, &who.0, &s.context(at));
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/staff/requests/{}", r.id)))
        .json(staff_view(r, allowed, None, lang.0, at)))
}

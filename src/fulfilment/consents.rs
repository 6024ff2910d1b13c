//! The consent ledger: which purposes each subject has consented to, as a history of grants
//! and withdrawals with their time and source. A consent withdrawal request writes its
//! withdrawals as soon as it is approved (automatically, once the subject is verified); the
//! platform records the grants and withdrawals made in its own settings pages, reads current
//! consents through the API, and is told of each change Rightsflow records by a signed webhook.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::run::FulfilError;
use crate::domain::details::RequestDetails;
use crate::domain::{Actor, Command, FreeText, Locale};
use crate::service::{requests, ServiceError, Services};
use crate::storage::consents::{self as store, ConsentEvent, CONSENT_WEBHOOK};
use crate::storage::outbox::OutboxRow;
use crate::storage::rows::StoredRequest;
use crate::storage::{from_db_time, to_db_time};

/// Where a consent stands now for one purpose: the latest event, if any.
#[derive(Debug, Clone, Serialize)]
pub struct Current {
    pub purpose: String,
    /// None: never recorded (the platform's own default applies).
    pub granted: Option<bool>,
    pub at: Option<DateTime<Utc>>,
    pub source: Option<String>,
}

/// Records the withdrawals a consent withdrawal request names, then completes it. Run twice,
/// it records nothing new (the events' ids come from the request and the purpose).
pub fn withdraw_for_request(
    s: &Services,
    r: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<usize, FulfilError> {
    let Ok(RequestDetails::ConsentWithdrawal(d)) =
        RequestDetails::parse(r.state.kind, r.details.clone())
    else {
        return Ok(0);
    };
    let webhook = s.consents().webhook_url.is_some();
    let mut recorded = 0;
    for consent in &d.consents {
        let event = ConsentEvent {
            id: format!("{}:{}", r.id, consent.as_str()),
            platform_user_id: r.platform_user_id.clone(),
            // Without platform sign-in the subject is known by the email they proved.
            email: if r.platform_user_id.is_some() {
                None
            } else {
                r.contact.email.as_ref().map(|e| e.as_str().to_owned())
            },
            purpose: consent.as_str().to_owned(),
            granted: false,
            source: format!("request:{}", r.reference.as_str()),
            request_id: Some(r.id.clone()),
            at: to_db_time(now),
        };
        let mut conn = s.db().conn().map_err(ServiceError::from)?;
        if store::record(&mut conn, &event, webhook, now)? {
            recorded += 1;
        }
    }
    tracing::info!(reference = %r.reference, recorded, "consents withdrawn");
    Ok(recorded)
}

/// The purposes a consent withdrawal names.
pub fn purposes_of(r: &StoredRequest) -> Vec<String> {
    match RequestDetails::parse(r.state.kind, r.details.clone()) {
        Ok(RequestDetails::ConsentWithdrawal(d)) => {
            d.consents.iter().map(|c| c.as_str().to_owned()).collect()
        }
        _ => vec![],
    }
}

/// What the subject is told when their consents are withdrawn everywhere.
pub fn completion_summary(locale: Locale) -> &'static str {
    match locale {
        Locale::ZhCn => "已撤回您选择的同意，相关处理已停止，平台已收到通知。",
        Locale::En => "The consents you chose are withdrawn; that processing has stopped and the platform has been told.",
    }
}

/// Completes a consent withdrawal no system needs to act on.
pub fn complete_withdrawal(
    s: &Services,
    r: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<(), FulfilError> {
    let complete = Command::Complete {
        summary: FreeText::parse(completion_summary(r.locale))
            .map_err(|e| FulfilError::Permanent(e.to_string()))?,
    };
    match requests::act(s, &r.id, &Actor::System, &complete, None, now) {
        Ok(_) | Err(ServiceError::Transition(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The platform records a change made in its own pages (source `platform` unless it names
/// another, such as `gpc`). The platform made it, so no webhook goes back to it.
pub fn record_from_platform(
    s: &Services,
    platform_user_id: &str,
    purpose: &str,
    granted: bool,
    source: &str,
    now: DateTime<Utc>,
) -> Result<ConsentEvent, ServiceError> {
    let event = ConsentEvent {
        id: uuid::Uuid::new_v4().to_string(),
        platform_user_id: Some(platform_user_id.to_owned()),
        email: None,
        purpose: purpose.to_owned(),
        granted,
        source: source.to_owned(),
        request_id: None,
        at: to_db_time(now),
    };
    store::record(&mut *s.db().conn()?, &event, false, now)?;
    Ok(event)
}

/// Current consents of a platform account for every configured purpose, and the history.
pub fn current(
    s: &Services,
    platform_user_id: &str,
) -> Result<(Vec<Current>, Vec<ConsentEvent>), ServiceError> {
    let history = store::history(&mut *s.db().conn()?, platform_user_id)?;
    let current = s
        .consents()
        .purposes
        .iter()
        .map(|p| {
            let last = history.iter().rev().find(|e| &e.purpose == p);
            Current {
                purpose: p.clone(),
                granted: last.map(|e| e.granted),
                at: last.map(|e| from_db_time(e.at)),
                source: last.map(|e| e.source.clone()),
            }
        })
        .collect();
    Ok((current, history))
}

/// Sends one webhook row: a JSON POST signed as the SMS gateway's calls are
/// (`X-Rightsflow-Timestamp`, `X-Rightsflow-Signature`: hex HMAC-SHA256 over
/// `"{timestamp}.{body}"`), with the row's id as `Idempotency-Key`.
pub fn send_webhook(s: &Services, row: &OutboxRow) -> Result<(), FulfilError> {
    let c = s.consents();
    let (Some(url), Some(secret)) = (&c.webhook_url, &c.webhook_secret) else {
        return Err(FulfilError::Permanent(
            "consents.webhook_url and consents.webhook_secret must both be set".into(),
        ));
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(15)))
        .http_status_as_error(false)
        .build()
        .into();
    let timestamp = Utc::now().timestamp();
    let signature = crate::auth::signing::signature(secret.expose(), timestamp, &row.payload);
    let res = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Rightsflow-Event", CONSENT_WEBHOOK)
        .header("X-Rightsflow-Timestamp", &timestamp.to_string())
        .header("X-Rightsflow-Signature", &signature)
        .header("Idempotency-Key", &row.id)
        .send(&row.payload)
        .map_err(|e| FulfilError::Transient(format!("consent webhook: {e}")))?;
    match res.status().as_u16() {
        200..=299 => Ok(()),
        status => Err(FulfilError::Transient(format!(
            "consent webhook: HTTP {status}"
        ))),
    }
}

//! The restriction lifecycle (GDPR Art. 18, PIPL Art. 44): a restriction stays in force after its
//! request completes; only a reviewer or admin lifts it, with a reason, and the subject is told
//! `fulfilment.restriction_notice_days` before it takes effect (Art. 18(3)). Lifting is a second
//! task (`lift_restriction`) in every system and recipient that restricted, whose outbox row
//! waits until the day the notice names.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::domain::{Actor, Command, FreeText, Message, Recipient, RequestKind, Status};
use crate::service::{requests, ServiceError, Services};
use crate::storage::outbox;
use crate::storage::rows::StoredRequest;
use crate::storage::tasks::{self, TaskView, DONE};
use crate::storage::StoreError;

/// The action of a task that lifts a restriction.
pub const LIFT: &str = "lift_restriction";

/// Where a restriction stands, for the request page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Not a restriction in force (another kind, not completed, nothing restricted).
    None,
    /// In force; may be lifted.
    InForce,
    /// Lifting is scheduled or running: from when.
    Lifting(DateTime<Utc>),
    /// Lifted everywhere.
    Lifted,
}

/// Where the request's restriction stands.
pub fn standing(s: &Services, request_id: &str) -> Result<Standing, ServiceError> {
    let r = requests::get(s, request_id)?;
    let all = tasks::for_request(&mut *s.db().conn()?, request_id)?;
    Ok(standing_of(&r, &all))
}

/// Where a restriction stands, from the request and its tasks (the request page has both).
pub fn standing_of(r: &StoredRequest, all: &[TaskView]) -> Standing {
    if r.state.kind != RequestKind::Restriction || r.state.status != Status::Completed {
        return Standing::None;
    }
    let lifts: Vec<_> = all.iter().filter(|t| t.task.action == LIFT).collect();
    if lifts.is_empty() {
        let restricted = all
            .iter()
            .any(|t| t.task.action == "restriction" && t.task.status == DONE);
        return if restricted {
            Standing::InForce
        } else {
            Standing::None
        };
    }
    if lifts.iter().all(|t| t.task.status != tasks::PENDING) {
        return Standing::Lifted;
    }
    let from = lifts
        .iter()
        .map(|t| crate::storage::from_db_time(t.run_after))
        .max()
        .unwrap_or_else(Utc::now);
    Standing::Lifting(from)
}

/// A reviewer or admin lifts the restriction of a completed restriction request, saying why:
/// the subject is told now and the systems act `restriction_notice_days` later. Returns when it
/// takes effect.
pub fn lift(
    s: &Services,
    actor: &Actor,
    request_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ServiceError> {
    let notice_days = s.restriction_notice_days();
    if !matches!(actor, Actor::Staff { role, .. } if role.decides()) {
        return Err(ServiceError::NotPermitted);
    }
    let reason = FreeText::parse(reason).map_err(|_| ServiceError::WaiveReasonMissing)?;
    match standing(s, request_id)? {
        Standing::InForce => {}
        Standing::Lifting(_) | Standing::Lifted => return Err(ServiceError::AlreadyLifting),
        Standing::None => return Err(ServiceError::NotRestricted),
    }
    let r = requests::get(s, request_id)?;
    // At least a day's notice, whatever the configuration says: the subject must be able to
    // object before it happens.
    let effective = now + Duration::days(i64::from(notice_days.max(1)));
    let restricted: Vec<String> = tasks::for_request(&mut *s.db().conn()?, request_id)?
        .into_iter()
        .filter(|t| t.task.action == "restriction" && t.task.status == DONE)
        .map(|t| t.task.system)
        .collect();
    let text = format!(
        "restriction to be lifted on {} (UTC), after notice to the subject: {}",
        effective.format("%Y-%m-%d %H:%M"),
        reason.as_str()
    );
    let text = FreeText::parse(&text).map_err(|e| ServiceError::Internal(e.to_string()))?;
    // The note first: the core decides whether this staff member may act on the request.
    requests::act(s, request_id, actor, &Command::Note { text }, None, now)?;
    let lift_date = match r.locale {
        crate::domain::Locale::ZhCn => effective.format("%Y年%m月%d日").to_string(),
        crate::domain::Locale::En => effective.format("%d %B %Y").to_string(),
    };
    let notice = outbox::notify_row(
        request_id,
        None,
        &Recipient::Subject,
        Message::RestrictionLifting,
        r.locale,
        json!({ "lift_date": lift_date }),
        now,
    );
    let mut conn = s.db().conn()?;
    crate::storage::db::write::<_, StoreError, _>(&mut conn, |c| {
        outbox::insert(c, &notice)?;
        for system in &restricted {
            tasks::create(c, request_id, system, LIFT, now, effective)?;
        }
        Ok(())
    })?;
    tracing::info!(reference = %r.reference, systems = restricted.len(), effective = %effective, "restriction lifting scheduled");
    Ok(effective)
}

//! Running fulfilment from the outbox worker.
//!
//! - `start_fulfilment` (written when a request is approved): [`plan`] makes one task per data
//!   system that holds what the request is about, each with its `fulfil` outbox row.
//! - `fulfil`: [`perform`] runs one task with the system's connector (retried by the outbox
//!   on failure, parked for staff when retries run out). A task that would change data first
//!   marks the request's fulfilment as started, after which the subject can no longer
//!   withdraw; a task whose request ended meanwhile is cancelled without touching anything.
//! - When the last task of a request is done, the request is completed by the system, and an
//!   access or portability request gets its report or export to download.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::dataset::Dataset;
use super::http::Answer;
use super::registry::{Connector, Registry, System};
use super::sql::{self, SubjectKeys, Target};
use crate::auth::signing::SignatureError;
use crate::domain::details::{DataCategory, DeletionScope, RequestDetails};
use crate::domain::{Actor, Command, FreeText, Locale, RequestKind, Status};
use crate::service::{requests, ServiceError, Services};
use crate::storage::outbox::{self, OutboxRow};
use crate::storage::rows::StoredRequest;
use crate::storage::tasks::{self, TaskRow, CANCELLED, DONE, WAIVED};
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FulfilError {
    /// Worth retrying: the system was unreachable, a statement failed.
    #[error("{0}")]
    Transient(String),
    /// A retry cannot fix it: an unknown system, a task that does not exist.
    #[error("{0}")]
    Permanent(String),
}

impl From<ServiceError> for FulfilError {
    fn from(e: ServiceError) -> Self {
        FulfilError::Transient(e.to_string())
    }
}

impl From<sql::ConnectorError> for FulfilError {
    fn from(e: sql::ConnectorError) -> Self {
        FulfilError::Transient(e.to_string())
    }
}

impl From<crate::storage::StoreError> for FulfilError {
    fn from(e: crate::storage::StoreError) -> Self {
        FulfilError::Transient(e.to_string())
    }
}

/// The action of a task that records a consent withdrawal in a system.
pub const CONSENT: &str = "consent_withdrawal";

/// What a task does in its system, by the request's kind; None for kinds fulfilled elsewhere
/// (consent withdrawal: the consent ledger; complaints: an answer).
fn action_of(kind: RequestKind) -> Option<&'static str> {
    match kind {
        RequestKind::Access | RequestKind::Portability => Some("access"),
        RequestKind::Deletion => Some("deletion"),
        RequestKind::Correction => Some("correction"),
        RequestKind::Restriction => Some("restriction"),
        _ => None,
    }
}

fn details(r: &StoredRequest) -> Option<RequestDetails> {
    RequestDetails::parse(r.state.kind, r.details.clone()).ok()
}

/// The categories a request names (empty: all).
pub(crate) fn categories(r: &StoredRequest) -> Vec<DataCategory> {
    match details(r) {
        Some(RequestDetails::Access(d)) => d.categories,
        Some(RequestDetails::Portability(d)) => d.categories,
        Some(RequestDetails::Deletion(d)) if d.scope == DeletionScope::Categories => d.categories,
        _ => vec![],
    }
}

fn corrections(r: &StoredRequest) -> Vec<(String, String)> {
    match details(r) {
        Some(RequestDetails::Correction(d)) => d
            .fields
            .iter()
            .map(|f| {
                (
                    f.field.as_str().to_owned(),
                    f.corrected_value.as_str().to_owned(),
                )
            })
            .collect(),
        _ => vec![],
    }
}

/// Whether a system holds anything this request is about: for a database, what its
/// description says; for a system behind an endpoint or kept by hand, the categories it holds
/// (every correction and restriction concerns it: it decides what it holds of the subject).
fn concerns(system: &System, r: &StoredRequest) -> bool {
    // Recipients are told of what changes the data they received (GDPR Art. 19).
    if system.recipient.is_some()
        && !matches!(
            r.state.kind,
            RequestKind::Correction | RequestKind::Deletion | RequestKind::Restriction
        )
    {
        return false;
    }
    match &system.connector {
        Connector::Sql { dataset, .. } => dataset_concerns(dataset, r),
        _ => {
            let asked = categories(r);
            matches!(
                r.state.kind,
                RequestKind::Correction | RequestKind::Restriction
            ) || asked.is_empty()
                || system.categories().iter().any(|c| asked.contains(c))
        }
    }
}

fn dataset_concerns(d: &Dataset, r: &StoredRequest) -> bool {
    let cats = categories(r);
    match r.state.kind {
        RequestKind::Correction => corrections(r)
            .iter()
            .any(|(f, _)| d.correction_for(f).is_some()),
        RequestKind::Restriction => d.tables.iter().any(|t| t.restrict.is_some()),
        _ => d
            .tables
            .iter()
            .any(|t| cats.is_empty() || t.categories().any(|c| cats.contains(&c))),
    }
}

pub(crate) fn keys_of(r: &StoredRequest) -> SubjectKeys {
    SubjectKeys {
        platform_user_id: r.platform_user_id.clone(),
        email: r.contact.email.as_ref().map(|e| e.as_str().to_owned()),
        phone: r.contact.phone.as_ref().map(|p| p.as_str().to_owned()),
    }
}

/// Plans an approved request's tasks. Returns how many were made (none when no system holds
/// anything it is about: staff fulfil it by hand, as before).
pub fn plan(
    s: &Services,
    registry: &Registry,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<usize, FulfilError> {
    let r = requests::get(s, request_id)?;
    if r.state.status != Status::InProgress {
        return Ok(0);
    }
    if r.state.kind == RequestKind::ConsentWithdrawal {
        // The ledger changes now and the platform is told; systems that keep a flag for a
        // withdrawn purpose get a task to clear it.
        super::consents::withdraw_for_request(s, &r, now)?;
        let purposes = super::consents::purposes_of(&r);
        let mut made = 0;
        let mut conn = s.db().conn().map_err(ServiceError::from)?;
        for system in registry
            .systems()
            .iter()
            .filter(|x| x.purposes().iter().any(|p| purposes.contains(p)))
        {
            if tasks::create(&mut conn, &r.id, &system.name, CONSENT, now, now)? {
                made += 1;
            }
        }
        drop(conn);
        if made == 0
            && tasks::for_request(&mut *s.db().conn().map_err(ServiceError::from)?, &r.id)?
                .is_empty()
        {
            super::consents::complete_withdrawal(s, &r, now)?;
        }
        return Ok(made);
    }
    let Some(action) = action_of(r.state.kind) else {
        return Ok(0);
    };
    let mut made = 0;
    let mut conn = s.db().conn().map_err(ServiceError::from)?;
    for system in registry.systems().iter().filter(|x| concerns(x, &r)) {
        if tasks::create(&mut conn, &r.id, &system.name, action, now, now)? {
            made += 1;
        }
    }
    if made > 0 {
        tracing::info!(reference = %r.reference, tasks = made, "fulfilment planned");
    }
    Ok(made)
}

fn note(text: &str) -> Result<Command, FulfilError> {
    FreeText::parse(text)
        .map(|text| Command::Note { text })
        .map_err(|e| FulfilError::Permanent(e.to_string()))
}

/// Runs one task. Run twice (a worker died after the work), it does nothing the second time.
pub fn perform(
    s: &Services,
    registry: &Registry,
    task_id: &str,
    now: DateTime<Utc>,
) -> Result<(), FulfilError> {
    let task = tasks::find(&mut *s.db().conn().map_err(ServiceError::from)?, task_id)?
        .ok_or_else(|| FulfilError::Permanent(format!("no fulfilment task {task_id}")))?;
    if task.status != tasks::PENDING {
        return Ok(());
    }
    let mut r = requests::get(s, &task.request_id)?;
    // The request ended (withdrawn, say) before this task changed anything.
    let cancel = |r: &StoredRequest| -> Result<(), FulfilError> {
        let mut conn = s.db().conn().map_err(ServiceError::from)?;
        let status = json!({ "status": r.state.status });
        tasks::finish(&mut conn, &task.id, CANCELLED, &status, now)?;
        Ok(())
    };
    // Lifting a restriction happens after the request completed; everything else needs it open.
    let lifting = task.action == super::restriction::LIFT;
    if r.state.status != Status::InProgress && !lifting {
        return cancel(&r);
    }
    let system = registry.find(&task.system).ok_or_else(|| {
        FulfilError::Permanent(format!("no data system {} configured", task.system))
    })?;
    // A manual task changes nothing until staff act; the others change data when not access.
    let changes_data = task.action != "access"
        && !lifting
        && !matches!(system.connector, Connector::Manual { .. });
    if changes_data && r.state.fulfilment_started_at.is_none() {
        // From here the subject can no longer withdraw: their data is being changed.
        match requests::act(
            s,
            &r.id,
            &Actor::System,
            &Command::StartFulfilment,
            None,
            now,
        ) {
            Ok(updated) => r = updated,
            Err(ServiceError::Transition(_)) => r = requests::get(s, &r.id)?,
            Err(e) => return Err(e.into()),
        }
        if r.state.status != Status::InProgress {
            return cancel(&r);
        }
    }
    let outcome = match &system.connector {
        Connector::Sql { url, dataset } => {
            Outcome::Done(sql_task(&r, &task, url, dataset, system.timeout)?)
        }
        Connector::Http(http) => {
            let body = task_body(s, &r, &task, system.recipient.is_some(), &http.keys, now);
            match super::http::call(system, http, &task.id, &task.action, &body, now)? {
                Answer::Done(result) => {
                    let summary = answer_summary(&task.action, &result);
                    Outcome::Done((result, summary))
                }
                Answer::Refused(reason) => Outcome::Refused(reason),
                Answer::Accepted => {
                    Outcome::Waiting("sent; waiting for the system's callback".into())
                }
            }
        }
        Connector::Manual { instructions, .. } => {
            Outcome::Waiting(format!("waiting for staff: {instructions}"))
        }
    };
    record(s, registry, &r, &task, outcome, now)
}

/// What one attempt at a task came to.
pub(crate) enum Outcome {
    /// Done: the result kept on the task, and the summary for the event log (counts only).
    Done((Value, String)),
    /// The system cannot do it, and why: ended like a reviewer's waiver.
    Refused(String),
    /// Sent or listed: the task stays open until the callback or staff end it.
    Waiting(String),
}

/// Records an outcome: on the task, in the request's event log (by the system), and completes
/// the request when it was the last task. A task that ended meanwhile is left alone.
fn record(
    s: &Services,
    registry: &Registry,
    r: &StoredRequest,
    task: &TaskRow,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<(), FulfilError> {
    let label = registry
        .find(&task.system)
        .map_or_else(|| task.system.clone(), |x| x.label.clone());
    let (status, result, text) = match outcome {
        Outcome::Waiting(text) => {
            requests::act(
                s,
                &r.id,
                &Actor::System,
                &note(&format!("fulfilment: {label} ({}): {text}", task.action))?,
                None,
                now,
            )?;
            return Ok(());
        }
        Outcome::Done((result, summary)) => (
            DONE,
            result,
            format!("fulfilment: {label} ({}): {summary}", task.action),
        ),
        Outcome::Refused(reason) => (
            WAIVED,
            json!({ "reason": reason, "by": format!("system:{}", task.system) }),
            format!(
                "fulfilment task refused by {label} ({}): {reason}",
                task.action
            ),
        ),
    };
    let finished = {
        let mut conn = s.db().conn().map_err(ServiceError::from)?;
        tasks::finish(&mut conn, &task.id, status, &result, now)?
    };
    if !finished {
        return Ok(());
    }
    // The event log says what was done where (counts only: no personal data).
    requests::act(s, &r.id, &Actor::System, &note(&text)?, None, now)?;
    tracing::info!(reference = %r.reference, system = %task.system, action = %task.action, status, "fulfilment task ended");
    finish_if_all_done(s, registry, r, now)
}

/// A task in the SQL connector: one transaction in the system's database.
fn sql_task(
    r: &StoredRequest,
    task: &TaskRow,
    url: &str,
    d: &Dataset,
    timeout: std::time::Duration,
) -> Result<(Value, String), FulfilError> {
    let keys = keys_of(r);
    let mut target = Target::open_with_timeout(url, timeout)
        .map_err(|e| FulfilError::Transient(e.to_string()))?;
    Ok(match task.action.as_str() {
        "access" => {
            // Counts only: the report or package reads the rows when every task is done,
            // as a stream, rather than keeping them all here.
            let subject = sql::Subject::find(&mut target, d, &keys)?;
            let asked = categories(r);
            let mut tables = vec![];
            let mut rows = 0;
            for t in d
                .tables
                .iter()
                .filter(|t| !sql::columns_in(t, &asked).is_empty())
            {
                let n = sql::count(&mut target, t, &subject)?;
                rows += n;
                tables.push(json!({ "table": t.name, "rows": n }));
            }
            (json!({ "tables": tables }), format!("{rows} rows found"))
        }
        "deletion" => {
            let cats = categories(r);
            let scope = (!cats.is_empty()).then_some(cats.as_slice());
            let done = sql::delete(&mut target, d, &keys, scope)?;
            let summary = done
                .iter()
                .map(|o| format!("{} {} {}", o.table, o.action, o.rows))
                .collect::<Vec<_>>()
                .join(", ");
            (json!({ "tables": done }), summary)
        }
        "correction" => {
            let done = sql::correct(&mut target, d, &keys, &corrections(r))?;
            let summary = done
                .iter()
                .map(|f| match &f.column {
                    Some(c) => format!("{} -> {c} ({} rows)", f.field, f.rows),
                    None => format!("{}: not held here", f.field),
                })
                .collect::<Vec<_>>()
                .join(", ");
            (json!({ "fields": done }), summary)
        }
        "restriction" => {
            let done = sql::restrict(&mut target, d, &keys, true)?;
            let rows: usize = done.iter().map(|o| o.rows).sum();
            (json!({ "tables": done }), format!("{rows} rows flagged"))
        }
        CONSENT => {
            let purposes = super::consents::purposes_of(r);
            let done = sql::withdraw_consents(&mut target, d, &keys, &purposes)?;
            let rows: usize = done.iter().map(|o| o.rows).sum();
            (
                json!({ "tables": done }),
                format!("consent flags cleared on {rows} rows"),
            )
        }
        super::restriction::LIFT => {
            let done = sql::restrict(&mut target, d, &keys, false)?;
            let rows: usize = done.iter().map(|o| o.rows).sum();
            (
                json!({ "tables": done }),
                format!("{rows} rows no longer restricted"),
            )
        }
        other => return Err(FulfilError::Permanent(format!("unknown action {other}"))),
    })
}

/// What an HTTP system is sent: the task, the subject's identity keys, what the request asks,
/// and where to answer later. (Identity keys are personal data: they go only to a system the
/// operator registered, signed, and never into logs.)
fn task_body(
    s: &Services,
    r: &StoredRequest,
    task: &TaskRow,
    recipient: bool,
    understood: &[super::dataset::IdentityKey],
    now: DateTime<Utc>,
) -> Value {
    use super::dataset::IdentityKey;
    let keys = keys_of(r);
    // Only the keys the system understands: no more personal data leaves than it needs.
    let only = |k: IdentityKey, v: Option<String>| if understood.contains(&k) { v } else { None };
    let scope = match details(r) {
        Some(RequestDetails::Deletion(d)) => json!(d.scope),
        _ => Value::Null,
    };
    json!({
        "task_id": task.id,
        // A third party told of a change to data it received, not a system of the platform's.
        "recipient": recipient,
        "request": r.reference.as_str(),
        "kind": r.state.kind.as_str(),
        "action": task.action,
        "categories": categories(r),
        "deletion_scope": scope,
        "consents": super::consents::purposes_of(r),
        "corrections": corrections(r).iter().map(|(f, v)| json!({ "field": f, "value": v })).collect::<Vec<_>>(),
        "subject": {
            "platform_user_id": only(IdentityKey::PlatformUserId, keys.platform_user_id),
            "email": only(IdentityKey::Email, keys.email),
            "phone": only(IdentityKey::Phone, keys.phone),
        },
        "callback_url": format!("{}/api/v1/fulfilment/tasks/{}/callback", s.public_url(), task.id),
        "sent_at": now.to_rfc3339(),
    })
}

/// The event log's words for a system's result (counts only).
fn answer_summary(action: &str, result: &Value) -> String {
    match action {
        "access" => {
            let rows: usize = result["tables"]
                .as_array()
                .map(|ts| {
                    ts.iter()
                        .map(|t| t["rows"].as_array().map_or(0, Vec::len))
                        .sum()
                })
                .unwrap_or(0);
            format!("{rows} rows found")
        }
        _ => "done".into(),
    }
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no such task")]
    NotFound,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Invalid(String),
    #[error("the task has ended already")]
    Ended,
    #[error("{0}")]
    Failed(#[from] FulfilError),
}

/// A system's callback for a task it accepted: checked against the system's secrets before
/// anything is read from it, then recorded like an immediate answer.
pub fn receive_callback(
    s: &Services,
    task_id: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), CallbackError> {
    let registry = s.systems();
    let task = tasks::find(
        &mut *s
            .db()
            .conn()
            .map_err(ServiceError::from)
            .map_err(FulfilError::from)?,
        task_id,
    )
    .map_err(FulfilError::from)?
    .ok_or(CallbackError::NotFound)?;
    let Some(Connector::Http(http)) = registry.find(&task.system).map(|x| &x.connector) else {
        return Err(CallbackError::NotFound);
    };
    super::http::check(http, timestamp, signature, body, now)?;
    let outcome =
        match super::http::parse_answer(body, &task.action).map_err(CallbackError::Invalid)? {
            Answer::Done(result) => {
                let summary = answer_summary(&task.action, &result);
                Outcome::Done((result, summary))
            }
            Answer::Refused(reason) => Outcome::Refused(reason),
            Answer::Accepted => {
                return Err(CallbackError::Invalid(
                    "a callback says done or refused".into(),
                ))
            }
        };
    if task.status != tasks::PENDING {
        return Err(CallbackError::Ended);
    }
    let r = requests::get(s, &task.request_id).map_err(FulfilError::from)?;
    record(s, registry, &r, &task, outcome, now)?;
    Ok(())
}

/// Staff mark a manual task (a checklist item: "destroy the paper file") done, saying what they
/// did and, optionally, where the evidence is (a certificate number, a file reference).
pub fn mark_done(
    s: &Services,
    actor: &Actor,
    task_id: &str,
    what: &str,
    evidence: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let what = FreeText::parse(what).map_err(|_| ServiceError::DoneNoteMissing)?;
    let evidence = evidence
        .filter(|e| !e.trim().is_empty())
        .map(FreeText::parse)
        .transpose()
        .map_err(|_| ServiceError::DoneNoteMissing)?;
    let task = tasks::find(&mut *s.db().conn()?, task_id)?.ok_or(ServiceError::NotFound)?;
    let Some(system) = s.systems().find(&task.system) else {
        return Err(ServiceError::NotFound);
    };
    if !matches!(system.connector, Connector::Manual { .. }) {
        return Err(ServiceError::NotManual);
    }
    if task.status != tasks::PENDING {
        return Err(ServiceError::TaskEnded);
    }
    let text = match &evidence {
        Some(e) => format!(
            "fulfilment: {} ({}): done by hand: {}; evidence: {}",
            system.label,
            task.action,
            what.as_str(),
            e.as_str()
        ),
        None => format!(
            "fulfilment: {} ({}): done by hand: {}",
            system.label,
            task.action,
            what.as_str()
        ),
    };
    let result = json!({
        "done_by_hand": what.as_str(),
        "evidence": evidence.as_ref().map(FreeText::as_str),
        "by": actor.staff_id().unwrap_or_default(),
    });
    end_by_staff(s, actor, &task, &text, DONE, &result, now)
}

/// A reviewer records why a task could not be done (e.g. a legal retention period under PIPL
/// Art. 47: processing then stops except storage and security). The reason goes into the
/// event log now, and into the completion the subject is sent once every task has ended.
pub fn waive(
    s: &Services,
    actor: &Actor,
    task_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if !matches!(actor, Actor::Staff { role, .. } if role.decides()) {
        return Err(ServiceError::NotPermitted);
    }
    let reason = FreeText::parse(reason).map_err(|_| ServiceError::WaiveReasonMissing)?;
    let task = tasks::find(&mut *s.db().conn()?, task_id)?.ok_or(ServiceError::NotFound)?;
    if task.status != tasks::PENDING {
        return Err(ServiceError::TaskEnded);
    }
    let label = s
        .systems()
        .find(&task.system)
        .map_or_else(|| task.system.clone(), |x| x.label.clone());
    let text = format!(
        "fulfilment task waived: {label} ({}): {}",
        task.action,
        reason.as_str()
    );
    let by = actor.staff_id().unwrap_or_default();
    let result = json!({ "reason": reason.as_str(), "by": by });
    end_by_staff(s, actor, &task, &text, WAIVED, &result, now)
}

/// Ends a task staff decided on: their note goes into the event log first (so the core decides
/// whether they may act on the request at all), then the task ends, and the request completes
/// when it was the last one.
fn end_by_staff(
    s: &Services,
    actor: &Actor,
    task: &TaskRow,
    note: &str,
    status: &str,
    result: &Value,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let text = FreeText::parse(note).map_err(|e| ServiceError::Internal(e.to_string()))?;
    requests::act(
        s,
        &task.request_id,
        actor,
        &Command::Note { text },
        None,
        now,
    )?;
    if !tasks::finish(&mut *s.db().conn()?, &task.id, status, result, now)? {
        return Err(ServiceError::TaskEnded);
    }
    let r = requests::get(s, &task.request_id)?;
    if r.state.status == Status::InProgress {
        finish_if_all_done(s, s.systems(), &r, now)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
    }
    Ok(())
}

/// When every task of the request has ended (done, or waived with a reason): an access or
/// portability request with something found gets its result built first (an outbox row of its
/// own: retried, and never holding up the task that ended last); anything else is completed now.
fn finish_if_all_done(
    s: &Services,
    registry: &Registry,
    r: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<(), FulfilError> {
    // A lifted restriction's tasks end on a request completed long ago: nothing to complete.
    if r.state.status != Status::InProgress {
        return Ok(());
    }
    let all = tasks::for_request(&mut *s.db().conn().map_err(ServiceError::from)?, &r.id)?;
    if all.iter().any(|t| t.task.status == tasks::PENDING) {
        return Ok(());
    }
    // A report only of what was found: none when every task was waived (the completion says
    // why), rather than one that would read "nothing found".
    let found_any = all.iter().any(|t| {
        t.task.status == DONE
            && registry
                .find(&t.task.system)
                .is_some_and(|x| !matches!(x.connector, Connector::Manual { .. }))
    });
    if found_any && matches!(r.state.kind, RequestKind::Access | RequestKind::Portability) {
        let row = OutboxRow::new(
            format!("{}:{}", super::package::BUILD_RESULT, r.id),
            Some(&r.id),
            super::package::BUILD_RESULT,
            json!({ "request": r.id }).to_string(),
            now,
        );
        return match outbox::insert(&mut *s.db().conn().map_err(ServiceError::from)?, &row) {
            // Two tasks ended together: one row is enough.
            Ok(()) | Err(StoreError::Duplicate(_)) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    complete(s, registry, r, now)
}

/// The `build_result` row: builds the result (unless built already), then completes.
pub fn build_then_complete(
    s: &Services,
    registry: &Registry,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<(), FulfilError> {
    let r = requests::get(s, request_id)?;
    if r.state.status != Status::InProgress {
        return Ok(());
    }
    super::package::build(s, registry, &r, now)?;
    super::transfer::queue(s, &r, now)?;
    complete(s, registry, &r, now)
}

/// Completes the request by the system (only one caller wins), saying what could not be done
/// and why, in the reviewer's words.
fn complete(
    s: &Services,
    registry: &Registry,
    r: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<(), FulfilError> {
    let all = tasks::for_request(&mut *s.db().conn().map_err(ServiceError::from)?, &r.id)?;
    let mut summary = match (r.state.kind, r.locale) {
        (RequestKind::ConsentWithdrawal, locale) => {
            super::consents::completion_summary(locale).to_owned()
        }
        (_, Locale::ZhCn) => "已在保存您个人信息的各系统中办理完毕。".to_owned(),
        (_, Locale::En) => "Done in every system that holds your personal information.".to_owned(),
    };
    if let Some(label) = super::transfer::destination_of(registry, r).map(|d| d.label.clone()) {
        summary.push_str(&match r.locale {
            Locale::ZhCn => format!("\n按您的要求，您的数据副本将直接发送至：{label}。"),
            Locale::En => format!("\nAs you asked, a copy of your data is being sent to: {label}."),
        });
    }
    for t in all.iter().filter(|t| t.task.status == WAIVED) {
        let reason = t
            .task
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .and_then(|v| v["reason"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let label = registry
            .find(&t.task.system)
            .map_or_else(|| t.task.system.clone(), |x| x.label.clone());
        summary.push_str(&match r.locale {
            Locale::ZhCn => format!("\n以下部分未能办理（{label}）：{reason}。除存储和必要的安全保护外，我们已停止处理这部分信息。"),
            Locale::En => format!("\nNot done ({label}): {reason}. Apart from storing it and keeping it secure, we have stopped processing that information."),
        });
    }
    let complete = Command::Complete {
        summary: FreeText::parse(&summary).map_err(|e| FulfilError::Permanent(e.to_string()))?,
    };
    match requests::act(s, &r.id, &Actor::System, &complete, None, now) {
        Ok(_) => {}
        // Another task finished at the same moment and completed it.
        Err(ServiceError::Transition(_) | ServiceError::Stale { .. } | ServiceError::Busy) => {
            return Ok(())
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(reference = %r.reference, "fulfilment complete");
    Ok(())
}

/// A third party told of this request (GDPR Art. 19), as the subject sees it.
pub struct RecipientTold {
    pub label: String,
    pub purpose: String,
    pub categories: Vec<DataCategory>,
    /// Done: told (or it confirmed); false while the call or the checklist item is open.
    pub told: bool,
    /// Could not be told, and why.
    pub not_told: Option<String>,
}

/// The recipients this request was passed on to, in the order they were planned.
pub fn recipients_told(s: &Services, request_id: &str) -> Result<Vec<RecipientTold>, ServiceError> {
    let registry = s.systems();
    Ok(tasks::for_request(&mut *s.db().conn()?, request_id)?
        .into_iter()
        .filter(|t| t.task.action != super::restriction::LIFT)
        .filter_map(|t| {
            let system = registry.find(&t.task.system)?;
            let purpose = system.recipient.as_ref()?.0.clone();
            let not_told = (t.task.status == WAIVED).then(|| {
                t.task
                    .result
                    .as_deref()
                    .and_then(|r| serde_json::from_str::<Value>(r).ok())
                    .and_then(|v| v["reason"].as_str().map(str::to_owned))
                    .unwrap_or_default()
            });
            Some(RecipientTold {
                label: system.label.clone(),
                purpose,
                categories: system.categories(),
                told: t.task.status == DONE,
                not_told,
            })
        })
        .collect())
}

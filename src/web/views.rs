//! The JSON shapes the API returns. Labels come in the caller's language; codes stay stable.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::clock::{ClockWarning, Due};
use crate::domain::{Actor, Event, Locale, RejectionReason, RequestKind, Status};
use crate::storage::rows::StoredRequest;

#[derive(Debug, Serialize)]
pub struct Labelled {
    pub code: &'static str,
    pub label: &'static str,
}

pub fn kind_view(kind: RequestKind, locale: Locale) -> Labelled {
    let label = if locale == Locale::En {
        kind.label_en()
    } else {
        kind.label_zh()
    };
    Labelled {
        code: kind.as_str(),
        label,
    }
}

pub fn status_view(status: Status, locale: Locale) -> Labelled {
    let label = if locale == Locale::En {
        status.label_en()
    } else {
        status.label_zh()
    };
    Labelled {
        code: status.as_str(),
        label,
    }
}

/// The colour class of a status badge on the pages (portal and console).
pub fn status_class(status: Status) -> &'static str {
    match status {
        Status::Completed => "status-done",
        Status::Rejected | Status::Withdrawn | Status::Expired => "status-closed",
        Status::AwaitingVerification | Status::AwaitingSubject => "status-attention",
        _ => "status-open",
    }
}

pub fn reason_view(reason: RejectionReason, locale: Locale) -> Labelled {
    let label = if locale == Locale::En {
        reason.label_en()
    } else {
        reason.label_zh()
    };
    Labelled {
        code: reason.as_str(),
        label,
    }
}

#[derive(Debug, Serialize)]
pub struct WarningView {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct DueView {
    /// The last day, in the jurisdiction's local calendar.
    pub date: NaiveDate,
    /// The end of that day (23:59:59 local), as a UTC instant.
    pub ends_at: DateTime<Utc>,
    /// For example, a holiday calendar missing for a year the count ran through.
    pub warnings: Vec<WarningView>,
}

pub fn due_view(due: &Due, locale: Locale) -> DueView {
    let warnings = due
        .warnings
        .iter()
        .map(|w| WarningView {
            code: match w {
                ClockWarning::MissingCalendar { .. } => "missing_calendar",
            },
            message: if locale == Locale::En {
                w.to_string()
            } else {
                w.message_zh()
            },
        })
        .collect();
    DueView {
        date: due.date,
        ends_at: due.ends_at,
        warnings,
    }
}

/// What the subject sees of their request: no staff identities, no internal notes.
#[derive(Debug, Serialize)]
pub struct SubjectRequestView {
    pub reference: String,
    pub kind: Labelled,
    pub jurisdiction: &'static str,
    pub status: Labelled,
    pub received_at: DateTime<Utc>,
    pub due: Option<DueView>,
    pub rejection_reason: Option<Labelled>,
    pub timeline: Vec<SubjectEventView>,
    pub allowed_actions: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct SubjectEventView {
    pub at: DateTime<Utc>,
    pub event: String,
    pub status: Labelled,
    /// What the subject was told or said at this step: a question, an answer, a reason.
    pub message: Option<String>,
}

/// The events a subject is shown, and which detail field carries the words meant for them.
fn subject_facing(command: &str) -> Option<Option<&'static str>> {
    match command {
        "submit" | "verify" | "expire" | "withdraw" | "approve" => Some(None),
        "request_info" => Some(Some("question")),
        "subject_reply" => Some(Some("message")),
        "reject" => Some(Some("explanation")),
        "extend" => Some(Some("reason")),
        "complete" => Some(Some("summary")),
        _ => None,
    }
}

pub fn subject_view(
    r: &StoredRequest,
    events: &[(i64, Event)],
    allowed: Vec<&'static str>,
    locale: Locale,
) -> SubjectRequestView {
    let timeline = events
        .iter()
        .filter_map(|(_, e)| {
            let field = subject_facing(&e.command)?;
            // A first approval of two is internal; the subject hears when it is released.
            if e.command == "approve" && e.from == Some(e.to) {
                return None;
            }
            let message = field
                .and_then(|f| e.details.get(f))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Some(SubjectEventView {
                at: e.at,
                event: e.command.clone(),
                status: status_view(e.to, locale),
                message,
            })
        })
        .collect();
    SubjectRequestView {
        reference: r.reference.to_string(),
        kind: kind_view(r.state.kind, locale),
        jurisdiction: r.state.jurisdiction.as_str(),
        status: status_view(r.state.status, locale),
        received_at: r.state.received_at,
        due: r.state.due.as_ref().map(|d| due_view(d, locale)),
        rejection_reason: r.state.rejection.map(|x| reason_view(x, locale)),
        timeline,
        allowed_actions: allowed,
    }
}

#[derive(Debug, Serialize)]
pub struct ContactView {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StaffRequestView {
    pub id: String,
    pub reference: String,
    pub kind: Labelled,
    pub jurisdiction: &'static str,
    pub status: Labelled,
    pub locale: &'static str,
    pub channel: &'static str,
    pub subject: ContactView,
    pub details: Value,
    pub received_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub due: Option<DueView>,
    pub acknowledge_by: Option<DueView>,
    pub overdue: bool,
    pub extended_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<String>,
    pub first_approval_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub fulfilment_started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<Labelled>,
    /// The reference of an earlier open request of the same kind by the same subject.
    pub duplicate_of: Option<String>,
    /// How identity has been proved so far, and who acts for the subject.
    pub verified_methods: Vec<crate::domain::VerificationMethod>,
    pub representative: Option<crate::domain::Relationship>,
    pub platform_user_id: Option<String>,
    pub version: i64,
    pub allowed_actions: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<StaffEventView>>,
}

#[derive(Debug, Serialize)]
pub struct StaffEventView {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub command: String,
    pub actor: Actor,
    pub from: Option<Labelled>,
    pub to: Labelled,
    pub details: Value,
}

pub fn staff_view(
    r: &StoredRequest,
    allowed: Vec<&'static str>,
    events: Option<&[(i64, Event)]>,
    locale: Locale,
    now: DateTime<Utc>,
) -> StaffRequestView {
    let s = &r.state;
    StaffRequestView {
        id: r.id.clone(),
        reference: r.reference.to_string(),
        kind: kind_view(s.kind, locale),
        jurisdiction: s.jurisdiction.as_str(),
        status: status_view(s.status, locale),
        locale: r.locale.as_str(),
        channel: r.channel.as_str(),
        subject: ContactView {
            name: r.contact.name.clone(),
            email: r.contact.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: r.contact.phone.as_ref().map(|p| p.as_str().to_owned()),
        },
        details: r.details.clone(),
        received_at: s.received_at,
        verified_at: s.verified_at,
        due: s.due.as_ref().map(|d| due_view(d, locale)),
        acknowledge_by: s.acknowledge_by.as_ref().map(|d| due_view(d, locale)),
        overdue: !s.status.is_final() && s.due.as_ref().is_some_and(|d| d.ends_at < now),
        extended_at: s.extended_at,
        assignee_id: s.assignee.clone(),
        first_approval_by: s.first_approval_by.clone(),
        approved_at: s.approved_at,
        fulfilment_started_at: s.fulfilment_started_at,
        closed_at: s.closed_at,
        rejection_reason: s.rejection.map(|x| reason_view(x, locale)),
        duplicate_of: r.duplicate_of.clone(),
        verified_methods: s.verified_methods.clone(),
        representative: s.representative,
        platform_user_id: r.platform_user_id.clone(),
        version: s.version,
        allowed_actions: allowed,
        timeline: events.map(|events| {
            events
                .iter()
                .map(|(seq, e)| StaffEventView {
                    seq: *seq,
                    at: e.at,
                    command: e.command.clone(),
                    actor: e.actor.clone(),
                    from: e.from.map(|f| status_view(f, locale)),
                    to: status_view(e.to, locale),
                    details: e.details.clone(),
                })
                .collect()
        }),
    }
}

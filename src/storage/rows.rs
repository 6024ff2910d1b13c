//! Rows as diesel reads and writes them, and their conversion to and from domain values.
//! Text columns holding enums are parsed back through the enums' `FromStr`; a value that does
//! not parse is reported as corrupt data rather than guessed at.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::{request_events, requests};
use super::{fields, from_db_time, to_db_time, StoreError};
use crate::clock::{ClockWarning, Due};
use crate::domain::{
    Actor, Channel, Event, Locale, Reference, RequestState, Role, Status, SubjectContact,
    VerificationMethod,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = requests, treat_none_as_default_value = false)]
pub struct RequestRow {
    pub id: String,
    pub reference: String,
    pub kind: String,
    pub jurisdiction: String,
    pub status: String,
    pub locale: String,
    pub channel: String,
    pub subject_name: Option<String>,
    pub subject_email: Option<String>,
    pub subject_phone: Option<String>,
    pub details: String,
    pub received_at: NaiveDateTime,
    pub verified_at: Option<NaiveDateTime>,
    pub due_date: Option<NaiveDate>,
    pub due_at: Option<NaiveDateTime>,
    pub due_warnings: String,
    pub acknowledge_date: Option<NaiveDate>,
    pub acknowledge_at: Option<NaiveDateTime>,
    pub extended_at: Option<NaiveDateTime>,
    pub assignee_id: Option<String>,
    pub first_approval_by: Option<String>,
    pub approved_at: Option<NaiveDateTime>,
    pub fulfilment_started_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub rejection_reason: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub verified_methods: String,
    pub representative: Option<String>,
    pub platform_user_id: Option<String>,
    pub duplicate_of: Option<String>,
}

/// The columns the workflow changes; `None` writes NULL (an unassigned request has no
/// assignee), so every column is always set from the new state.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = requests, treat_none_as_null = true)]
pub struct StateChanges {
    pub status: String,
    pub verified_at: Option<NaiveDateTime>,
    pub due_date: Option<NaiveDate>,
    pub due_at: Option<NaiveDateTime>,
    pub due_warnings: String,
    pub acknowledge_date: Option<NaiveDate>,
    pub acknowledge_at: Option<NaiveDateTime>,
    pub extended_at: Option<NaiveDateTime>,
    pub assignee_id: Option<String>,
    pub first_approval_by: Option<String>,
    pub approved_at: Option<NaiveDateTime>,
    pub fulfilment_started_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub rejection_reason: Option<String>,
    pub version: i64,
    pub updated_at: NaiveDateTime,
    pub verified_methods: String,
}

/// Verification methods as stored: their names, comma-separated, in the order proved.
fn methods_text(methods: &[VerificationMethod]) -> String {
    methods
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl StateChanges {
    pub fn from_state(s: &RequestState, now: DateTime<Utc>) -> StateChanges {
        let time = |t: Option<DateTime<Utc>>| t.map(to_db_time);
        StateChanges {
            status: s.status.as_str().to_owned(),
            verified_at: time(s.verified_at),
            due_date: s.due.as_ref().map(|d| d.date),
            due_at: s.due.as_ref().map(|d| to_db_time(d.ends_at)),
            due_warnings: warnings_json(s.due.as_ref()),
            acknowledge_date: s.acknowledge_by.as_ref().map(|d| d.date),
            acknowledge_at: s.acknowledge_by.as_ref().map(|d| to_db_time(d.ends_at)),
            extended_at: time(s.extended_at),
            assignee_id: s.assignee.clone(),
            first_approval_by: s.first_approval_by.clone(),
            approved_at: time(s.approved_at),
            fulfilment_started_at: time(s.fulfilment_started_at),
            closed_at: time(s.closed_at),
            rejection_reason: s.rejection.map(|r| r.as_str().to_owned()),
            version: s.version,
            updated_at: to_db_time(now),
            verified_methods: methods_text(&s.verified_methods),
        }
    }
}

fn warnings_json(due: Option<&Due>) -> String {
    let warnings: &[ClockWarning] = due.map(|d| d.warnings.as_slice()).unwrap_or_default();
    serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into())
}

/// A request as stored: its workflow state plus what the workflow does not look at.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    pub id: String,
    pub reference: Reference,
    pub state: RequestState,
    pub locale: Locale,
    pub channel: Channel,
    pub contact: SubjectContact,
    pub details: serde_json::Value,
    /// The platform account the request is bound to, when it came signed by the platform.
    pub platform_user_id: Option<String>,
    /// Another open request of the same kind by the same subject, found at verification.
    pub duplicate_of: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(StoreError::corrupt)
}

impl TryFrom<RequestRow> for StoredRequest {
    type Error = StoreError;

    /// Opens the sealed columns (inside a database scope; see `fields`).
    fn try_from(row: RequestRow) -> Result<Self, StoreError> {
        let open = |column: &str, value: Option<&str>| fields::open_opt(column, &row.id, value);
        let name = open(NAME, row.subject_name.as_deref())?;
        let email = open(EMAIL, row.subject_email.as_deref())?;
        let phone = open(PHONE, row.subject_phone.as_deref())?;
        let details = fields::open(DETAILS, &row.id, &row.details)?;
        let warnings: Vec<ClockWarning> =
            serde_json::from_str(&row.due_warnings).map_err(StoreError::corrupt)?;
        let due = match (row.due_date, row.due_at) {
            (Some(date), Some(at)) => Some(Due {
                date,
                ends_at: from_db_time(at),
                warnings,
            }),
            _ => None,
        };
        let acknowledge_by = match (row.acknowledge_date, row.acknowledge_at) {
            (Some(date), Some(at)) => Some(Due {
                date,
                ends_at: from_db_time(at),
                warnings: vec![],
            }),
            _ => None,
        };
        let state = RequestState {
            kind: parse(&row.kind)?,
            jurisdiction: parse(&row.jurisdiction)?,
            status: parse(&row.status)?,
            received_at: from_db_time(row.received_at),
            verified_at: row.verified_at.map(from_db_time),
            due,
            acknowledge_by,
            extended_at: row.extended_at.map(from_db_time),
            assignee: row.assignee_id,
            first_approval_by: row.first_approval_by,
            approved_at: row.approved_at.map(from_db_time),
            fulfilment_started_at: row.fulfilment_started_at.map(from_db_time),
            closed_at: row.closed_at.map(from_db_time),
            rejection: row.rejection_reason.as_deref().map(parse).transpose()?,
            version: row.version,
            verified_methods: row
                .verified_methods
                .split(',')
                .filter(|m| !m.is_empty())
                .map(parse)
                .collect::<Result<_, _>>()?,
            representative: row.representative.as_deref().map(parse).transpose()?,
        };
        // An anonymised request (retention) has no contact left: the one case without a channel.
        let contact =
            if details == super::retention::ANONYMISED && email.is_none() && phone.is_none() {
                SubjectContact {
                    name,
                    email: None,
                    phone: None,
                }
            } else {
                SubjectContact::new(name.as_deref(), email.as_deref(), phone.as_deref())
                    .map_err(StoreError::corrupt)?
            };
        Ok(StoredRequest {
            id: row.id,
            reference: Reference::parse(&row.reference).map_err(StoreError::corrupt)?,
            state,
            locale: parse(&row.locale)?,
            channel: parse(&row.channel)?,
            contact,
            details: serde_json::from_str(&details).map_err(StoreError::corrupt)?,
            platform_user_id: row.platform_user_id,
            duplicate_of: row.duplicate_of,
            created_at: from_db_time(row.created_at),
            updated_at: from_db_time(row.updated_at),
        })
    }
}

/// The sealed columns of `requests`, as their values' places name them.
pub const NAME: &str = "requests.subject_name";
pub const EMAIL: &str = "requests.subject_email";
pub const PHONE: &str = "requests.subject_phone";
pub const DETAILS: &str = "requests.details";
pub const EVENT_DETAILS: &str = "request_events.details";

impl StoredRequest {
    /// The row to insert, personal data sealed (inside a database scope; see `fields`).
    pub fn to_row(&self) -> Result<RequestRow, StoreError> {
        let c = StateChanges::from_state(&self.state, self.updated_at);
        let email = self.contact.email.as_ref().map(|e| e.as_str());
        let phone = self.contact.phone.as_ref().map(|p| p.as_str());
        let id = self.id.as_str();
        Ok(RequestRow {
            id: self.id.clone(),
            reference: self.reference.as_str().to_owned(),
            kind: self.state.kind.as_str().to_owned(),
            jurisdiction: self.state.jurisdiction.as_str().to_owned(),
            status: c.status,
            locale: self.locale.as_str().to_owned(),
            channel: self.channel.as_str().to_owned(),
            subject_name: fields::seal_opt(NAME, id, self.contact.name.as_deref())?,
            subject_email: fields::seal_opt(EMAIL, id, email)?,
            subject_phone: fields::seal_opt(PHONE, id, phone)?,
            details: fields::seal(DETAILS, id, &self.details.to_string())?,
            received_at: to_db_time(self.state.received_at),
            verified_at: c.verified_at,
            due_date: c.due_date,
            due_at: c.due_at,
            due_warnings: c.due_warnings,
            acknowledge_date: c.acknowledge_date,
            acknowledge_at: c.acknowledge_at,
            extended_at: c.extended_at,
            assignee_id: c.assignee_id,
            first_approval_by: c.first_approval_by,
            approved_at: c.approved_at,
            fulfilment_started_at: c.fulfilment_started_at,
            closed_at: c.closed_at,
            rejection_reason: c.rejection_reason,
            version: c.version,
            created_at: to_db_time(self.created_at),
            updated_at: c.updated_at,
            verified_methods: c.verified_methods,
            representative: self.state.representative.map(|r| r.as_str().to_owned()),
            platform_user_id: self.platform_user_id.clone(),
            duplicate_of: self.duplicate_of.clone(),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = request_events, treat_none_as_default_value = false)]
pub struct EventRow {
    pub request_id: String,
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub command: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub details: String,
    /// The hash of the request's event before this one (the audit chain; see `audit.rs`).
    pub prev_hash: Option<String>,
    /// The hash of this event's content with `prev_hash`.
    pub hash: Option<String>,
}

impl EventRow {
    pub fn new(request_id: &str, seq: i64, event: &Event) -> EventRow {
        let (actor_id, actor_role) = match &event.actor {
            Actor::Staff { id, role } => (Some(id.clone()), Some(role.as_str().to_owned())),
            _ => (None, None),
        };
        EventRow {
            request_id: request_id.to_owned(),
            seq,
            at: to_db_time(event.at),
            actor_type: event.actor.kind_str().to_owned(),
            actor_id,
            actor_role,
            command: event.command.clone(),
            from_status: event.from.map(|s| s.as_str().to_owned()),
            to_status: event.to.as_str().to_owned(),
            details: event.details.to_string(),
            prev_hash: None,
            hash: None,
        }
    }

    /// Where this event's sealed details are bound to.
    pub fn place(&self) -> String {
        format!("{}:{}", self.request_id, self.seq)
    }

    /// The details as written, opened from their sealed form.
    pub fn open_details(&self) -> Result<String, StoreError> {
        fields::open(EVENT_DETAILS, &self.place(), &self.details)
    }

    /// The event with the sequence number it was stored under.
    pub fn into_event(self) -> Result<(i64, Event), StoreError> {
        let details = self.open_details()?;
        let actor = match (self.actor_type.as_str(), self.actor_id, self.actor_role) {
            ("subject", _, _) => Actor::Subject,
            ("system", _, _) => Actor::System,
            ("staff", Some(id), Some(role)) => Actor::Staff {
                id,
                role: parse::<Role>(&role)?,
            },
            (other, _, _) => return Err(StoreError::corrupt(format!("actor type {other}"))),
        };
        let event = Event {
            command: self.command,
            actor,
            at: from_db_time(self.at),
            from: self
                .from_status
                .as_deref()
                .map(parse::<Status>)
                .transpose()?,
            to: parse(&self.to_status)?,
            details: serde_json::from_str(&details).map_err(StoreError::corrupt)?,
        };
        Ok((self.seq, event))
    }
}

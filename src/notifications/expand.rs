//! Turning one `notify` row into deliveries: an email per recipient, an SMS where that is how
//! the subject is reached, and the in-site message. Rendering happens here, once, and the
//! rendered text is stored in the delivery rows, so a retry sends exactly the same message.
//! Everything is written in one transaction with marking the `notify` row done; delivery ids are
//! derived from it, so a second expansion (a worker whose lease ran out) cannot duplicate them.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::mail::EmailPayload;
use super::sms::SmsPayload;
use super::templates::Audience;
use super::{context, Notifier, NotifyError};
use crate::domain::{Event, Locale, Message, Recipient};
use crate::service::Services;
use crate::storage::inbox::{self, InboxMessage};
use crate::storage::outbox::{self, OutboxRow, EMAIL, SMS};
use crate::storage::staff::{self as staff_store, StaffRow};
use crate::storage::{requests, DbConnection, StoreError};

#[derive(Debug, Deserialize)]
pub struct NotifyPayload {
    pub to: Recipient,
    pub message: Message,
    pub locale: Locale,
    /// Values only the sender knows (a reminder's working days left).
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// The rows one notification becomes.
#[derive(Default)]
struct Deliveries {
    rows: Vec<OutboxRow>,
    inbox: Option<InboxMessage>,
}

fn delivery(
    parent: &OutboxRow,
    suffix: &str,
    kind: &str,
    payload: String,
    now: DateTime<Utc>,
) -> OutboxRow {
    let mut row = OutboxRow::new(
        format!("{}.{suffix}", parent.id),
        parent.request_id.as_deref(),
        kind,
        payload,
        now,
    );
    row.event_seq = parent.event_seq;
    row.parent_id = Some(parent.id.clone());
    row
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, NotifyError> {
    serde_json::to_string(value).map_err(|e| NotifyError::Payload(e.to_string()))
}

fn staff_locale(staff: &StaffRow) -> Locale {
    staff.locale.parse().unwrap_or_default()
}

pub fn expand(
    services: &Services,
    notifier: &Notifier,
    row: &OutboxRow,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<usize, NotifyError> {
    let payload: NotifyPayload =
        serde_json::from_str(&row.payload).map_err(|e| NotifyError::Payload(e.to_string()))?;
    let request_id = row
        .request_id
        .as_deref()
        .ok_or_else(|| NotifyError::Payload("notification without a request".into()))?;
    let mut conn = services.db().conn()?;
    let request = requests::find_by_id(&mut conn, request_id)?;
    let event = match row.event_seq {
        Some(seq) => requests::events(&mut conn, request_id)?
            .into_iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, e)| e),
        None => None,
    };
    let render = |locale: Locale| {
        context::build(
            &notifier.site,
            services.policy(),
            &request,
            locale,
            payload.message,
            event.as_ref(),
            &payload.extra,
        )
    };
    let message = payload.message.as_str();
    let mut out = Deliveries::default();
    match &payload.to {
        Recipient::Subject => {
            let locale = request.locale;
            let ctx = render(locale);
            let email =
                notifier
                    .templates
                    .render_email(locale, Audience::Subject, message, &ctx)?;
            if let Some(address) = &request.contact.email {
                let p = EmailPayload {
                    to: address.as_str().to_owned(),
                    locale: locale.as_str().into(),
                    message: message.into(),
                    content: email.clone(),
                };
                out.rows.push(delivery(row, "email", EMAIL, json(&p)?, now));
            }
            let by_sms =
                request.contact.email.is_none() || payload.message == Message::VerificationCode;
            if let (Some(phone), true) = (&request.contact.phone, by_sms) {
                let body = notifier.templates.render_sms(locale, message, &ctx)?;
                let p = SmsPayload {
                    to: phone.as_str().to_owned(),
                    body,
                    message: message.into(),
                };
                out.rows.push(delivery(row, "sms", SMS, json(&p)?, now));
            }
            // A code is a secret for the moment, not a record to keep in the portal.
            if payload.message != Message::VerificationCode {
                out.inbox = Some(InboxMessage {
                    id: row.id.clone(),
                    request_id: request.id.clone(),
                    message: message.into(),
                    locale: locale.as_str().into(),
                    subject: email.subject,
                    body: email.text,
                    // When it happened, not when the worker got to it: the inbox reads in order.
                    created_at: row.created_at,
                    read_at: None,
                });
            }
        }
        Recipient::Staff(id) => {
            let staff = staff_store::find_by_id(&mut conn, id)?.filter(|s| s.active);
            let recipients = match staff {
                Some(s) => vec![s],
                // The assignee left: whoever decides hears instead.
                None => deciders(&mut conn, event.as_ref())?,
            };
            staff_emails(notifier, row, &recipients, message, &render, now, &mut out)?;
        }
        Recipient::Reviewers => {
            let recipients = deciders(&mut conn, event.as_ref())?;
            staff_emails(notifier, row, &recipients, message, &render, now, &mut out)?;
        }
    }
    let count = out.rows.len() + usize::from(out.inbox.is_some());
    store(&mut conn, row, out, worker, payload.message, now)?;
    tracing::info!(outbox_id = %row.id, reference = %request.reference, message_name = message, deliveries = count, "notification expanded");
    Ok(count)
}

/// Reviewers and admins, less whoever caused the notification (the first approver is not asked
/// for the second approval).
fn deciders(conn: &mut DbConnection, event: Option<&Event>) -> Result<Vec<StaffRow>, StoreError> {
    let actor = event.and_then(|e| e.actor.staff_id());
    Ok(staff_store::active_deciders(conn)?
        .into_iter()
        .filter(|s| Some(s.id.as_str()) != actor)
        .collect())
}

fn staff_emails(
    notifier: &Notifier,
    row: &OutboxRow,
    recipients: &[StaffRow],
    message: &str,
    render: &dyn Fn(Locale) -> Value,
    now: DateTime<Utc>,
    out: &mut Deliveries,
) -> Result<(), NotifyError> {
    for staff in recipients {
        let locale = staff_locale(staff);
        let content =
            notifier
                .templates
                .render_email(locale, Audience::Staff, message, &render(locale))?;
        let p = EmailPayload {
            to: staff.email.clone(),
            locale: locale.as_str().into(),
            message: message.into(),
            content,
        };
        out.rows.push(delivery(
            row,
            &format!("email.{}", staff.id),
            EMAIL,
            json(&p)?,
            now,
        ));
    }
    Ok(())
}

fn store(
    conn: &mut DbConnection,
    parent: &OutboxRow,
    out: Deliveries,
    worker: &str,
    payload_message: Message,
    now: DateTime<Utc>,
) -> Result<(), NotifyError> {
    let result = crate::storage::db::write::<_, StoreError, _>(&mut *conn, |c| {
        for row in &out.rows {
            outbox::insert(c, row)?;
        }
        if let Some(message) = &out.inbox {
            inbox::insert(c, message)?;
        }
        outbox::mark_done(c, &parent.id, worker, now)?;
        // The code now sits in the delivery rows only (scrubbed when they are delivered).
        if payload_message == Message::VerificationCode {
            outbox::scrub_payload(c, &parent.id)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        // Another worker expanded it first (this one's lease ran out): its rows stand.
        Err(StoreError::Duplicate(_)) => {
            Ok(outbox::mark_done(conn, &parent.id, worker, now).map(|_| ())?)
        }
        Err(e) => Err(e.into()),
    }
}

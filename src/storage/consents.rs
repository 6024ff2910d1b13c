//! The consent ledger: append-only grants and withdrawals.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::outbox::{self, OutboxRow};
use super::schema::consent_events;
use super::{fields, DbConnection, StoreError};

/// The address an event was recorded for, sealed at rest.
const EMAIL: &str = "consent_events.email";

/// The outbox kind that tells the platform of a change.
pub const CONSENT_WEBHOOK: &str = "consent_webhook";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = consent_events)]
pub struct ConsentEvent {
    pub id: String,
    pub platform_user_id: Option<String>,
    pub email: Option<String>,
    pub purpose: String,
    pub granted: bool,
    pub source: String,
    pub request_id: Option<String>,
    pub at: NaiveDateTime,
}

/// Appends an event, and with `webhook` the outbox row that tells the platform, in one
/// transaction. An event whose id exists already (the same request recorded twice) changes
/// nothing: false.
pub fn record(
    conn: &mut DbConnection,
    event: &ConsentEvent,
    webhook: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sealed = ConsentEvent {
        email: fields::seal_opt(EMAIL, &event.id, event.email.as_deref())?,
        ..event.clone()
    };
    let done = super::db::write::<_, StoreError, _>(&mut *conn, |c| {
        diesel::insert_into(consent_events::table)
            .values(&sealed)
            .execute(c)
            .map_err(|e| super::requests::duplicate_as(e, "consent event"))?;
        if webhook {
            let payload = serde_json::json!({
                "event_id": event.id,
                "platform_user_id": event.platform_user_id,
                "email": event.email,
                "purpose": event.purpose,
                "granted": event.granted,
                "source": event.source,
                "at": super::from_db_time(event.at).to_rfc3339(),
            });
            let row = OutboxRow::new(
                uuid::Uuid::new_v4().to_string(),
                event.request_id.as_deref(),
                CONSENT_WEBHOOK,
                payload.to_string(),
                now,
            );
            outbox::insert(c, &row)?;
        }
        Ok(())
    });
    match done {
        Ok(()) => Ok(true),
        Err(StoreError::Duplicate(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every event of a platform account, oldest first.
pub fn history(
    conn: &mut DbConnection,
    platform_user_id: &str,
) -> Result<Vec<ConsentEvent>, StoreError> {
    consent_events::table
        .filter(consent_events::platform_user_id.eq(platform_user_id))
        .order((consent_events::at.asc(), consent_events::id.asc()))
        .select(ConsentEvent::as_select())
        .load(conn)?
        .into_iter()
        .map(|e: ConsentEvent| {
            Ok(ConsentEvent {
                email: fields::open_opt(EMAIL, &e.id, e.email.as_deref())?,
                ..e
            })
        })
        .collect()
}

//! The transactional outbox: effects that must happen after a state change, written with it.
//! Issue #3 adds the worker that delivers them; until then they wait here, none lost.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::schema::outbox;
use super::{to_db_time, DbConnection, StoreError};
use crate::domain::{Effect, Locale};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub request_id: Option<String>,
    pub event_seq: Option<i64>,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub run_after: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub last_error: Option<String>,
}

pub const PENDING: &str = "pending";

pub fn enqueue(
    conn: &mut DbConnection,
    request_id: &str,
    event_seq: i64,
    effects: &[Effect],
    locale: Locale,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let rows: Vec<OutboxRow> = effects
        .iter()
        .map(|effect| {
            let (kind, payload) = match effect {
                Effect::Notify { to, message } => (
                    "notify",
                    json!({ "to": to, "message": message, "locale": locale }),
                ),
                Effect::StartFulfilment => ("start_fulfilment", json!({})),
            };
            OutboxRow {
                id: uuid::Uuid::new_v4().to_string(),
                request_id: Some(request_id.to_owned()),
                event_seq: Some(event_seq),
                kind: kind.to_owned(),
                payload: payload.to_string(),
                status: PENDING.to_owned(),
                attempts: 0,
                run_after: to_db_time(at),
                created_at: to_db_time(at),
                last_error: None,
            }
        })
        .collect();
    // One statement per row: batch inserts are not available across both backends.
    for row in &rows {
        diesel::insert_into(outbox::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// The outbox rows one request produced, oldest first.
pub fn for_request(
    conn: &mut DbConnection,
    request_id: &str,
) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(outbox::table
        .filter(outbox::request_id.eq(request_id))
        .order((outbox::event_seq.asc(), outbox::created_at.asc()))
        .select(OutboxRow::as_select())
        .load(conn)?)
}

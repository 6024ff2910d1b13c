//! Deadline reminders to staff, each sent once per request, kind and due date.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::rows::{RequestRow, StoredRequest};
use super::schema::{reminders_sent, requests};
use super::{to_db_time, DbConnection, StoreError};

/// The reminder kind after which a request needs no more reminders for its due date.
pub const OVERDUE: &str = "overdue";

/// Open requests with a due date at or before `horizon`, soonest first, leaving out those whose
/// overdue reminder for this due date went out already (nothing more will be sent for them, and
/// a backlog of them must not crowd out requests that still need a reminder).
pub fn open_due_before(
    conn: &mut DbConnection,
    horizon: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<StoredRequest>, StoreError> {
    requests::table
        .filter(requests::closed_at.is_null())
        .filter(requests::due_at.le(to_db_time(horizon)))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            reminders_sent::table
                .filter(reminders_sent::request_id.eq(requests::id))
                .filter(reminders_sent::kind.eq(OVERDUE))
                .filter(reminders_sent::due_at.nullable().eq(requests::due_at)),
        )))
        .order(requests::due_at.asc())
        .limit(limit)
        .select(RequestRow::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredRequest::try_from)
        .collect()
}

/// Records that a reminder is being sent; false when it was recorded before (by this or
/// another instance), in which case the caller sends nothing.
pub fn record(
    conn: &mut DbConnection,
    request_id: &str,
    kind: &str,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = diesel::insert_into(reminders_sent::table)
        .values((
            reminders_sent::request_id.eq(request_id),
            reminders_sent::kind.eq(kind),
            reminders_sent::due_at.eq(to_db_time(due_at)),
            reminders_sent::sent_at.eq(to_db_time(now)),
        ))
        .execute(conn);
    match inserted.map_err(|e| super::requests::duplicate_as(e, "reminder")) {
        Ok(_) => Ok(true),
        Err(StoreError::Duplicate(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

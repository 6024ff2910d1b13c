//! Deadline reminders to staff, each sent once per request, kind and due date.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::db::MultiBackend;
use super::schema::{reminders_sent, requests};
use super::{to_db_time, DbConnection, StoreError};

/// The reminder kind after which a request needs no more reminders for its due date.
pub const OVERDUE: &str = "overdue";
/// The reminder kind sent once while a request is due within the configured working days.
pub const DUE_SOON: &str = "due_soon";

/// What a reminder needs of an open request with a due date: a narrow row, nothing sealed, so
/// that a sweep among a million open requests reads only an index range and these columns.
#[derive(Debug, Clone, Queryable)]
pub struct DueRow {
    pub id: String,
    pub jurisdiction: String,
    pub locale: String,
    pub assignee_id: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub due_at: Option<NaiveDateTime>,
}

/// Open requests that still need a reminder at `now`, soonest due first: overdue ones, and
/// those due at or before their jurisdiction's cutoff (`cutoffs`: jurisdiction → the last
/// instant that counts as "due soon"; a jurisdiction left out gets only overdue reminders).
/// Those whose reminder for this due date went out already are left out in the query (an
/// overdue one once its overdue reminder was sent; one not yet overdue once its due-soon
/// reminder was), so a backlog of reminded requests costs an index lookup each, not a write
/// attempt, and neither they nor another jurisdiction's later cutoff can crowd a `limit` out.
/// `limit` None: all of them.
pub fn open_due_unreminded(
    conn: &mut DbConnection,
    cutoffs: &[(&str, DateTime<Utc>)],
    now: DateTime<Utc>,
    limit: Option<i64>,
) -> Result<Vec<DueRow>, StoreError> {
    use diesel::sql_types::{Bool, Nullable};
    let now_db = to_db_time(now);
    let horizon = cutoffs.iter().map(|(_, t)| *t).fold(now, DateTime::max);
    let mut needs: Box<
        dyn BoxableExpression<requests::table, MultiBackend, SqlType = Nullable<Bool>>,
    > = Box::new(requests::due_at.lt(now_db));
    for (jurisdiction, cutoff) in cutoffs {
        needs = Box::new(
            needs.or(requests::jurisdiction
                .eq(jurisdiction.to_string())
                .and(requests::due_at.le(to_db_time(*cutoff)))),
        );
    }
    let reminded = reminders_sent::kind.eq(OVERDUE).or(reminders_sent::kind
        .eq(DUE_SOON)
        .and(requests::due_at.ge(now_db)));
    let mut q = requests::table
        .filter(super::requests::open_condition())
        // The range the index is read in; `needs` then picks by jurisdiction.
        .filter(requests::due_at.le(to_db_time(horizon)))
        .filter(needs)
        .filter(diesel::dsl::not(diesel::dsl::exists(
            reminders_sent::table
                .filter(reminders_sent::request_id.eq(requests::id))
                .filter(reminders_sent::due_at.nullable().eq(requests::due_at))
                .filter(reminded),
        )))
        .order(requests::due_at.asc())
        .select((
            requests::id,
            requests::jurisdiction,
            requests::locale,
            requests::assignee_id,
            requests::due_date,
            requests::due_at,
        ))
        .into_boxed();
    if let Some(limit) = limit {
        q = q.limit(limit);
    }
    Ok(q.load(conn)?)
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

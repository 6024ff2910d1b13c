//! The figures behind the console's dashboard: grouped counts in the database, and the few
//! timestamps the medians and the weekly chart need.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;

use super::schema::requests;
use super::{to_db_time, DbConnection, StoreError};
use crate::domain::Status;

fn ended() -> Vec<&'static str> {
    Status::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| s.as_str())
        .collect()
}

/// Open requests counted by (status, kind).
pub fn open_by_status_and_kind(
    conn: &mut DbConnection,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(requests::table
        .filter(requests::status.ne_all(ended()))
        .group_by((requests::status, requests::kind))
        .select((requests::status, requests::kind, count_star()))
        .load(conn)?)
}

/// Open requests due in `[from, to)`, or before `to` when `from` is None (overdue).
pub fn open_due_between(
    conn: &mut DbConnection,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let mut q = requests::table
        .filter(requests::status.ne_all(ended()))
        .filter(requests::due_at.lt(to_db_time(to)))
        .into_boxed();
    if let Some(from) = from {
        q = q.filter(requests::due_at.ge(to_db_time(from)));
    }
    Ok(q.count().get_result(conn)?)
}

/// Requests that ended by an answer (completed or rejected) in `[from, to)`: kind, received,
/// closed, due.
pub type Closed = (
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

pub fn answered_between(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Closed>, StoreError> {
    Ok(requests::table
        .filter(requests::status.eq_any([Status::Completed.as_str(), Status::Rejected.as_str()]))
        .filter(requests::closed_at.ge(to_db_time(from)))
        .filter(requests::closed_at.lt(to_db_time(to)))
        .select((
            requests::kind,
            requests::received_at,
            requests::closed_at,
            requests::due_at,
        ))
        .load(conn)?)
}

/// When each request received in `[from, to)` arrived (for the weekly chart).
pub fn received_between(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<NaiveDateTime>, StoreError> {
    Ok(requests::table
        .filter(requests::received_at.ge(to_db_time(from)))
        .filter(requests::received_at.lt(to_db_time(to)))
        .select(requests::received_at)
        .load(conn)?)
}

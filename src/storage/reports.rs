//! The figures behind the console's dashboard: grouped counts in the database, and the few
//! timestamps the medians and the weekly chart need.

use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;

use super::requests::open_condition;
use super::schema::requests;
use super::{to_db_time, DbConnection, StoreError};

/// Open requests counted by (status, kind).
pub fn open_by_status_and_kind(
    conn: &mut DbConnection,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(requests::table
        .filter(open_condition())
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
        .filter(open_condition())
        .filter(requests::due_at.lt(to_db_time(to)))
        .into_boxed();
    if let Some(from) = from {
        q = q.filter(requests::due_at.ge(to_db_time(from)));
    }
    Ok(q.count().get_result(conn)?)
}

/// Requests answered (completed or rejected) in `[from, to)`, grouped by kind and by whole
/// hours from receipt to the answer: how many, how many had a due date, how many were
/// answered by it. Counted in the database: the medians need the distribution, not the rows.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct AnsweredBucket {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub hours: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub with_due: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub on_time: i64,
}

pub fn answered_between(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<AnsweredBucket>, StoreError> {
    use diesel::sql_types::Timestamp;
    // The status condition is written as the partial index `requests_answered` states it.
    const COUNTS: &str = "COUNT(*) AS n, \
        SUM(CASE WHEN due_at IS NOT NULL THEN 1 ELSE 0 END) AS with_due, \
        SUM(CASE WHEN due_at IS NOT NULL AND closed_at <= due_at THEN 1 ELSE 0 END) AS on_time";
    Ok(match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(format!(
            "SELECT kind, CAST((julianday(closed_at) - julianday(received_at)) * 24 AS INTEGER) AS hours, {COUNTS} \
             FROM requests WHERE status IN ('completed', 'rejected') AND closed_at >= ? AND closed_at < ? \
             GROUP BY kind, hours"
        ))
        .bind::<Timestamp, _>(to_db_time(from))
        .bind::<Timestamp, _>(to_db_time(to))
        .load(c)?,
        // COUNT and SUM of integers are BIGINT in PostgreSQL; `extract` gives numeric.
        DbConnection::Postgres(c) => diesel::sql_query(format!(
            "SELECT kind, CAST(floor(extract(epoch FROM closed_at - received_at) / 3600) AS BIGINT) AS hours, {COUNTS} \
             FROM requests WHERE status IN ('completed', 'rejected') AND closed_at >= $1 AND closed_at < $2 \
             GROUP BY kind, hours"
        ))
        .bind::<Timestamp, _>(to_db_time(from))
        .bind::<Timestamp, _>(to_db_time(to))
        .load(c)?,
    })
}

/// How many requests were received in each of the given `[start, end)` windows (the weeks of
/// the dashboard's chart, in the viewer's zone). One count a window: each is a short range
/// read of the `requests_received` index.
pub fn received_in_windows(
    conn: &mut DbConnection,
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Result<Vec<i64>, StoreError> {
    windows
        .iter()
        .map(|(start, end)| {
            Ok(requests::table
                .filter(requests::received_at.ge(to_db_time(*start)))
                .filter(requests::received_at.lt(to_db_time(*end)))
                .count()
                .get_result(conn)?)
        })
        .collect()
}

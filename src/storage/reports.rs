//! The figures behind the console's dashboard: grouped counts in the database, and the few
//! timestamps the medians and the weekly chart need.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::requests::open_condition;
use super::schema::requests;
use super::{to_db_time, DbConnection, StoreError};

/// Open requests counted by (status, kind), from the kept tallies.
pub fn open_by_status_and_kind(
    conn: &mut DbConnection,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    let mut counts = std::collections::BTreeMap::<(String, String), i64>::new();
    for t in super::tallies::open(conn)? {
        *counts.entry((t.status, t.kind)).or_default() += t.n;
    }
    Ok(counts.into_iter().map(|((s, k), n)| (s, k, n)).collect())
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
    Ok(answered_grouped(conn, from, to, false)?
        .into_iter()
        .map(|r| r.bucket)
        .collect())
}

/// As `answered_between`, each bucket with its UTC day (`2026-11-29`): what
/// `report_days` keeps for a final day.
pub fn answered_by_day(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, AnsweredBucket)>, StoreError> {
    Ok(answered_grouped(conn, from, to, true)?
        .into_iter()
        .map(|r| (r.day, r.bucket))
        .collect())
}

#[derive(QueryableByName)]
struct DayBucket {
    #[diesel(sql_type = diesel::sql_types::Text)]
    day: String,
    #[diesel(embed)]
    bucket: AnsweredBucket,
}

fn answered_grouped(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by_day: bool,
) -> Result<Vec<DayBucket>, StoreError> {
    use diesel::sql_types::Timestamp;
    // The status condition is written as the partial index `requests_answered` states it.
    const COUNTS: &str = "COUNT(*) AS n, \
        SUM(CASE WHEN due_at IS NOT NULL THEN 1 ELSE 0 END) AS with_due, \
        SUM(CASE WHEN due_at IS NOT NULL AND closed_at <= due_at THEN 1 ELSE 0 END) AS on_time";
    let group = if by_day {
        "1, kind, hours"
    } else {
        "kind, hours"
    };
    Ok(match conn {
        DbConnection::Sqlite(c) => {
            // Timestamps are text here: `2026-11-29 08:30:00.123`.
            let day = if by_day {
                "substr(closed_at, 1, 10)"
            } else {
                "''"
            };
            diesel::sql_query(format!(
                "SELECT {day} AS day, kind, CAST((julianday(closed_at) - julianday(received_at)) * 24 AS INTEGER) AS hours, {COUNTS} \
                 FROM requests WHERE status IN ('completed', 'rejected') AND closed_at >= ? AND closed_at < ? \
                 GROUP BY {group}"
            ))
            .bind::<Timestamp, _>(to_db_time(from))
            .bind::<Timestamp, _>(to_db_time(to))
            .load(c)?
        }
        // COUNT and SUM of integers are BIGINT in PostgreSQL; `extract` gives numeric.
        DbConnection::Postgres(c) => {
            let day = if by_day {
                "to_char(closed_at, 'YYYY-MM-DD')"
            } else {
                "''"
            };
            diesel::sql_query(format!(
                "SELECT {day} AS day, kind, CAST(floor(extract(epoch FROM closed_at - received_at) / 3600) AS BIGINT) AS hours, {COUNTS} \
                 FROM requests WHERE status IN ('completed', 'rejected') AND closed_at >= $1 AND closed_at < $2 \
                 GROUP BY {group}"
            ))
            .bind::<Timestamp, _>(to_db_time(from))
            .bind::<Timestamp, _>(to_db_time(to))
            .load(c)?
        }
    })
}

/// Requests received in `[from, to)`: a short range read of the `requests_received` index.
pub fn received_between(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(requests::table
        .filter(requests::received_at.ge(to_db_time(from)))
        .filter(requests::received_at.lt(to_db_time(to)))
        .count()
        .get_result(conn)?)
}

#[derive(QueryableByName)]
struct HourCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    hour: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Requests received in `[from, to)` counted by UTC hour (the hours with any).
pub fn received_by_hour(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>, StoreError> {
    use diesel::sql_types::Timestamp;
    let rows: Vec<HourCount> = match conn {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT substr(received_at, 1, 13) AS hour, COUNT(*) AS n FROM requests \
             WHERE received_at >= ? AND received_at < ? GROUP BY hour",
        )
        .bind::<Timestamp, _>(to_db_time(from))
        .bind::<Timestamp, _>(to_db_time(to))
        .load(c)?,
        DbConnection::Postgres(c) => diesel::sql_query(
            "SELECT to_char(received_at, 'YYYY-MM-DD HH24') AS hour, COUNT(*) AS n FROM requests \
             WHERE received_at >= $1 AND received_at < $2 GROUP BY 1",
        )
        .bind::<Timestamp, _>(to_db_time(from))
        .bind::<Timestamp, _>(to_db_time(to))
        .load(c)?,
    };
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let t =
                chrono::NaiveDateTime::parse_from_str(&format!("{}:00", r.hour), "%Y-%m-%d %H:%M")
                    .ok()?;
            Some((t.and_utc(), r.n))
        })
        .collect())
}

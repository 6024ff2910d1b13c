//! How many requests there are per status, kind and whether their clock has started, and how
//! many open requests fall due on each UTC day: kept by triggers in the same transaction as
//! every change to a request (migrations 000019 and 000021), so the console reads a few hundred
//! rows instead of counting the open requests. Each count is split over 16 shards (see the
//! migrations); these functions sum them.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::schema::request_tallies;
use super::{DbConnection, StoreError};
use crate::domain::Status;

/// One (status, kind, dated) count, summed over its shards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tally {
    pub status: String,
    pub kind: String,
    /// Whether the requests' clock has started (they have a due date).
    pub dated: bool,
    pub n: i64,
}

/// What a tally row is read as (the shard is summed away).
const COLUMNS: (
    request_tallies::status,
    request_tallies::kind,
    request_tallies::dated,
    request_tallies::n,
) = (
    request_tallies::status,
    request_tallies::kind,
    request_tallies::dated,
    request_tallies::n,
);

/// The tallies of the open statuses, summed over shards, without zero counts.
pub fn open(conn: &mut DbConnection) -> Result<Vec<Tally>, StoreError> {
    let open: Vec<&str> = Status::ALL
        .iter()
        .filter(|s| !s.is_final())
        .map(|s| s.as_str())
        .collect();
    let rows = request_tallies::table
        .filter(request_tallies::status.eq_any(open))
        .select(COLUMNS)
        .load(conn)?;
    Ok(summed(rows))
}

/// Every tally, ended statuses too (for checking them against a count).
pub fn all(conn: &mut DbConnection) -> Result<Vec<Tally>, StoreError> {
    let rows = request_tallies::table.select(COLUMNS).load(conn)?;
    Ok(summed(rows))
}

fn summed(rows: Vec<(String, String, i16, i64)>) -> Vec<Tally> {
    let mut sums = BTreeMap::<(String, String, bool), i64>::new();
    for (status, kind, dated, n) in rows {
        *sums.entry((status, kind, dated != 0)).or_default() += n;
    }
    sums.into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|((status, kind, dated), n)| Tally {
            status,
            kind,
            dated,
            n,
        })
        .collect()
}

/// The same figures counted from the requests themselves (slow on a large table): what the
/// tallies must always equal.
pub fn counted(conn: &mut DbConnection) -> Result<Vec<Tally>, StoreError> {
    use super::schema::requests;
    use diesel::dsl::count_star;
    let group = (requests::status, requests::kind);
    let counted = (requests::status, requests::kind, count_star());
    let dated: Vec<(String, String, i64)> = requests::table
        .filter(requests::due_at.is_not_null())
        .group_by(group)
        .select(counted)
        .load(conn)?;
    let undated: Vec<(String, String, i64)> = requests::table
        .filter(requests::due_at.is_null())
        .group_by(group)
        .select(counted)
        .load(conn)?;
    let rows = dated
        .into_iter()
        .map(|(s, k, n)| (s, k, 1, n))
        .chain(undated.into_iter().map(|(s, k, n)| (s, k, 0, n)))
        .collect();
    Ok(summed(rows))
}

/// Open requests past due at `now`: the kept counts of the UTC days before today, and today's
/// own requests counted live (those due earlier today than `now`).
pub fn overdue(
    conn: &mut DbConnection,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<i64, StoreError> {
    use super::schema::due_tallies;
    let today = now.date_naive();
    let before_today: Vec<i64> = due_tallies::table
        .filter(due_tallies::due_day.lt(today.to_string()))
        .select(due_tallies::n)
        .load(conn)?;
    let midnight = today.and_time(chrono::NaiveTime::MIN).and_utc();
    let earlier_today = super::reports::open_due_between(conn, Some(midnight), now)?;
    Ok(before_today.into_iter().sum::<i64>() + earlier_today)
}

/// Open requests by UTC due day (`2026-11-30`).
pub type DayCounts = BTreeMap<String, i64>;

/// The kept counts of open requests by UTC due day (summed over shards, without zeros), and the
/// same counted from the requests themselves: what the first must always equal.
pub fn due_days(conn: &mut DbConnection) -> Result<(DayCounts, DayCounts), StoreError> {
    use super::schema::{due_tallies, requests};
    let mut kept = BTreeMap::<String, i64>::new();
    let rows: Vec<(String, i64)> = due_tallies::table
        .select((due_tallies::due_day, due_tallies::n))
        .load(conn)?;
    for (day, n) in rows {
        *kept.entry(day).or_default() += n;
    }
    kept.retain(|_, n| *n != 0);
    let due: Vec<Option<chrono::NaiveDateTime>> = requests::table
        .filter(super::requests::open_condition())
        .filter(requests::due_at.is_not_null())
        .select(requests::due_at)
        .load(conn)?;
    let mut counted = BTreeMap::<String, i64>::new();
    for at in due.into_iter().flatten() {
        *counted.entry(at.date().to_string()).or_default() += 1;
    }
    Ok((kept, counted))
}

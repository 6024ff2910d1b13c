//! How many requests there are per status, kind and whether their clock has started: kept by
//! triggers in the same transaction as every change to a request (migration 000019), so the
//! console reads a few hundred rows instead of counting the open requests. Each count is split
//! over 16 shards (see the migration); these functions sum them.

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
    let mut sums = std::collections::BTreeMap::<(String, String, bool), i64>::new();
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

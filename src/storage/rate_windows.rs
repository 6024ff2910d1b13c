//! Rate-limit counters shared by every instance on the database: one row per limiter, key
//! (an HMAC, see `Vault::rate_key`) and fixed one-minute window (migration 000020).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::rate_windows;
use super::{DbConnection, StoreError};

/// Counts one hit in the window starting at `window_start` (Unix seconds) and returns the hits
/// in it so far, this one included. One statement: concurrent hits on several instances each
/// count once.
pub fn hit(
    conn: &mut DbConnection,
    limiter: &str,
    key_digest: &str,
    window_start: i64,
) -> Result<i64, StoreError> {
    // One statement, the same on both backends (diesel's on_conflict is not offered for the
    // multi-backend connection); RETURNING gives this hit's count.
    let counted: Hits = super::db::write(conn, |c| {
        diesel::sql_query(
            "INSERT INTO rate_windows (limiter, key_digest, window_start, hits) \
             VALUES ($1, $2, $3, 1) ON CONFLICT (limiter, key_digest, window_start) \
             DO UPDATE SET hits = rate_windows.hits + 1 RETURNING hits",
        )
        .bind::<Text, _>(limiter)
        .bind::<Text, _>(key_digest)
        .bind::<BigInt, _>(window_start)
        .get_result(c)
    })?;
    Ok(counted.hits)
}

#[derive(QueryableByName)]
struct Hits {
    #[diesel(sql_type = BigInt)]
    hits: i64,
}

/// Deletes windows that started before `before` (Unix seconds); returns how many.
pub fn forget_before(conn: &mut DbConnection, before: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(rate_windows::table.filter(rate_windows::window_start.lt(before)))
            .execute(conn)?,
    )
}

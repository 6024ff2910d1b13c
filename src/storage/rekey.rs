//! Key rotation: `rightsflow keys rotate` seals every stored value that is not under the
//! current data key (values under a key it replaced, and values from before encryption) with
//! the current one, and writes the blind indexes older requests lack.
//!
//! It works in batches, each in a transaction of its own, while the service runs: a value is
//! replaced only if it is still what was read (a concurrent writer seals with the current key
//! anyway), and a run stopped halfway is resumed by running it again: what is done is not
//! done twice, since only values outside the current key are read.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::db::MultiBackend;
use super::rows::EVENT_DETAILS;
use super::schema::{request_results, result_chunks};
use super::{fields, Database, DbConnection, StoreError};
use crate::auth::sealing::chunk_place;

/// A sealed column: its table, the columns that name a row (a second one for events), and
/// the place its values are bound to.
struct Column {
    table: &'static str,
    key: &'static str,
    /// The second key column (events: `seq`), or a constant for one-key tables.
    key2: &'static str,
    column: &'static str,
    place: &'static str,
}

const fn one(table: &'static str, column: &'static str, place: &'static str) -> Column {
    Column {
        table,
        key: "id",
        key2: "CAST(0 AS BIGINT)",
        column,
        place,
    }
}

/// Every sealed column (the places the storage modules seal them under).
const COLUMNS: [Column; 11] = [
    one("requests", "subject_name", "requests.subject_name"),
    one("requests", "subject_email", "requests.subject_email"),
    one("requests", "subject_phone", "requests.subject_phone"),
    one("requests", "details", "requests.details"),
    Column {
        table: "request_events",
        key: "request_id",
        key2: "seq",
        column: "details",
        place: EVENT_DETAILS,
    },
    one("outbox", "payload", "outbox.payload"),
    one("outbox", "last_error", "outbox.last_error"),
    one("inbox_messages", "subject", "inbox_messages.subject"),
    one("inbox_messages", "body", "inbox_messages.body"),
    one("fulfilment_tasks", "result", "fulfilment_tasks.result"),
    one("consent_events", "email", "consent_events.email"),
];

/// The staff second factor's secret is sealed too.
const TOTP: Column = one("staff_users", "totp_secret", "staff_users.totp_secret");

#[derive(QueryableByName)]
struct Stale {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    k2: i64,
    #[diesel(sql_type = Text)]
    v: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What a run did and what is left.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Values sealed again under the current key.
    pub values: usize,
    /// Results whose chunks were sealed again.
    pub results: usize,
    /// Older requests given their blind indexes.
    pub lookups: usize,
    /// Values and results still outside the current key (0 when the run finished).
    pub remaining: i64,
}

impl Column {
    fn row(&self, k: &str, k2: i64) -> String {
        if self.key2 == "seq" {
            format!("{k}:{k2}")
        } else {
            k.to_owned()
        }
    }

    fn stale_condition(&self) -> String {
        format!("{c} IS NOT NULL AND {c} NOT LIKE $1", c = self.column)
    }

    /// Up to `limit` values after (`k`, `k2`) not under the current key.
    fn stale(
        &self,
        c: &mut DbConnection,
        prefix: &str,
        after: &(String, i64),
        limit: i64,
    ) -> Result<Vec<Stale>, StoreError> {
        let sql = format!(
            "SELECT {key} AS k, {key2} AS k2, {col} AS v FROM {table} WHERE {cond} \
             AND ({key} > $2 OR ({key} = $2 AND {key2} > $3)) ORDER BY {key}, {key2} LIMIT $4",
            key = self.key,
            key2 = self.key2,
            col = self.column,
            table = self.table,
            cond = self.stale_condition(),
        );
        Ok(diesel::sql_query(sql)
            .bind::<Text, _>(format!("{prefix}%"))
            .bind::<Text, _>(&after.0)
            .bind::<BigInt, _>(after.1)
            .bind::<BigInt, _>(limit)
            .load(c)?)
    }

    fn count_stale(&self, c: &mut DbConnection, prefix: &str) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {} WHERE {}",
            self.table,
            self.stale_condition()
        );
        let n: Count = diesel::sql_query(sql)
            .bind::<Text, _>(format!("{prefix}%"))
            .get_result(c)?;
        Ok(n.n)
    }

    /// Seals one value again, if it is still what was read: true when replaced.
    fn reseal(&self, c: &mut DbConnection, stale: &Stale) -> Result<bool, StoreError> {
        let row = self.row(&stale.k, stale.k2);
        let plain = fields::open(self.place, &row, &stale.v)?;
        let sealed = fields::seal(self.place, &row, &plain)?;
        let sql = format!(
            "UPDATE {table} SET {col} = $1 WHERE {key} = $2 AND {key2} = $3 AND {col} = $4",
            table = self.table,
            col = self.column,
            key = self.key,
            key2 = self.key2,
        );
        Ok(diesel::sql_query(sql)
            .bind::<Text, _>(sealed)
            .bind::<Text, _>(&stale.k)
            .bind::<BigInt, _>(stale.k2)
            .bind::<Text, _>(&stale.v)
            .execute(c)?
            == 1)
    }
}

/// How many values and results are not under the current key.
pub fn remaining(db: &Database) -> Result<i64, StoreError> {
    let mut conn = db.conn()?;
    let prefix = db.vault().current_prefix();
    let mut n = 0;
    for column in COLUMNS.iter().chain([&TOTP]) {
        n += column.count_stale(&mut conn, &prefix)?;
    }
    let results: i64 = results_outside(db.vault().current().id())
        .count()
        .get_result(&mut *conn)?;
    Ok(n + results)
}

/// Live sealed results not under the `current` key.
fn results_outside(current: &str) -> request_results::BoxedQuery<'static, MultiBackend> {
    request_results::table
        .filter(request_results::blob_id.is_not_null())
        .filter(request_results::purged_at.is_null())
        .filter(request_results::key_id.ne(current.to_owned()))
        .into_boxed()
}

fn stale_results(
    c: &mut DbConnection,
    current: &str,
    limit: i64,
) -> Result<Vec<(String, String, String, i32)>, StoreError> {
    let rows: Vec<(String, Option<String>, Option<String>, i32)> = results_outside(current)
        .order(request_results::id.asc())
        .limit(limit)
        .select((
            request_results::id,
            request_results::blob_id,
            request_results::key_id,
            request_results::chunks,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, blob, key, chunks)| Some((id, blob?, key?, chunks)))
        .collect())
}

/// Seals a result's chunks again under the current key, in one transaction (the chunks and
/// the result's key id change together, so a download reads one key or the other).
fn reseal_result(
    db: &Database,
    (id, blob, key_id, chunks): &(String, String, String, i32),
) -> Result<(), StoreError> {
    let vault = db.vault();
    let old = vault.key(key_id).ok_or_else(|| {
        StoreError::corrupt(format!("result {id}: key {key_id} is not configured"))
    })?;
    let new = vault.current();
    let mut conn = db.conn()?;
    super::db::write(&mut conn, |c| {
        for seq in 0..*chunks {
            let plain = super::blobs::read_chunk(c, old, blob, seq, *chunks)?;
            let place = chunk_place(blob, i64::from(seq), seq + 1 == *chunks);
            diesel::update(
                result_chunks::table
                    .filter(result_chunks::blob_id.eq(blob))
                    .filter(result_chunks::seq.eq(seq)),
            )
            .set(result_chunks::bytes.eq(new.seal(&place, &plain)))
            .execute(c)?;
        }
        diesel::update(request_results::table.filter(request_results::id.eq(id)))
            .set(request_results::key_id.eq(Some(new.id())))
            .execute(c)?;
        Ok(())
    })
}

#[derive(QueryableByName)]
struct Unindexed {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Requests with an email or phone but no blind index (written before indexes existed).
fn unindexed(c: &mut DbConnection, after: &str, limit: i64) -> Result<Vec<String>, StoreError> {
    let rows: Vec<Unindexed> = diesel::sql_query(
        "SELECT r.id AS id FROM requests r WHERE r.id > $1 \
         AND (r.subject_email IS NOT NULL OR r.subject_phone IS NOT NULL) \
         AND NOT EXISTS (SELECT 1 FROM subject_lookups l WHERE l.request_id = r.id) \
         ORDER BY r.id LIMIT $2",
    )
    .bind::<Text, _>(after)
    .bind::<BigInt, _>(limit)
    .load(c)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Rotates in batches of `batch` rows; with `max_batches`, stops after that many (a run can
/// be spread out, or stopped and resumed). `progress` hears after each batch.
pub fn rotate(
    db: &Database,
    batch: i64,
    max_batches: Option<usize>,
    mut progress: impl FnMut(&Rotated),
) -> Result<Rotated, StoreError> {
    let batch = batch.max(1);
    let prefix = db.vault().current_prefix();
    let mut done = Rotated::default();
    let mut batches = 0usize;
    // Counts a batch; false once the budget is spent.
    let budget = |batches: &mut usize| {
        *batches += 1;
        max_batches.is_none_or(|m| *batches <= m)
    };
    'columns: for column in COLUMNS.iter().chain([&TOTP]) {
        let mut after = (String::new(), i64::MIN);
        loop {
            if !budget(&mut batches) {
                break 'columns;
            }
            let mut conn = db.conn()?;
            let resealed = super::db::write(&mut conn, |c| {
                let stale = column.stale(c, &prefix, &after, batch)?;
                let mut n = 0;
                for s in &stale {
                    n += usize::from(column.reseal(c, s)?);
                }
                if let Some(last) = stale.last() {
                    after = (last.k.clone(), last.k2);
                }
                Ok::<_, StoreError>((n, stale.len()))
            })?;
            done.values += resealed.0;
            progress(&done);
            if (resealed.1 as i64) < batch {
                break;
            }
        }
    }
    let mut after = String::new();
    while budget(&mut batches) {
        let mut conn = db.conn()?;
        let ids = super::db::write(&mut conn, |c| {
            let ids = unindexed(c, &after, batch)?;
            for id in &ids {
                let request = super::requests::find_by_id(c, id)?;
                super::requests::write_lookups(c, &request)?;
            }
            Ok::<_, StoreError>(ids)
        })?;
        done.lookups += ids.len();
        progress(&done);
        match ids.last() {
            Some(last) if ids.len() as i64 == batch => after = last.clone(),
            _ => break,
        }
    }
    while budget(&mut batches) {
        let current = db.vault().current().id().to_owned();
        let results = stale_results(&mut *db.conn()?, &current, batch)?;
        for r in &results {
            reseal_result(db, r)?;
        }
        done.results += results.len();
        progress(&done);
        if (results.len() as i64) < batch {
            break;
        }
    }
    done.remaining = remaining(db)?;
    Ok(done)
}

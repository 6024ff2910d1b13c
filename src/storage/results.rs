//! Results handed to the subject: an access report or a portability package, with its
//! download count. The bytes are a sealed blob (`blobs.rs`); `body` holds only what rows
//! written before sealing existed kept in the clear.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{request_results, result_chunks};
use super::{DbConnection, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = request_results)]
pub struct StoredResult {
    pub id: String,
    pub request_id: String,
    pub file_name: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub size: i64,
    pub sha256: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub downloads: i32,
    pub last_downloaded_at: Option<NaiveDateTime>,
    pub blob_id: Option<String>,
    pub key_id: Option<String>,
    pub chunks: i32,
    pub purged_at: Option<NaiveDateTime>,
}

/// What the pages show of a result: everything but the body.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = request_results)]
pub struct ResultMeta {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub downloads: i32,
}

pub fn insert(conn: &mut DbConnection, result: &StoredResult) -> Result<(), StoreError> {
    diesel::insert_into(request_results::table)
        .values(result)
        .execute(conn)
        .map_err(|e| super::requests::duplicate_as(e, "result"))?;
    Ok(())
}

/// The request's results still downloadable at `now`, newest first.
pub fn live_for_request(
    conn: &mut DbConnection,
    request_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<ResultMeta>, StoreError> {
    Ok(request_results::table
        .filter(request_results::request_id.eq(request_id))
        .filter(request_results::expires_at.gt(now))
        .order(request_results::created_at.desc())
        .select(ResultMeta::as_select())
        .load(conn)?)
}

/// Takes one download of a live result of this request: counts it and returns the file.
pub fn take_download(
    conn: &mut DbConnection,
    request_id: &str,
    result_id: &str,
    now: NaiveDateTime,
) -> Result<StoredResult, StoreError> {
    super::db::write(&mut *conn, |c| {
        let found = request_results::table
            .filter(request_results::id.eq(result_id))
            .filter(request_results::request_id.eq(request_id))
            .filter(request_results::expires_at.gt(now))
            .select(StoredResult::as_select())
            .first(c)
            .optional()?
            .ok_or(StoreError::NotFound)?;
        diesel::update(request_results::table.filter(request_results::id.eq(result_id)))
            .set((
                request_results::downloads.eq(request_results::downloads + 1),
                request_results::last_downloaded_at.eq(Some(now)),
            ))
            .execute(c)?;
        Ok(found)
    })
}

/// Deletes the bytes of results whose link has expired (their rows stay: name, size, SHA-256
/// and downloads are the evidence of what was handed over), at most `batch` at a time, and the
/// chunks of blobs a crashed build left without a result a day ago. Returns the results purged.
pub fn purge_expired(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    batch: i64,
) -> Result<usize, StoreError> {
    let expired: Vec<(String, Option<String>)> = request_results::table
        .filter(request_results::expires_at.le(now))
        .filter(request_results::purged_at.is_null())
        .order(request_results::expires_at.asc())
        .limit(batch)
        .select((request_results::id, request_results::blob_id))
        .load(conn)?;
    for (id, blob) in &expired {
        super::db::write::<_, StoreError, _>(&mut *conn, |c| {
            if let Some(blob) = blob {
                super::blobs::delete(c, blob)?;
            }
            diesel::update(request_results::table.filter(request_results::id.eq(id)))
                .set((
                    request_results::purged_at.eq(Some(now)),
                    request_results::body.eq(Vec::<u8>::new()),
                ))
                .execute(c)?;
            Ok(())
        })?;
    }
    let day_ago = now - chrono::Duration::days(1);
    let owned = request_results::table
        .filter(request_results::blob_id.is_not_null())
        .select(request_results::blob_id.assume_not_null());
    let orphans = diesel::delete(
        result_chunks::table
            .filter(result_chunks::created_at.lt(day_ago))
            .filter(diesel::dsl::not(result_chunks::blob_id.eq_any(owned))),
    )
    .execute(conn)?;
    if orphans > 0 {
        tracing::info!(chunks = orphans, "purged chunks no result owns");
    }
    Ok(expired.len())
}

/// A request's live result by file name (the package a transfer sends).
pub fn package_of(
    conn: &mut DbConnection,
    request_id: &str,
    file_name: &str,
) -> Result<Option<StoredResult>, StoreError> {
    Ok(request_results::table
        .filter(request_results::request_id.eq(request_id))
        .filter(request_results::file_name.eq(file_name))
        .filter(request_results::purged_at.is_null())
        .select(StoredResult::as_select())
        .first(conn)
        .optional()?)
}

/// Every result a request ever had, live, expired or purged (evidence), oldest first.
pub fn all_for_request(
    conn: &mut DbConnection,
    request_id: &str,
) -> Result<Vec<StoredResult>, StoreError> {
    Ok(request_results::table
        .filter(request_results::request_id.eq(request_id))
        .order(request_results::created_at.asc())
        .select(StoredResult::as_select())
        .load(conn)?)
}

//! Results handed to the subject: an access report or a portability export, with its
//! download count. The body sits in the row (results are small until #7 streams packages).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::request_results;
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
    conn.transaction(|c| {
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

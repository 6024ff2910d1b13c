//! Results for the subject: staff attach the access report or portability export they
//! prepared (until #7's connectors produce them), and the verified subject downloads it
//! through their session, within the link's lifetime, each download counted.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::{requests, ServiceError, Services};
use crate::domain::{Actor, Command, FreeText, RequestKind, Status};
use crate::storage::results::{self as store, ResultMeta, StoredResult};
use crate::storage::rows::StoredRequest;
use crate::storage::{to_db_time, StoreError};

/// How long a result stays downloadable (the default link lifetime).
pub const LIFETIME_DAYS: i64 = 7;
/// The largest result accepted in one upload.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;

pub struct NewResult {
    pub file_name: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Attaches a result to an approved access or portability request. The attachment is written
/// into the request's event log (as a note with the file's name and SHA-256) first, so the
/// core decides whether this staff member may act on the request at all.
pub fn attach(
    s: &Services,
    request_id: &str,
    actor: &Actor,
    new: NewResult,
    now: DateTime<Utc>,
) -> Result<ResultMeta, ServiceError> {
    let request = requests::get(s, request_id)?;
    if !matches!(
        request.state.kind,
        RequestKind::Access | RequestKind::Portability
    ) || request.state.status != Status::InProgress
    {
        return Err(ServiceError::ResultNotAllowed);
    }
    let sha256: String = Sha256::digest(&new.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let note = FreeText::parse(&format!(
        "result attached: {} ({} bytes, sha256 {sha256})",
        new.file_name,
        new.body.len()
    ))
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let staff_id = match actor {
        Actor::Staff { id, .. } => id.clone(),
        _ => return Err(ServiceError::Unauthenticated),
    };
    requests::act(
        s,
        request_id,
        actor,
        &Command::Note { text: note },
        None,
        now,
    )?;
    let row = StoredResult {
        id: uuid::Uuid::new_v4().to_string(),
        request_id: request.id.clone(),
        file_name: new.file_name,
        content_type: new.content_type,
        size: new.body.len() as i64,
        body: new.body,
        sha256,
        created_by: staff_id,
        created_at: to_db_time(now),
        expires_at: to_db_time(now + Duration::days(LIFETIME_DAYS)),
        downloads: 0,
        last_downloaded_at: None,
    };
    store::insert(&mut *s.db().conn()?, &row)?;
    tracing::info!(reference = %request.reference, size = row.size, "result attached");
    Ok(ResultMeta {
        id: row.id,
        file_name: row.file_name,
        content_type: row.content_type,
        size: row.size,
        sha256: row.sha256,
        created_at: row.created_at,
        expires_at: row.expires_at,
        downloads: 0,
    })
}

/// The results the subject may download now.
pub fn live(
    s: &Services,
    request: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<Vec<ResultMeta>, ServiceError> {
    Ok(store::live_for_request(
        &mut *s.db().conn()?,
        &request.id,
        to_db_time(now),
    )?)
}

/// One download by the subject whose session opened `request`.
pub fn download(
    s: &Services,
    request: &StoredRequest,
    result_id: &str,
    now: DateTime<Utc>,
) -> Result<StoredResult, ServiceError> {
    match store::take_download(
        &mut *s.db().conn()?,
        &request.id,
        result_id,
        to_db_time(now),
    ) {
        Ok(r) => {
            tracing::info!(reference = %request.reference, "result downloaded");
            Ok(r)
        }
        Err(StoreError::NotFound) => Err(ServiceError::NotFound),
        Err(e) => Err(e.into()),
    }
}

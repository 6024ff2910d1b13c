//! Results for the subject: the access report or portability package fulfilment made, or a
//! file staff attach; sealed at rest (AES-256-GCM, `storage::blobs`). The verified subject
//! downloads it through their session, within the link's lifetime, each download counted, as a
//! stream of chunks; expired results' bytes are purged.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::{requests, ServiceError, Services};
use crate::domain::{Actor, Command, FreeText, RequestKind, Status};
use crate::storage::blobs::{self, Sealed, SealedWriter};
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
    let mut writer = SealedWriter::new(s.db(), s.data_key(), now);
    std::io::Write::write_all(&mut writer, &new.body)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let sealed = writer.finish()?;
    let file = ResultFile {
        id: None,
        file_name: &new.file_name,
        content_type: &new.content_type,
        created_by: &staff_id,
    };
    let meta = keep(s, &request, file, sealed, now)?;
    tracing::info!(reference = %request.reference, size = meta.size, "result attached");
    Ok(meta)
}

/// What a kept result is called and who made it.
pub struct ResultFile<'a> {
    /// A fixed id (one result per request however often it is built), or a fresh one.
    pub id: Option<String>,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub created_by: &'a str,
}

/// Hands a sealed blob to the subject as a result of `request`, downloadable for
/// [`LIFETIME_DAYS`].
pub fn keep(
    s: &Services,
    request: &StoredRequest,
    file: ResultFile,
    sealed: Sealed,
    now: DateTime<Utc>,
) -> Result<ResultMeta, ServiceError> {
    let ResultFile {
        id,
        file_name,
        content_type,
        created_by,
    } = file;
    let row = StoredResult {
        id: id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        request_id: request.id.clone(),
        file_name: file_name.to_owned(),
        content_type: content_type.to_owned(),
        size: sealed.size,
        body: vec![],
        sha256: sealed.sha256,
        created_by: created_by.to_owned(),
        created_at: to_db_time(now),
        expires_at: to_db_time(now + Duration::days(LIFETIME_DAYS)),
        downloads: 0,
        last_downloaded_at: None,
        blob_id: Some(sealed.blob_id),
        key_id: Some(sealed.key_id),
        chunks: sealed.chunks,
        purged_at: None,
    };
    store::insert(&mut *s.db().conn()?, &row)?;
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

/// One download by the subject whose session opened `request`: the file's row, counted. Its
/// bytes are read with [`each_chunk`].
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
            super::audit_log::record(
                s,
                &crate::domain::Actor::Subject,
                crate::storage::audit_log::action::RESULT_DOWNLOADED,
                Some(&request.id),
                serde_json::json!({ "reference": request.reference.as_str(), "file": r.file_name }),
                now,
            )?;
            tracing::info!(reference = %request.reference, "result downloaded");
            Ok(r)
        }
        Err(StoreError::NotFound) => Err(ServiceError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// A result's plain bytes, opened one sealed chunk at a time (a result kept before sealing
/// existed is one chunk): chunk by chunk with [`next_chunk`](Self::next_chunk), or as a `Read`.
pub struct ResultReader<'a> {
    s: &'a Services,
    key: &'a crate::auth::sealing::DataKey,
    file: &'a StoredResult,
    seq: i32,
    chunk: Vec<u8>,
    pos: usize,
}

/// Opens a result for reading, under the current data key or one it replaced; fails when it
/// was sealed under a key that is not configured.
pub fn reader<'a>(
    s: &'a Services,
    file: &'a StoredResult,
) -> Result<ResultReader<'a>, ServiceError> {
    let key = match &file.blob_id {
        None => s.data_key(),
        Some(_) => {
            let id = file.key_id.as_deref().unwrap_or("?");
            s.db().vault().key(id).ok_or_else(|| {
                ServiceError::Internal(format!(
                    "result sealed under key {id}, which is not configured"
                ))
            })?
        }
    };
    Ok(ResultReader {
        s,
        key,
        file,
        seq: 0,
        chunk: vec![],
        pos: 0,
    })
}

impl ResultReader<'_> {
    /// The next chunk's plain bytes, or None at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ServiceError> {
        let Some(blob) = &self.file.blob_id else {
            self.seq += 1;
            return Ok((self.seq == 1).then(|| self.file.body.clone()));
        };
        if self.seq >= self.file.chunks {
            return Ok(None);
        }
        let mut conn = self.s.db().conn()?;
        let plain = blobs::read_chunk(&mut conn, self.key, blob, self.seq, self.file.chunks)?;
        self.seq += 1;
        Ok(Some(plain))
    }
}

impl std::io::Read for ResultReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.next_chunk().map_err(std::io::Error::other)? {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Hands a result's plain bytes to `send`, one chunk at a time, until the end or until `send`
/// says stop (the client went away).
pub fn each_chunk(
    s: &Services,
    file: &StoredResult,
    mut send: impl FnMut(Vec<u8>) -> bool,
) -> Result<(), ServiceError> {
    let mut r = reader(s, file)?;
    while let Some(chunk) = r.next_chunk()? {
        if !send(chunk) {
            break;
        }
    }
    Ok(())
}

/// Purges the bytes of expired results (and chunks no result owns): the scheduled job.
pub fn purge_expired(s: &Services, now: DateTime<Utc>) -> Result<usize, ServiceError> {
    let mut total = 0;
    loop {
        let n = store::purge_expired(&mut *s.db().conn()?, to_db_time(now), 100)?;
        total += n;
        if n < 100 {
            break;
        }
    }
    if total > 0 {
        tracing::info!(results = total, "expired results purged");
    }
    Ok(total)
}

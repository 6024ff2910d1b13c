//! Sealed blobs: a result's bytes as AES-256-GCM chunks in `result_chunks`, written and read
//! one chunk at a time, so a package of any size passes through a fixed amount of memory.
//!
//! The chunks sit in the database, not on a local disk, so every instance sharing the
//! database can serve every download, and purging is a delete.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::result_chunks;
use super::{to_db_time, Database, DbConnection, StoreError};
use crate::auth::sealing::{chunk_place, DataKey};

/// SQLite's page cache while a blob is written (KiB), and SQLite's default to go back to.
const WRITE_CACHE_KIB: u32 = 512;
const SQLITE_DEFAULT_CACHE: i32 = -2000;

/// Plain bytes a chunk holds (the last one holds the rest, possibly nothing).
pub const CHUNK: usize = 256 * 1024;

/// What a finished blob is.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub blob_id: String,
    pub key_id: String,
    pub chunks: i32,
    pub size: i64,
    /// SHA-256 of the plain bytes, hex.
    pub sha256: String,
}

/// Writes a blob: `Write` in, sealed chunks out to the database as each fills.
pub struct SealedWriter {
    db: Database,
    /// One connection for the whole blob (taken at the first chunk): its page cache is the
    /// only one the writing warms.
    conn: Option<super::db::Conn>,
    key: DataKey,
    blob_id: String,
    seq: i64,
    buf: Vec<u8>,
    size: u64,
    hasher: Sha256,
    at: DateTime<Utc>,
}

impl SealedWriter {
    pub fn new(db: &Database, key: &DataKey, at: DateTime<Utc>) -> SealedWriter {
        SealedWriter {
            db: db.clone(),
            conn: None,
            key: key.clone(),
            blob_id: uuid::Uuid::new_v4().to_string(),
            seq: 0,
            buf: Vec::with_capacity(CHUNK + 8 * 1024),
            size: 0,
            hasher: Sha256::new(),
            at,
        }
    }

    fn put(&mut self, plain: &[u8], last: bool) -> Result<(), StoreError> {
        let sealed = self
            .key
            .seal(&chunk_place(&self.blob_id, self.seq, last), plain);
        if self.conn.is_none() {
            let mut conn = self.db.conn()?;
            if let DbConnection::Sqlite(c) = &mut *conn {
                // Chunks are written once and never read back by this connection: a small page
                // cache while writing, or SQLite fills its whole cache with them.
                c.batch_execute(&format!("PRAGMA cache_size = -{WRITE_CACHE_KIB}"))?;
            }
            self.conn = Some(conn);
        }
        let conn = self.conn.as_mut().ok_or(StoreError::NotFound)?;
        insert_chunk(conn, &self.blob_id, self.seq, &sealed, self.at)?;
        self.seq += 1;
        Ok(())
    }

    /// Seals what is left as the last chunk. Until this returns, the blob belongs to no result
    /// (a crash leaves chunks that the purge removes a day later).
    pub fn finish(mut self) -> Result<Sealed, StoreError> {
        let rest = std::mem::take(&mut self.buf);
        self.put(&rest, true)?;
        if let Some(mut conn) = self.conn.take() {
            if let DbConnection::Sqlite(c) = &mut *conn {
                c.batch_execute(&format!("PRAGMA cache_size = {SQLITE_DEFAULT_CACHE}"))?;
            }
        }
        let sha256 = self
            .hasher
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Sealed {
            blob_id: self.blob_id.clone(),
            key_id: self.key.id().to_owned(),
            chunks: i32::try_from(self.seq).map_err(StoreError::corrupt)?,
            size: i64::try_from(self.size).map_err(StoreError::corrupt)?,
            sha256,
        })
    }
}

impl Write for SealedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.hasher.update(data);
        self.size += data.len() as u64;
        // A full chunk goes out only once more follows, so the last one is known at finish.
        while self.buf.len() > CHUNK {
            let rest = self.buf.split_off(CHUNK);
            let full = std::mem::replace(&mut self.buf, rest);
            self.put(&full, false).map_err(io::Error::other)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn insert_chunk(
    conn: &mut DbConnection,
    blob_id: &str,
    seq: i64,
    bytes: &[u8],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(result_chunks::table)
        .values((
            result_chunks::blob_id.eq(blob_id),
            result_chunks::seq.eq(i32::try_from(seq).map_err(StoreError::corrupt)?),
            result_chunks::bytes.eq(bytes),
            result_chunks::created_at.eq(to_db_time(at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Opens chunk `seq` of a blob of `chunks` chunks.
pub fn read_chunk(
    conn: &mut DbConnection,
    key: &DataKey,
    blob_id: &str,
    seq: i32,
    chunks: i32,
) -> Result<Vec<u8>, StoreError> {
    let sealed: Vec<u8> = result_chunks::table
        .filter(result_chunks::blob_id.eq(blob_id))
        .filter(result_chunks::seq.eq(seq))
        .select(result_chunks::bytes)
        .first(conn)
        .optional()?
        .ok_or_else(|| StoreError::corrupt(format!("chunk {seq} of a result is missing")))?;
    key.open(
        &chunk_place(blob_id, i64::from(seq), seq + 1 == chunks),
        &sealed,
    )
    .map_err(StoreError::corrupt)
}

/// Deletes a blob's chunks.
pub fn delete(conn: &mut DbConnection, blob_id: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(result_chunks::table.filter(result_chunks::blob_id.eq(blob_id)))
            .execute(conn)?,
    )
}

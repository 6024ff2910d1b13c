//! Storage: diesel over SQLite (embedded default) and PostgreSQL (production). Every state
//! change and its event and outbox rows are written in one transaction.

pub mod anchor;
pub mod audit;
pub mod audit_log;
pub mod blobs;
pub mod consents;
pub mod db;
pub mod drp;
pub mod fields;
pub mod inbox;
pub mod insert_batches;
pub mod inserts;
pub mod job_ticks;
pub mod opendsr;
pub mod outbox;
pub mod rate_windows;
pub mod rekey;
pub mod reminders;
pub mod report_days;
pub mod reports;
pub mod requests;
pub mod results;
pub mod retention;
pub mod rows;
pub mod schema;
pub mod staff;
pub mod tallies;
pub mod tasks;
pub mod verification;
pub mod write_gate;

pub use db::{Backend, Database, DbConnection};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database setup: {0}")]
    Setup(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("not found")]
    NotFound,
    /// Someone else changed the row since it was read (optimistic concurrency).
    #[error("the record was changed concurrently")]
    Conflict,
    #[error("a record with this {0} exists already")]
    Duplicate(&'static str),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }
}

/// Instants are stored as UTC without zone, at microsecond precision (what PostgreSQL keeps).
/// A new key for a row written on every submission (requests, their outbox rows, verification
/// challenges): a UUID of version 7, which begins with the time, so rows written one after the
/// other go to the same end of each index instead of a random page. A batch of writes
/// committed together (`write_gate`) then shares those pages. The remaining 74 bits are
/// random, so the keys are no easier to guess; none of them is a secret.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn to_db_time(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

pub fn from_db_time(t: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_naive_utc_and_offset(t, chrono::Utc)
}

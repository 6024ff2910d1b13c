//! One connection type over SQLite and PostgreSQL, chosen by the URL scheme, with a pool,
//! per-connection SQLite settings and embedded migrations run at start.

use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::StoreError;
use crate::auth::vault::Vault;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// WAL lets readers work while one writer writes; the busy timeout makes a second writer wait
/// instead of failing at once; foreign keys are off by default in SQLite.
/// Per connection. (WAL is a property of the database file, set once in `Database::connect`:
/// switching it from several new connections at once can fail with "database is locked".)
/// `secure_delete` overwrites freed content with zeros, so a value replaced (re-sealed under a
/// new key, anonymised, deleted) does not linger in the file's free pages.
/// No automatic checkpoints: SQLite runs them in the commit that fills the log, inside that
/// writer's turn (`write_gate`), so every other writer would wait for the copy and its sync; a
/// thread of the `Database` checkpoints instead ([`checkpoints`]).
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA wal_autocheckpoint = 0;";

/// How often the checkpointing thread copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// A write-ahead log holding more than this is started again from its beginning, in the
/// writers' turn. Passive checkpoints copy the log into the database beside the writers, but
/// SQLite starts the log again only after a checkpoint that caught up completely while no
/// transaction was open, which a steady stream of writes never lets happen: seeding 1,000,000
/// requests left an 8 GB log.
///
/// The default of `sqlite_wal_limit_mb`. Starting the log again stops every writer for
/// 10–30 ms under a full load (the last frames copied and both files synced), and at 64 MiB
/// that came about once a second under `bench intake`: the submissions' p99 was 35 ms, 23 ms
/// without it. At 512 MiB it comes every ~5 s at the most this machine writes (~100 MB of log a
/// second), and the p99 measured 22–27 ms; under lighter loads passive checkpoints catch up
/// between writes and SQLite starts the log again by itself.
pub const WAL_LIMIT_MB: NonZeroU64 = match NonZeroU64::new(512) {
    Some(mb) => mb,
    None => unreachable!(),
};

/// Frames of the log a passive checkpoint may leave uncopied before the writers' turn is
/// taken (1 MiB of 4 KiB pages): what is left is copied while every writer waits.
const CATCH_UP_FRAMES: i64 = 256;

#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    checkpointed: i64,
}

/// A checkpoint in `mode`. Returns how many frames the log holds and how many of them are
/// not yet copied into the database.
fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> Result<(i64, i64), StoreError> {
    use diesel::RunQueryDsl;
    let r = diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})"))
        .get_result::<CheckpointResult>(conn)?;
    Ok((r.log.max(0), (r.log - r.checkpointed).max(0)))
}

/// Copies the write-ahead log into the database file every [`CHECKPOINT_EVERY`], beside the
/// writers (a passive checkpoint waits for no one), on a connection of its own; ends when the
/// `Database` it serves is gone (its writer is dropped with the last clone).
///
/// A log holding more than `limit` bytes of frames is started again: passive checkpoints
/// first catch up to within [`CATCH_UP_FRAMES`] of its end, then a `RESTART` checkpoint in
/// the writers' turn copies the rest and waits for readers, so the writer's next transaction
/// writes from the beginning of the file: the file stays at about `limit` plus what is
/// written between two checks. (Cutting the file back too, with `journal_size_limit`, made
/// the p99 worse in the same benchmark.) Only a file past `truncate_past` (four times the
/// limit), grown while something pinned the log, is emptied and truncated (`TRUNCATE`).
/// Before, a `TRUNCATE` checkpoint in the writers' turn copied everything written
/// since the last checkpoint and truncated the file, 40–70 ms once a second under `bench
/// intake` while every submission waited: most of the submissions' p99 (68 ms; 32 ms now).
fn checkpoints(
    url: &str,
    writer: &Arc<Writer>,
    limit: u64,
    truncate_past: u64,
) -> Result<(), StoreError> {
    let mut conn = SqliteConnection::establish(sqlite_path(url))
        .map_err(|e| StoreError::Setup(format!("cannot open the sqlite database: {e}")))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
    let alive = Arc::downgrade(writer);
    let limit_frames = i64::try_from(limit / 4096).unwrap_or(i64::MAX);
    let wal = format!("{}-wal", sqlite_path(url));
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if alive.upgrade().is_none() {
                break;
            }
            let (frames, mut left) = match checkpoint(&mut conn, "PASSIVE") {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoint failed; will retry");
                    continue;
                }
            };
            if frames <= limit_frames {
                continue;
            }
            // Writers keep adding while a checkpoint copies: a few more rounds catch up.
            for _ in 0..8 {
                if left <= CATCH_UP_FRAMES {
                    break;
                }
                left = checkpoint(&mut conn, "PASSIVE").map_or(left, |(_, left)| left);
            }
            let Some(writer) = alive.upgrade() else { break };
            // A file far past the limit grew while something pinned the log (a long read):
            // emptied, it does not keep that size for good. Otherwise the log starts again.
            let pinned = std::fs::metadata(&wal).is_ok_and(|m| m.len() > truncate_past);
            let mode = if pinned { "TRUNCATE" } else { "RESTART" };
            // Waits (busy timeout) for readers still on old pages; this process's writers
            // wait at the gate meanwhile.
            let r = writer.exclusive(|w| match w {
                DbConnection::Sqlite(w) => checkpoint(w, mode),
                DbConnection::Postgres(_) => Ok((0, 0)),
            });
            if let Err(e) = r {
                tracing::warn!(error = %e, "starting the write-ahead log again failed; will retry");
            }
        })
        .map_err(|e| StoreError::Setup(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

/// Any fixed number serves as the key of the advisory lock that lets only one of several
/// instances run migrations at a time.
const MIGRATION_LOCK_KEY: i64 = 0x5246_4d49_4752; // "RFMIGR"

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `postgres://` and `postgresql://` mean PostgreSQL; anything else is a SQLite path,
    /// with or without a `sqlite://` prefix.
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").unwrap_or(url)
}

pub use super::write_gate::write;

/// Runs `$body` on the backend's own connection inside a [`DbConnection`], compiled once per
/// backend. For the inserts of a submission (and of every event and outbox row): diesel's `MultiConnection` writes a query's
/// SQL out again on every execution (to hand it to the backend inside), and cannot key its
/// statement cache by the query's type, which was about half of the SQLite writer's turn per
/// submission (`bench intake`, docs/PERFORMANCE.md). On the backend's connection a query with
/// a static shape is prepared once and found again by its type.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::storage::DbConnection::Sqlite($c) => $body,
            $crate::storage::DbConnection::Postgres($c) => $body,
        }
    };
}
use super::insert_batches::Batches;
use super::inserts::Rows;
use super::write_gate::Writer;
pub(crate) use on_backend;

/// Establishes connections of the backend the URL names. (The derive's own `establish`
/// would try each backend in turn, and SQLite accepts any string as a file name.)
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
    /// PostgreSQL's `statement_timeout` for every connection, in milliseconds (0: none).
    statement_timeout_ms: u64,
}

impl Manager {
    /// The SQLite connection that does every write of this process (`write_gate`). Its
    /// temporary files are kept in memory: each write of a batch runs in a savepoint, for
    /// which SQLite copies every page the write changes into a sub-journal, a temporary file
    /// once past 64 KiB (a submission changes ~35 pages of 4 KiB). Written to a file, those
    /// copies were ~12% of the service's CPU in `bench intake`, all of it while every other
    /// writer waited. A batch holds at most `write_gate::MAX_BATCH` writes, so the journal
    /// stays a few megabytes; readers keep temporary files on disk for large sorts.
    fn connect_writer(&self) -> Result<DbConnection, r2d2::Error> {
        let mut conn = self.connect()?;
        conn.batch_execute("PRAGMA temp_store = MEMORY;")
            .map_err(r2d2::Error::QueryError)?;
        Ok(conn)
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(sqlite_path(&self.url))
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_SETUP)
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
            Backend::Postgres => {
                let mut conn =
                    PgConnection::establish(&self.url).map_err(r2d2::Error::ConnectionError)?;
                if self.statement_timeout_ms > 0 {
                    conn.batch_execute(&format!(
                        "SET statement_timeout = {}",
                        self.statement_timeout_ms
                    ))
                    .map_err(r2d2::Error::QueryError)?;
                }
                Ok(DbConnection::Postgres(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    /// A connection left inside a transaction (a panic in a transaction's closure: diesel does
    /// not roll back then) or with its transaction state broken is not handed out again.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::connection::{TransactionManager, TransactionManagerStatus};
        !matches!(
            <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(
                conn
            ),
            TransactionManagerStatus::Valid(v) if v.transaction_depth().is_none()
        )
    }
}

pub type PooledConn = PooledConnection<Manager>;

/// A pooled connection with the database's vault in scope while it is held (see
/// `storage::fields`): what storage functions seal and open personal data with.
pub struct Conn {
    conn: PooledConn,
    _scope: super::fields::Scope,
}

impl std::ops::Deref for Conn {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// The shared handle on the database: cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    statement_timeout_ms: u64,
    vault: Arc<Vault>,
    /// SQLite: the connection every writing transaction of this process runs on
    /// (`write_gate`).
    writer: Option<Arc<Writer>>,
    /// PostgreSQL: writes that only insert, committed together (`insert_batches`).
    batches: Option<Arc<Batches>>,
}

impl Database {
    /// `vault`: the keys personal data in this database is sealed under. No statement timeout.
    pub fn connect(url: &str, pool_size: u32, vault: Arc<Vault>) -> Result<Database, StoreError> {
        Database::connect_with(url, pool_size, 0, WAL_LIMIT_MB, vault)
    }

    /// As [`Database::connect`], with PostgreSQL cancelling statements that run longer than
    /// `statement_timeout_seconds` (0: no limit; SQLite has none), and SQLite starting its
    /// write-ahead log again past `wal_limit_mb` (see [`WAL_LIMIT_MB`]).
    pub fn connect_with(
        url: &str,
        pool_size: u32,
        statement_timeout_seconds: u64,
        wal_limit_mb: NonZeroU64,
        vault: Arc<Vault>,
    ) -> Result<Database, StoreError> {
        let statement_timeout_ms = statement_timeout_seconds.saturating_mul(1000);
        let backend = Backend::from_url(url);
        if backend == Backend::Sqlite {
            if let Some(dir) = Path::new(sqlite_path(url))
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Setup(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        if backend == Backend::Sqlite {
            let mut first = SqliteConnection::establish(sqlite_path(url))
                .map_err(|e| StoreError::Setup(format!("cannot open the sqlite database: {e}")))?;
            first.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")?;
        }
        let manager = Manager {
            url: url.to_owned(),
            backend,
            statement_timeout_ms,
        };
        // SQLite: one more connection, made as the pool makes its own, for every write.
        let writer_conn =
            match backend {
                Backend::Sqlite => Some(manager.connect_writer().map_err(|e| {
                    StoreError::Setup(format!("cannot open the sqlite database: {e}"))
                })?),
                Backend::Postgres => None,
            };
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(10))
            // A connection to a file does not go stale as a network connection can; checking
            // it with a query at every checkout was ~2% of a submission's CPU (bench intake).
            // has_broken still keeps connections left inside a transaction out.
            .test_on_check_out(backend == Backend::Postgres)
            .build(manager)
            .map_err(|e| {
                StoreError::Setup(format!(
                    "cannot open the {} database: {e}",
                    backend.as_str()
                ))
            })?;
        let writer = match writer_conn {
            Some(conn) => {
                let again = Manager {
                    url: url.to_owned(),
                    backend,
                    statement_timeout_ms,
                };
                let writer = Writer::new(conn, move || {
                    again.connect_writer().map_err(|e| e.to_string())
                });
                let limit = wal_limit_mb.get().saturating_mul(1024 * 1024);
                checkpoints(url, &writer, limit, limit.saturating_mul(4))?;
                Some(writer)
            }
            None => None,
        };
        let batches = (backend == Backend::Postgres).then(Arc::default);
        Ok(Database {
            pool,
            backend,
            statement_timeout_ms,
            vault,
            writer,
            batches,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn conn(&self) -> Result<Conn, StoreError> {
        let conn = self
            .pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Conn {
            conn,
            _scope: super::fields::Scope::enter(&self.vault, self.writer.as_ref()),
        })
    }

    /// Puts this database's keys in scope on this thread without taking a connection, for
    /// work that seals or blind-indexes before a [`Database::write`].
    pub fn scope(&self) -> super::fields::Scope {
        super::fields::Scope::enter(&self.vault, self.writer.as_ref())
    }

    /// Runs `f` as one writing transaction (not from inside another: on SQLite that fails, as
    /// it would wait for itself; a write inside a write uses the connection it was given,
    /// through [`write()`]).
    ///
    /// On SQLite the write runs on this database's writer (`write_gate`) without taking a
    /// pooled connection, which serve reads: a submission waiting for the writer's turn does
    /// not hold one, so how many writes can join a batch is not bounded by the pool's size.
    /// On PostgreSQL, a transaction on a pooled connection.
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
        T: Send,
        E: From<diesel::result::Error> + From<StoreError> + Send,
    {
        match &self.writer {
            Some(writer) => {
                let _scope = super::fields::Scope::enter(&self.vault, Some(writer));
                writer.run(f)
            }
            None => write(&mut *self.conn()?, f),
        }
    }

    /// Inserts `rows` as one transaction of their own: on PostgreSQL committed with other
    /// such writes waiting at the same time (`insert_batches`); on SQLite through the writer.
    pub(super) fn insert(&self, rows: Rows) -> Result<(), StoreError> {
        match &self.batches {
            Some(batches) => batches.write(rows, || self.conn()),
            None => self.write(move |c| rows.write_on(c)),
        }
    }

    /// PostgreSQL: the queue of writes that only insert (`insert_batches`).
    pub fn insert_batches(&self) -> Option<&Batches> {
        self.batches.as_deref()
    }

    /// The keys personal data is sealed under.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// Runs the pending migrations of this backend. On PostgreSQL an advisory lock makes
    /// instances starting together take turns.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
            StoreError::Setup(format!("migration failed: {e}"))
        };
        match &mut *conn {
            DbConnection::Sqlite(c) => {
                let applied = c
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|v| v.len())
                    .map_err(failed)?;
                // SQLite's planner picks the console's partial indexes only with statistics
                // (PostgreSQL keeps its own): ANALYZE the tables that have none or whose size
                // changed tenfold since; a no-op otherwise. Not a sampled ANALYZE
                // (`analysis_limit`): on a million requests its estimates (about a thousand rows
                // a status) led the planner away from the queue's index, and the queue took
                // 600 ms instead of 50 (docs/PERFORMANCE.md). A full one takes ~3 s there.
                c.batch_execute("PRAGMA analysis_limit=0; PRAGMA optimize=0x10002;")?;
                Ok(applied)
            }
            DbConnection::Postgres(c) => {
                // A migration may rewrite a large table: no statement timeout for it.
                c.batch_execute("SET statement_timeout = 0")?;
                c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.len())
                    .map_err(failed);
                c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
                // The connection goes back to the pool with the timeout it came with.
                c.batch_execute(&format!(
                    "SET statement_timeout = {}",
                    self.statement_timeout_ms
                ))?;
                result
            }
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    /// How many times the write-ahead log was started again: the checkpoint sequence number
    /// in its header (bytes 12–15, big-endian), which SQLite adds one to on each restart and
    /// writes with the first frame after it. Read from the file, so watching it starts
    /// nothing (a checkpoint by the watcher that caught up would let the log restart).
    fn log_restarts(url: &str) -> u32 {
        use std::io::Read;
        let mut header = [0u8; 16];
        match std::fs::File::open(format!("{url}-wal")).and_then(|mut f| f.read_exact(&mut header))
        {
            Ok(()) => u32::from_be_bytes([header[12], header[13], header[14], header[15]]),
            Err(_) => 0, // no log yet, or an empty one
        }
    }

    /// A steady stream of writes: passive checkpoints alone never let SQLite start the log
    /// again, so it grew by everything written (an 8 GB log after seeding 1,000,000
    /// requests). Past the limit, the log is started again from its beginning, and nothing
    /// written is lost on the way.
    ///
    /// Bounded by the event, not by a fixed window: with a check every 500 ms the restarts
    /// come ~2 a second, but a loaded machine (CI runs the unit tests beside each other on
    /// two cores) once gave only 2 in 3 s. Without the restart, SQLite restarts the log
    /// only when a passive checkpoint happens to catch up completely between two writes.
    #[test]
    fn a_steady_stream_of_writes_starts_the_write_ahead_log_again_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("wal.db").to_str().unwrap().to_owned();
        let db = Arc::new(Database::connect(&url, 2, Arc::new(Vault::generate())).unwrap());
        db.write(|c| {
            diesel::sql_query("CREATE TABLE rows (b BLOB NOT NULL)").execute(c)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
        // The database's own thread has the production limit (512 MiB); this one 256 KiB, and
        // starts the log again however large the file (tests/api/scale_out.rs: truncating).
        checkpoints(&url, db.writer.as_ref().unwrap(), 256 * 1024, u64::MAX).unwrap();
        let before = log_restarts(&url);
        let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (db, writing) = (db.clone(), writing.clone());
                std::thread::spawn(move || {
                    let mut written = 0i64;
                    while writing.load(std::sync::atomic::Ordering::Relaxed) {
                        db.write(|c| {
                            diesel::sql_query("INSERT INTO rows VALUES (randomblob(4000))")
                                .execute(c)?;
                            Ok::<_, StoreError>(())
                        })
                        .unwrap();
                        written += 1;
                        std::thread::sleep(Duration::from_micros(300));
                    }
                    written
                })
            })
            .collect();
        let started = std::time::Instant::now();
        let give_up = started + Duration::from_secs(30);
        while log_restarts(&url).saturating_sub(before) < 3 && std::time::Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        let (restarts, took) = (log_restarts(&url).saturating_sub(before), started.elapsed());
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        let written: i64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(
            restarts >= 3,
            "the log was started again {restarts} times in {took:?} of writes past its limit"
        );
        let rows = diesel::sql_query("SELECT count(*) AS n FROM rows")
            .get_result::<Count>(&mut *db.conn().unwrap())
            .unwrap()
            .n;
        assert_eq!(rows, written, "every write that returned is there");
    }
}

//! One connection type over SQLite and PostgreSQL, chosen by the URL scheme, with a pool,
//! per-connection SQLite settings and embedded migrations run at start.

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

/// A write-ahead log past this size is emptied (and its file truncated) in the writers' turn.
/// Passive checkpoints copy the log into the database beside the writers, but SQLite starts
/// the log again from its beginning only after a checkpoint that caught up completely, which a
/// steady stream of writes never lets happen: seeding 1,000,000 requests left an 8 GB log.
const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Copies the write-ahead log into the database file every [`CHECKPOINT_EVERY`], beside the
/// writers (a passive checkpoint waits for no one), on a connection of its own; ends when the
/// `Database` it serves is gone (its writer is dropped with the last clone).
fn checkpoints(url: &str, writer: &Arc<Writer>) -> Result<(), StoreError> {
    let mut conn = SqliteConnection::establish(sqlite_path(url))
        .map_err(|e| StoreError::Setup(format!("cannot open the sqlite database: {e}")))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
    let alive = Arc::downgrade(writer);
    let wal = format!("{}-wal", sqlite_path(url));
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if alive.upgrade().is_none() {
                break;
            }
            if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                tracing::warn!(error = %e, "checkpoint failed; will retry");
            }
            let large = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT_BYTES);
            if let (true, Some(writer)) = (large, alive.upgrade()) {
                // Waits (busy timeout) for readers still on old pages; this process's writers
                // wait at the gate meanwhile.
                let truncated =
                    writer.exclusive(|w| w.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);"));
                if let Err(e) = truncated {
                    tracing::warn!(error = %e, "emptying the write-ahead log failed; will retry");
                }
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
use super::write_gate::Writer;

/// Establishes connections of the backend the URL names. (The derive's own `establish`
/// would try each backend in turn, and SQLite accepts any string as a file name.)
#[derive(Debug)]
pub struct Manager {
    url: String,
    backend: Backend,
    /// PostgreSQL's `statement_timeout` for every connection, in milliseconds (0: none).
    statement_timeout_ms: u64,
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
}

impl Database {
    /// `vault`: the keys personal data in this database is sealed under. No statement timeout.
    pub fn connect(url: &str, pool_size: u32, vault: Arc<Vault>) -> Result<Database, StoreError> {
        Database::connect_with(url, pool_size, 0, vault)
    }

    /// As [`Database::connect`], with PostgreSQL cancelling statements that run longer than
    /// `statement_timeout_seconds` (0: no limit; SQLite has none).
    pub fn connect_with(
        url: &str,
        pool_size: u32,
        statement_timeout_seconds: u64,
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
                Backend::Sqlite => Some(manager.connect().map_err(|e| {
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
                let writer = Writer::new(conn, move || again.connect().map_err(|e| e.to_string()));
                checkpoints(url, &writer)?;
                Some(writer)
            }
            None => None,
        };
        Ok(Database {
            pool,
            backend,
            statement_timeout_ms,
            vault,
            writer,
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

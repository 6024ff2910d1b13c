//! On SQLite, this process writes through one connection, one transaction at a time, taken in
//! turn at a lock rather than in SQLite's busy handler.
//!
//! SQLite lets one connection write at a time. Two things made writing from a pool of
//! connections slow under a burst of submissions (docs/PERFORMANCE.md):
//!
//! - a second writer waits in the busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25… ms
//!   between tries, so waits of microseconds became tens of milliseconds;
//! - in WAL mode a connection drops its page cache whenever another connection has written,
//!   so every transaction on a pooled connection began cold: about sixty page reads from the
//!   file per submission.
//!
//! [`write`] runs every writing transaction of this process on one connection, the writer,
//! behind a mutex: writers are woken the moment the one before them finishes, and the writer's
//! cache stays warm because nothing else in the process writes. Pooled connections still serve
//! reads in parallel. SQLite's busy timeout remains for writers in other processes (the CLI, a
//! second instance on the same file).
//!
//! The writer belongs to the [`Database`](super::Database) (one per SQLite file) and is in
//! scope on a thread while one of that database's pooled connections is held, beside the vault
//! (`fields::Scope`), so storage functions that receive a bare connection find it.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::Connection;

use super::DbConnection;

/// Opens a fresh writing connection.
type Reopen = Box<dyn Fn() -> Result<DbConnection, String> + Send + Sync>;

/// The writing connection of one SQLite database.
pub struct Writer {
    conn: Mutex<DbConnection>,
    /// Replaces the connection after a panic inside a write (see [`write`]).
    reopen: Reopen,
}

impl Writer {
    pub fn new(
        conn: DbConnection,
        reopen: impl Fn() -> Result<DbConnection, String> + Send + Sync + 'static,
    ) -> Arc<Writer> {
        Arc::new(Writer {
            conn: Mutex::new(conn),
            reopen: Box::new(reopen),
        })
    }
}

impl Writer {
    /// Runs `f` on the writer connection while no write of this process can run (for the
    /// checkpoint that empties the write-ahead log, which must wait for writers anyway).
    pub fn exclusive<T>(&self, f: impl FnOnce(&mut DbConnection) -> T) -> T {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }
}

thread_local! {
    /// Whether this thread is inside a writing transaction (a write inside it nests there).
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` in a transaction that takes SQLite's write lock when it begins (`BEGIN
/// IMMEDIATE`): it neither fails later upgrading a read (when another process wrote meanwhile)
/// nor holds a stale snapshot. Begun on the SQLite connection inside `c` (diesel's
/// `immediate_transaction` would hand `f` that connection, not `c`), then committed or rolled
/// back through `c`'s transaction manager as diesel's `transaction` does.
///
/// This replaced a no-op `UPDATE requests … WHERE 1 = 0` after a plain `BEGIN`: SQLite parsed
/// and compiled that statement (with every index of `requests`) for each write, about 5% of a
/// submission's CPU in `bench intake`.
fn immediate<T, E, F>(c: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    let DbConnection::Sqlite(sqlite) = c else {
        return c.transaction(f);
    };
    // Already inside a transaction (one begun outside the gate): a savepoint, as before.
    if AnsiTransactionManager::transaction_manager_status_mut(sqlite)
        .transaction_depth()?
        .is_some()
    {
        return c.transaction(f);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match f(c) {
        Ok(value) => {
            Manager::commit_transaction(c)?;
            Ok(value)
        }
        Err(error) => match Manager::rollback_transaction(c) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Marks this thread as writing until dropped.
struct Writing;

impl Writing {
    fn enter() -> Writing {
        WRITING.with(|w| w.set(true));
        Writing
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.with(|w| w.set(false));
    }
}

/// Runs `f` in a transaction that writes.
///
/// - PostgreSQL: a transaction on `c`.
/// - SQLite: waits for this process's writer and runs `f` on it (not on `c`), having taken the
///   write lock first. Inside another write (where `c` is the writer), a nested transaction on
///   `c`. Without a writer in scope (a connection made outside a `Database`), on `c`.
pub fn write<T, E, F>(c: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if matches!(c, DbConnection::Postgres(_)) || WRITING.with(Cell::get) {
        return c.transaction(f);
    }
    let locked = |c: &mut DbConnection| immediate(c, f);
    let Some(writer) = super::fields::writer() else {
        return locked(c);
    };
    let mut conn = writer.conn.lock().unwrap_or_else(|p| p.into_inner());
    let _writing = Writing::enter();
    match catch_unwind(AssertUnwindSafe(|| locked(&mut conn))) {
        Ok(result) => result,
        Err(panic) => {
            // diesel does not roll back when the closure panics: the transaction would stay
            // open on the writer and nothing written after it would ever commit. A fresh
            // connection replaces it; closing the old one rolls its transaction back.
            match (writer.reopen)() {
                Ok(fresh) => *conn = fresh,
                Err(e) => {
                    tracing::error!(error = %e, "could not reopen the writer after a panic");
                    let _ = conn.batch_execute("ROLLBACK");
                }
            }
            resume_unwind(panic)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    use diesel::SqliteConnection;

    use crate::auth::vault::Vault;
    use crate::storage::fields::Scope;

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn open(path: &std::path::Path) -> DbConnection {
        let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        c.batch_execute("PRAGMA busy_timeout = 10000;").unwrap();
        DbConnection::Sqlite(c)
    }

    #[test]
    fn writes_take_turns_on_the_writer_and_a_failed_or_panicking_one_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gate.db");
        let mut setup = open(&path);
        setup
            .batch_execute(
                "PRAGMA journal_mode = WAL; CREATE TABLE requests (id TEXT PRIMARY KEY); \
                 CREATE TABLE counter (n BIGINT NOT NULL); INSERT INTO counter VALUES (0);",
            )
            .unwrap();
        let reopen = path.clone();
        let writer = Writer::new(open(&path), move || Ok(open(&reopen)));
        let vault = Arc::new(Vault::generate());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (writer, path, vault) = (writer.clone(), path.clone(), vault.clone());
                std::thread::spawn(move || {
                    let _scope = Scope::enter(&vault, Some(&writer));
                    let mut mine = open(&path);
                    for i in 0..50 {
                        // Read, then write what was read plus one: lost updates would show.
                        // Every fifth write fails after writing: it alone is rolled back.
                        let done = write::<_, diesel::result::Error, _>(&mut mine, |c| {
                            let n = diesel::sql_query("SELECT n FROM counter")
                                .get_result::<N>(c)?
                                .n;
                            // A write inside the write nests on the same connection.
                            write::<_, diesel::result::Error, _>(c, |c| {
                                diesel::sql_query(format!("UPDATE counter SET n = {}", n + 1))
                                    .execute(c)
                            })?;
                            if i % 5 == 0 {
                                return Err(diesel::result::Error::NotFound);
                            }
                            Ok(())
                        });
                        assert_eq!(done.is_ok(), i % 5 != 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = diesel::sql_query("SELECT n FROM counter")
            .get_result::<N>(&mut setup)
            .unwrap()
            .n;
        assert_eq!(n, 320, "eight threads, forty kept increments each");

        // A write that panics halfway leaves nothing behind, and the next write commits.
        let _scope = Scope::enter(&vault, Some(&writer));
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            write::<(), diesel::result::Error, _>(&mut setup, |c| {
                diesel::sql_query("UPDATE counter SET n = 0").execute(c)?;
                panic!("a bug in a write");
            })
        }));
        assert!(panicked.is_err());
        write::<_, diesel::result::Error, _>(&mut setup, |c| {
            diesel::sql_query("UPDATE counter SET n = n + 1").execute(c)
        })
        .unwrap();
        let mut other = open(&path);
        let n = diesel::sql_query("SELECT n FROM counter")
            .get_result::<N>(&mut other)
            .unwrap()
            .n;
        assert_eq!(
            n, 321,
            "the panicked write rolled back, the next one committed"
        );
    }
}

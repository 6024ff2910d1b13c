//! On SQLite, this process writes through one connection, one transaction at a time, taken in
//! turn at a lock rather than in SQLite's busy handler, and writers that arrive together commit
//! together (group commit).
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
//! **Group commit.** Committing writes every page the transaction changed into the log, and a
//! submission changes ~35 pages (a dozen rows, ~20 index entries), most of them the same pages
//! as the submission before it (the right-hand edge of each index, with time-ordered keys).
//! So a writer that finds others waiting for the writer does not commit: it leaves the
//! transaction open for the next one and waits until some later writer commits them all, at
//! most [`MAX_BATCH`] writes in one transaction. Each write runs in a savepoint of its own:
//! one that fails or panics is rolled back alone and the others go on. `write` returns only
//! once its changes are committed (or fails if the commit failed), exactly as before, so no
//! caller sees the difference except in time: the pages shared by a batch are written once.
//!
//! The writer belongs to the [`Database`](super::Database) (one per SQLite file) and is in
//! scope on a thread while one of that database's pooled connections is held, beside the vault
//! (`fields::Scope`), so storage functions that receive a bare connection find it.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::Connection;

use super::DbConnection;

/// Opens a fresh writing connection.
type Reopen = Box<dyn Fn() -> Result<DbConnection, String> + Send + Sync>;

/// The most writes committed in one transaction. A write waits for the ones after it in its
/// batch (each a fraction of a millisecond) before it returns, so this bounds that wait.
pub const MAX_BATCH: usize = 32;

/// The writing connection of one SQLite database.
pub struct Writer {
    gate: Mutex<Gate>,
    /// Threads that asked for the writer and do not hold it yet. A write that finishes while
    /// one waits leaves the transaction open for it.
    waiting: AtomicUsize,
    /// Replaces the connection when its transaction cannot go on (see [`Gate::abandon`]).
    reopen: Reopen,
}

/// What the lock of a [`Writer`] guards.
struct Gate {
    conn: DbConnection,
    /// The transaction left open by earlier writes for later ones, if any.
    batch: Option<Batch>,
    /// Transactions committed so far.
    commits: u64,
}

struct Batch {
    writes: usize,
    ended: Arc<Ended>,
}

/// How a batch's transaction ended, for the writes waiting on it.
#[derive(Default)]
struct Ended {
    result: Mutex<Option<Result<(), String>>>,
    signal: Condvar,
}

impl Ended {
    fn set(&self, result: Result<(), String>) {
        *self.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        self.signal.notify_all();
    }

    fn wait(&self) -> Result<(), String> {
        let mut result = self.result.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = &*result {
                return r.clone();
            }
            result = self.signal.wait(result).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Writer {
    pub fn new(
        conn: DbConnection,
        reopen: impl Fn() -> Result<DbConnection, String> + Send + Sync + 'static,
    ) -> Arc<Writer> {
        Arc::new(Writer {
            gate: Mutex::new(Gate {
                conn,
                batch: None,
                commits: 0,
            }),
            waiting: AtomicUsize::new(0),
            reopen: Box::new(reopen),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Gate> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        gate
    }

    /// How many transactions the writer has committed (each holding one or more writes).
    pub fn commits(&self) -> u64 {
        self.gate.lock().unwrap_or_else(|p| p.into_inner()).commits
    }

    /// Runs `f` on the writer connection while no write of this process can run and none is
    /// left uncommitted (for the checkpoint that empties the write-ahead log, which must wait
    /// for writers anyway).
    pub fn exclusive<T>(&self, f: impl FnOnce(&mut DbConnection) -> T) -> T {
        let mut gate = self.lock();
        if gate.batch.is_some() {
            // Its writes wait for this commit; a failure is theirs to report.
            let _ = gate.commit(&self.reopen);
        }
        f(&mut gate.conn)
    }

    /// Runs `f` as one write of the open batch (opening one if there is none), then commits
    /// the batch or leaves it to the next write.
    pub(super) fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        debug_assert!(
            !WRITING.with(Cell::get),
            "a write inside a write nests on its connection (`write`), or it would wait for itself"
        );
        let mut gate = self.lock();
        gate.open()?;
        let ran = {
            let _writing = Writing::enter();
            // A savepoint: a write that fails is rolled back alone.
            catch_unwind(AssertUnwindSafe(|| gate.conn.transaction(f)))
        };
        if ran.is_err() {
            // diesel does not roll back a savepoint whose closure panicked.
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(
                &mut gate.conn,
            );
        }
        let committed = if !gate.intact() {
            Err(gate.abandon(&self.reopen, "the write transaction broke"))
        } else {
            let batch = gate.batch.as_mut().expect("opened above");
            batch.writes += 1;
            if batch.writes < MAX_BATCH && self.waiting.load(Ordering::SeqCst) > 0 {
                // Someone is about to take the writer: it (or one after it) commits.
                let ended = batch.ended.clone();
                drop(gate);
                match &ran {
                    Ok(Ok(_)) => ended.wait(),
                    _ => Ok(()), // nothing of this write is left to commit
                }
            } else {
                gate.commit(&self.reopen)
            }
        };
        match ran {
            Err(panic) => resume_unwind(panic),
            Ok(Err(e)) => Err(e),
            Ok(Ok(value)) => committed.map(|()| value).map_err(|why| {
                E::from(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::Unknown,
                    Box::new(format!("the group commit failed: {why}")),
                ))
            }),
        }
    }
}

impl Gate {
    /// Begins a batch's transaction unless one is open. `BEGIN IMMEDIATE` takes SQLite's
    /// write lock when it begins: the batch neither fails later upgrading a read (when
    /// another process wrote meanwhile) nor holds a stale snapshot.
    ///
    /// This replaced a no-op `UPDATE requests … WHERE 1 = 0` after a plain `BEGIN`: SQLite
    /// parsed and compiled that statement (with every index of `requests`) for each write,
    /// about 5% of a submission's CPU in `bench intake`.
    fn open(&mut self) -> diesel::QueryResult<()> {
        if self.batch.is_some() {
            return Ok(());
        }
        let DbConnection::Sqlite(sqlite) = &mut self.conn else {
            unreachable!("the writer is a SQLite connection");
        };
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
        self.batch = Some(Batch {
            writes: 0,
            ended: Arc::default(),
        });
        Ok(())
    }

    /// Whether the batch's transaction is open at its own level (no savepoint left open, the
    /// transaction manager not broken), so later writes can join it.
    fn intact(&mut self) -> bool {
        matches!(self.depth(), Ok(Some(depth)) if depth.get() == 1)
    }

    /// Commits the batch and tells its waiting writes how that went.
    fn commit(&mut self, reopen: &Reopen) -> Result<(), String> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        type Manager = <DbConnection as Connection>::TransactionManager;
        let result = Manager::commit_transaction(&mut self.conn).map_err(|e| e.to_string());
        match &result {
            Ok(()) => self.commits += 1,
            Err(_) if !matches!(self.depth(), Ok(None)) => self.replace(reopen),
            Err(_) => {}
        }
        batch.ended.set(result.clone());
        result
    }

    /// Gives up the batch's transaction: a fresh connection replaces the writer (closing the
    /// old one rolls its transaction back, which diesel cannot do once its transaction manager
    /// is broken), and the batch's writes fail.
    fn abandon(&mut self, reopen: &Reopen, why: &str) -> String {
        self.replace(reopen);
        if let Some(batch) = self.batch.take() {
            batch.ended.set(Err(why.to_owned()));
        }
        why.to_owned()
    }

    fn depth(&mut self) -> diesel::QueryResult<Option<std::num::NonZeroU32>> {
        let DbConnection::Sqlite(sqlite) = &mut self.conn else {
            return Ok(None);
        };
        AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth()
    }

    fn replace(&mut self, reopen: &Reopen) {
        match reopen() {
            Ok(fresh) => self.conn = fresh,
            Err(e) => {
                tracing::error!(error = %e, "could not reopen the writer");
                let _ = self.conn.batch_execute("ROLLBACK");
            }
        }
    }
}

thread_local! {
    /// Whether this thread is inside a writing transaction (a write inside it nests there).
    static WRITING: Cell<bool> = const { Cell::new(false) };
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
/// - SQLite: waits for this process's writer and runs `f` on it (not on `c`), in a savepoint
///   of the writer's open batch (see the module's comment); returns once that is committed.
///   Inside another write (where `c` is the writer), a nested transaction on `c`. Without a
///   writer in scope (a connection made outside a `Database`), a transaction of its own on `c`
///   that takes the write lock when it begins.
pub fn write<T, E, F>(c: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if matches!(c, DbConnection::Postgres(_)) || WRITING.with(Cell::get) {
        return c.transaction(f);
    }
    match super::fields::writer() {
        Some(writer) => writer.run(f),
        None => immediate(c, f),
    }
}

/// A transaction of its own on `c`, begun with `BEGIN IMMEDIATE` (see [`Gate::open`]), then
/// committed or rolled back through `c`'s transaction manager as diesel's `transaction` does
/// (diesel's `immediate_transaction` would hand `f` the SQLite connection, not `c`).
fn immediate<T, E, F>(c: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
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
        let (path, writer) = gate_db(
            dir.path(),
            "CREATE TABLE counter (n BIGINT NOT NULL); INSERT INTO counter VALUES (0);",
        );
        let mut setup = open(&path);
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

    /// Waits until another thread has asked for the writer (so this write's batch stays open
    /// for it).
    fn until_someone_waits(writer: &Writer) {
        while writer.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
    }

    fn count(c: &mut DbConnection, table: &str) -> i64 {
        diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result::<N>(c)
            .unwrap()
            .n
    }

    /// A database made by `ddl`, and its writer, whose connections enforce foreign keys.
    fn gate_db(dir: &std::path::Path, ddl: &str) -> (std::path::PathBuf, Arc<Writer>) {
        let path = dir.join("batch.db");
        open(&path)
            .batch_execute(&format!("PRAGMA journal_mode = WAL; {ddl}"))
            .unwrap();
        let connect = {
            let path = path.clone();
            move || {
                let mut c = open(&path);
                c.batch_execute("PRAGMA foreign_keys = ON;")
                    .map_err(|e| e.to_string())?;
                Ok(c)
            }
        };
        let writer = Writer::new(connect().unwrap(), connect);
        (path, writer)
    }

    #[test]
    fn writes_that_arrive_together_commit_together_and_each_returns_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = gate_db(dir.path(), "CREATE TABLE rows (id INTEGER PRIMARY KEY);");
        let vault = Arc::new(Vault::generate());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (writer, path, vault) = (writer.clone(), path.clone(), vault.clone());
                std::thread::spawn(move || {
                    let _scope = Scope::enter(&vault, Some(&writer));
                    let (mut mine, mut reader) = (open(&path), open(&path));
                    for i in 0..50 {
                        let id = t * 1000 + i;
                        write::<_, diesel::result::Error, _>(&mut mine, |c| {
                            diesel::sql_query(format!("INSERT INTO rows VALUES ({id})"))
                                .execute(c)?;
                            // Long enough for the other threads to queue behind it.
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            Ok(())
                        })
                        .unwrap();
                        // Returned means committed: another connection sees it at once.
                        let seen = diesel::sql_query(format!(
                            "SELECT count(*) AS n FROM rows WHERE id = {id}"
                        ))
                        .get_result::<N>(&mut reader)
                        .unwrap()
                        .n;
                        assert_eq!(seen, 1, "write {id} returned before it was committed");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(count(&mut open(&path), "rows"), 400);
        let commits = writer.commits();
        assert!(
            commits < 400,
            "400 writes from 8 threads took {commits} commits: none were grouped"
        );
    }

    /// Runs `first` on this thread and `second` on another once `first` has begun, so both
    /// are in one batch: `first` waits inside until `second` waits for the writer.
    fn batch_of_two(
        path: &std::path::Path,
        writer: &Arc<Writer>,
        first: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<usize>,
        second: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<usize> + Send + 'static,
    ) -> (diesel::QueryResult<()>, diesel::QueryResult<()>) {
        let vault = Arc::new(Vault::generate());
        let (began, begun) = std::sync::mpsc::channel();
        let other = {
            let (writer, path, vault) = (writer.clone(), path.to_owned(), vault.clone());
            std::thread::spawn(move || {
                let _scope = Scope::enter(&vault, Some(&writer));
                begun.recv().unwrap();
                write(&mut open(&path), |c| second(c).map(drop))
            })
        };
        let _scope = Scope::enter(&vault, Some(writer));
        let mine = write(&mut open(path), |c| {
            first(c)?;
            began.send(()).unwrap();
            until_someone_waits(writer);
            Ok(())
        });
        (mine, other.join().unwrap())
    }

    #[test]
    fn a_failed_commit_fails_every_write_of_its_batch_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        // A deferred foreign key is checked at COMMIT: a write that breaks it makes the
        // batch's commit fail after each write itself succeeded.
        let (path, writer) = gate_db(
            dir.path(),
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER \
             REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        );
        let (first, second) = batch_of_two(
            &path,
            &writer,
            |c| diesel::sql_query("INSERT INTO child VALUES (1, 99)").execute(c),
            |c| diesel::sql_query("INSERT INTO parent VALUES (1)").execute(c),
        );
        assert!(first.is_err(), "the write that broke the key was committed");
        assert!(
            second.is_err(),
            "a write whose batch did not commit said it did"
        );
        let mut check = open(&path);
        assert_eq!(count(&mut check, "child") + count(&mut check, "parent"), 0);

        let _scope = Scope::enter(&Arc::new(Vault::generate()), Some(&writer));
        write::<_, diesel::result::Error, _>(&mut open(&path), |c| {
            diesel::sql_query("INSERT INTO parent VALUES (2)").execute(c)
        })
        .unwrap();
        assert_eq!(
            count(&mut check, "parent"),
            1,
            "the writer works after the failure"
        );
    }

    #[test]
    fn a_write_that_fails_or_panics_in_a_batch_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = gate_db(dir.path(), "CREATE TABLE rows (id INTEGER PRIMARY KEY);");
        let (first, second) = batch_of_two(
            &path,
            &writer,
            |c| diesel::sql_query("INSERT INTO rows VALUES (1)").execute(c),
            // Breaks the primary key after writing a row of its own.
            |c| {
                diesel::sql_query("INSERT INTO rows VALUES (2)").execute(c)?;
                diesel::sql_query("INSERT INTO rows VALUES (1)").execute(c)
            },
        );
        assert!(first.is_ok() && second.is_err());
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            batch_of_two(
                &path,
                &writer,
                |c| diesel::sql_query("INSERT INTO rows VALUES (3)").execute(c),
                |c| {
                    diesel::sql_query("INSERT INTO rows VALUES (4)").execute(c)?;
                    panic!("a bug in a write")
                },
            )
        }));
        assert!(panicked.is_err(), "the panic reaches the caller");
        let mut check = open(&path);
        let ids = diesel::sql_query(
            "SELECT group_concat(id) AS s FROM (SELECT id FROM rows ORDER BY id)",
        )
        .get_result::<S>(&mut check)
        .unwrap()
        .s;
        assert_eq!(
            ids, "1,3",
            "each batch kept the write that succeeded, and only it"
        );
    }

    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        s: String,
    }
}

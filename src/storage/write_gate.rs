//! On SQLite, this process writes through one connection, one transaction at a time, in the
//! order writes were queued rather than through SQLite's busy handler, and writes that wait
//! together commit together (group commit).
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
//! [`write`] runs every writing transaction of this process on one connection, the writer:
//! no write sleeps in the busy handler behind another of the same process, and the writer's
//! cache stays warm because nothing else in the process writes. Pooled connections still serve
//! reads in parallel. SQLite's busy timeout remains for writers in other processes (the CLI, a
//! second instance on the same file).
//!
//! **Group commit, by one thread at a time.** Committing writes every page the transaction
//! changed into the log, and a submission changes ~35 pages (a dozen rows, ~20 index entries),
//! most of them the same pages as the submission before it (the right-hand edge of each index,
//! with time-ordered keys). So writes wait in a queue, and one of the waiting threads, the
//! leader, takes the writer and runs the queued writes (at most [`MAX_BATCH`]) one after the
//! other in one transaction, each in a savepoint of its own: one that fails or panics is
//! rolled back alone and the others go on. Then it commits, passes the lead to the thread
//! whose write is next in the queue, and tells each write of its batch how the commit went.
//! `write` returns only once its changes are committed (or fails if the commit failed).
//!
//! Running the others' writes on the leader's thread is what keeps the writer busy: when each
//! thread ran its own write, the writer stood idle ~25% of the time under `bench intake`
//! between one thread letting go and the next, woken, getting a core (two cores, ~60
//! threads), and waiters were served in no order (std's mutex lets a newcomer overtake them).
//! The queue is first come, first served, and a batch costs one hand-over instead of one per
//! write. A write carries its caller's context to the leader: the vault and writer in scope
//! (`fields::Scope`) and the tracing span, so it runs as it would on its own thread. That is
//! also why a write must be `Send`.
//!
//! The writer belongs to the [`Database`](super::Database) (one per SQLite file) and is in
//! scope on a thread while one of that database's pooled connections is held, beside the vault
//! (`fields::Scope`), so storage functions that receive a bare connection find it.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
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
    queue: Mutex<Queue>,
    /// Replaces the connection when its transaction cannot go on (see [`Gate::replace`]).
    reopen: Reopen,
}

/// What the lock of a [`Writer`] guards: held by the leader for one batch, or by
/// [`Writer::exclusive`]. No transaction is left open while it is free.
struct Gate {
    conn: DbConnection,
    /// Transactions committed so far.
    commits: u64,
}

/// The writes waiting for the writer.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Whether some thread leads: runs a batch, or has been told to and is about to. The
    /// thread that queues a write while no one leads leads itself; so a queued write always
    /// has a leader coming, and only one runs at a time.
    led: bool,
}

/// One queued write: the caller's closure, made to run in a savepoint on the writer's
/// connection and to leave its result where the caller waits for it.
struct Job {
    /// Returns whether the write is kept (its savepoint released), so it waits for the commit.
    run: Box<dyn FnOnce(&mut DbConnection) -> bool + Send>,
    turn: Arc<Turn>,
}

/// Where the thread that queued a write waits: to lead, or for how its batch ended.
#[derive(Default)]
struct Turn {
    state: Mutex<TurnState>,
    signal: Condvar,
}

#[derive(Default)]
enum TurnState {
    #[default]
    Waiting,
    Lead,
    Ended(Result<(), String>),
}

impl Turn {
    fn set(&self, state: TurnState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        self.signal.notify_one();
    }

    /// Waits until the write's batch ended (`Ok`: committed) or this thread is to lead
    /// (`None`).
    fn wait(&self) -> Option<Result<(), String>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match std::mem::take(&mut *state) {
                TurnState::Waiting => {
                    state = self.signal.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                TurnState::Lead => return None,
                TurnState::Ended(result) => return Some(result),
            }
        }
    }
}

impl Writer {
    pub fn new(
        conn: DbConnection,
        reopen: impl Fn() -> Result<DbConnection, String> + Send + Sync + 'static,
    ) -> Arc<Writer> {
        Arc::new(Writer {
            gate: Mutex::new(Gate { conn, commits: 0 }),
            queue: Mutex::default(),
            reopen: Box::new(reopen),
        })
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many transactions the writer has committed (each holding one or more writes).
    pub fn commits(&self) -> u64 {
        self.gate().commits
    }

    /// Runs `f` on the writer connection while no write of this process runs (for the
    /// checkpoint that starts the write-ahead log again, which must wait for writers anyway).
    /// Queued writes wait meanwhile; none is left uncommitted.
    pub fn exclusive<T>(&self, f: impl FnOnce(&mut DbConnection) -> T) -> T {
        f(&mut self.gate().conn)
    }

    /// Queues `f` as one write, leads when it is this thread's turn, and returns once the
    /// batch that ran it ended.
    pub(super) fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
        T: Send,
        E: From<diesel::result::Error> + Send,
    {
        if WRITING.with(Cell::get) {
            // Queued, it would wait for the batch it is part of: a bug in the caller, which
            // should nest on the connection it was given (`write`). An error, not a hang.
            return Err(E::from(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new("a write inside a write must use the connection it was given".to_owned()),
            )));
        }
        let mut ran: Option<std::thread::Result<Result<T, E>>> = None;
        let turn = Arc::new(Turn::default());
        let job = job(f, &mut ran);
        // SAFETY: the job borrows `f`'s captures and `ran` from this frame, and may run on
        // the leader's thread. This frame does not return before the job has run or been
        // dropped: every job taken from the queue is run or dropped before its turn is told
        // how its batch ended (`lead`), and this thread waits for that below, whatever
        // happens (waiting cannot unwind: poisoned locks are taken over).
        let job = unsafe {
            std::mem::transmute::<
                Box<dyn FnOnce(&mut DbConnection) -> bool + Send + '_>,
                Box<dyn FnOnce(&mut DbConnection) -> bool + Send + 'static>,
            >(job)
        };
        let mut lead = {
            let mut queue = self.queue();
            queue.jobs.push_back(Job {
                run: job,
                turn: turn.clone(),
            });
            !std::mem::replace(&mut queue.led, true)
        };
        let committed = loop {
            if lead {
                self.lead();
            }
            match turn.wait() {
                Some(ended) => break ended,
                None => lead = true,
            }
        };
        match ran {
            Some(Err(panic)) => resume_unwind(panic),
            Some(Ok(Err(e))) => Err(e),
            Some(Ok(Ok(value))) => committed.map(|()| value).map_err(group_commit_failed),
            // Not run: its batch could not begin.
            None => Err(group_commit_failed(committed.err().unwrap_or_default())),
        }
    }

    /// Runs one batch of the queue (this thread's own write first) in one transaction,
    /// commits it, passes the lead on, and tells the batch's writes how it ended.
    fn lead(&self) {
        let mut gate = self.gate();
        let mut jobs: VecDeque<Job> = {
            let mut queue = self.queue();
            let n = queue.jobs.len().min(MAX_BATCH);
            queue.jobs.drain(..n).collect()
        };
        let mut ended: Vec<(Arc<Turn>, Result<(), String>)> = Vec::with_capacity(jobs.len());
        match gate.open() {
            Err(e) => {
                // Dropped unrun; each write fails.
                let why = format!("could not begin the write: {e}");
                ended.extend(jobs.drain(..).map(|j| (j.turn, Err(why.clone()))));
            }
            Ok(()) => {
                let mut kept = Vec::with_capacity(jobs.len());
                while let Some(job) = jobs.pop_front() {
                    let keep = (job.run)(&mut gate.conn);
                    if !gate.intact() {
                        // Every write of the transaction is lost with it; the ones not run
                        // yet go back to the front of the queue for the next batch.
                        gate.replace(&self.reopen);
                        let why = "the write transaction broke".to_owned();
                        ended.push((job.turn, Err(why.clone())));
                        ended.extend(kept.drain(..).map(|t| (t, Err(why.clone()))));
                        let mut queue = self.queue();
                        for rest in jobs.drain(..).rev() {
                            queue.jobs.push_front(rest);
                        }
                        break;
                    }
                    if keep {
                        kept.push(job.turn);
                    } else {
                        ended.push((job.turn, Ok(()))); // nothing of it to commit
                    }
                }
                // (After an abandoned transaction there is nothing to commit, and no one
                // left in `kept`.)
                let result = match gate.depth() {
                    Ok(Some(_)) => gate.commit(&self.reopen),
                    _ => Err("the write transaction was lost".to_owned()),
                };
                ended.extend(kept.into_iter().map(|t| (t, result.clone())));
            }
        }
        drop(gate);
        {
            let mut queue = self.queue();
            match queue.jobs.front() {
                Some(next) => next.turn.set(TurnState::Lead),
                None => queue.led = false,
            }
        }
        // Woken after the writer is free and the next leader on its way: waking ~30 threads
        // inside the turn made every other write wait for the wake-ups.
        for (turn, result) in ended {
            turn.set(TurnState::Ended(result));
        }
    }
}

/// Makes the job that runs `f` as one write on the leader's thread: in the caller's scope
/// (vault, writer, span), in a savepoint, with its result (or panic) left in `ran`.
fn job<'a, T, E, F>(
    f: F,
    ran: &'a mut Option<std::thread::Result<Result<T, E>>>,
) -> Box<dyn FnOnce(&mut DbConnection) -> bool + Send + 'a>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'a,
    T: Send + 'a,
    E: From<diesel::result::Error> + Send + 'a,
{
    let vault = super::fields::vault().ok();
    let writer = super::fields::writer();
    let span = tracing::Span::current();
    Box::new(move |conn: &mut DbConnection| {
        let _scope = vault.map(|v| super::fields::Scope::enter(&v, writer.as_ref()));
        let _span = span.enter();
        let _writing = Writing::enter();
        // A savepoint: a write that fails is rolled back alone.
        let result = catch_unwind(AssertUnwindSafe(|| conn.transaction(f)));
        if result.is_err() {
            // diesel does not roll back a savepoint whose closure panicked.
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
        }
        let keep = matches!(result, Ok(Ok(_)));
        *ran = Some(result);
        keep
    })
}

fn group_commit_failed<E: From<diesel::result::Error>>(why: String) -> E {
    E::from(diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(format!("the group commit failed: {why}")),
    ))
}

impl Gate {
    /// Begins a batch's transaction. `BEGIN IMMEDIATE` takes SQLite's write lock when it
    /// begins: the batch neither fails later upgrading a read (when another process wrote
    /// meanwhile) nor holds a stale snapshot.
    ///
    /// This replaced a no-op `UPDATE requests … WHERE 1 = 0` after a plain `BEGIN`: SQLite
    /// parsed and compiled that statement (with every index of `requests`) for each write,
    /// about 5% of a submission's CPU in `bench intake`.
    fn open(&mut self) -> diesel::QueryResult<()> {
        let DbConnection::Sqlite(sqlite) = &mut self.conn else {
            unreachable!("the writer is a SQLite connection");
        };
        AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")
    }

    /// Whether the batch's transaction is open at its own level (no savepoint left open, the
    /// transaction manager not broken), so later writes can join it.
    fn intact(&mut self) -> bool {
        matches!(self.depth(), Ok(Some(depth)) if depth.get() == 1)
    }

    /// Commits the batch's transaction.
    fn commit(&mut self, reopen: &Reopen) -> Result<(), String> {
        type Manager = <DbConnection as Connection>::TransactionManager;
        let result = Manager::commit_transaction(&mut self.conn).map_err(|e| e.to_string());
        match &result {
            Ok(()) => self.commits += 1,
            Err(_) if !matches!(self.depth(), Ok(None)) => self.replace(reopen),
            Err(_) => {}
        }
        result
    }

    fn depth(&mut self) -> diesel::QueryResult<Option<std::num::NonZeroU32>> {
        let DbConnection::Sqlite(sqlite) = &mut self.conn else {
            return Ok(None);
        };
        AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth()
    }

    /// A fresh connection in place of the writer's, whose transaction cannot go on (a failed
    /// commit, a broken transaction manager); closing the old one rolls it back.
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
/// - SQLite: queues `f` for this process's writer, which runs it (not on `c`, and maybe on
///   another thread) in a savepoint of a batch (see the module's comment); returns once that
///   is committed.
///   Inside another write (where `c` is the writer), a nested transaction on `c`. Without a
///   writer in scope (a connection made outside a `Database`), a transaction of its own on `c`
///   that takes the write lock when it begins.
pub fn write<T, E, F>(c: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<diesel::result::Error> + Send,
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

    type TestWrite = dyn FnOnce(&mut DbConnection) -> diesel::QueryResult<usize> + Send;

    /// Runs `first` and `second` as the two writes of one batch: each is queued from a thread
    /// of its own while the writer is held, `first` first, then the writer is let go.
    fn batch_of_two(
        path: &std::path::Path,
        writer: &Arc<Writer>,
        first: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<usize> + Send + 'static,
        second: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<usize> + Send + 'static,
    ) -> (diesel::QueryResult<()>, diesel::QueryResult<()>) {
        let vault = Arc::new(Vault::generate());
        let queue = |f: Box<TestWrite>| {
            let (writer, path, vault) = (writer.clone(), path.to_owned(), vault.clone());
            std::thread::spawn(move || {
                let _scope = Scope::enter(&vault, Some(&writer));
                write(&mut open(&path), |c| f(c).map(drop))
            })
        };
        let (a, b) = writer.exclusive(|_| {
            let a = queue(Box::new(first));
            until_queued(writer, 1);
            let b = queue(Box::new(second));
            until_queued(writer, 2);
            (a, b)
        });
        let (a, b) = (a.join(), b.join());
        (
            a.unwrap_or_else(|p| resume_unwind(p)),
            b.unwrap_or_else(|p| resume_unwind(p)),
        )
    }

    /// One write through `writer`, which must succeed.
    fn write_once(path: &std::path::Path, writer: &Arc<Writer>, sql: &'static str) {
        let _scope = Scope::enter(&Arc::new(Vault::generate()), Some(writer));
        write::<_, diesel::result::Error, _>(&mut open(path), |c| {
            diesel::sql_query(sql).execute(c)
        })
        .unwrap();
    }

    fn until_queued(writer: &Writer, n: usize) {
        while writer.queue().jobs.len() < n {
            std::thread::yield_now();
        }
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

        write_once(&path, &writer, "INSERT INTO parent VALUES (2)");
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

    /// A write started inside another through the writer itself (not through the connection
    /// the outer one was given) fails at once instead of waiting for its own batch.
    #[test]
    fn a_write_queued_from_inside_a_write_fails_instead_of_waiting_for_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = gate_db(dir.path(), "CREATE TABLE rows (id INTEGER PRIMARY KEY);");
        let inner = writer.run::<_, diesel::result::Error, _>(|c| {
            diesel::sql_query("INSERT INTO rows VALUES (1)").execute(c)?;
            Ok(writer.run::<_, diesel::result::Error, _>(|c| {
                diesel::sql_query("INSERT INTO rows VALUES (2)").execute(c)
            }))
        });
        let inner = inner.unwrap().expect_err("the inner write ran");
        assert!(inner.to_string().contains("inside a write"), "{inner}");
        assert_eq!(
            count(&mut open(&path), "rows"),
            1,
            "the outer write is kept"
        );
    }

    /// A write that ends the batch's transaction under the writer (here a bare `ROLLBACK`)
    /// loses the writes before it in the batch: each fails, none is half kept, and the writer
    /// goes on with a fresh connection.
    #[test]
    fn a_write_that_breaks_the_transaction_fails_its_batch_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = gate_db(dir.path(), "CREATE TABLE rows (id INTEGER PRIMARY KEY);");
        let (first, second) = batch_of_two(
            &path,
            &writer,
            |c| diesel::sql_query("INSERT INTO rows VALUES (1)").execute(c),
            |c| {
                diesel::sql_query("INSERT INTO rows VALUES (2)").execute(c)?;
                c.batch_execute("ROLLBACK").map(|()| 0)
            },
        );
        let lost = first.expect_err("a write whose transaction was rolled back said it was kept");
        assert!(lost.to_string().contains("broke"), "{lost}");
        assert!(second.is_err());
        assert_eq!(count(&mut open(&path), "rows"), 0);

        write_once(&path, &writer, "INSERT INTO rows VALUES (3)");
        assert_eq!(
            count(&mut open(&path), "rows"),
            1,
            "the writer works after it"
        );
    }

    /// A write queued by one thread may run on another (the leader's): it runs there with its
    /// own caller's vault in scope, not the leader's.
    #[test]
    fn a_write_run_by_the_leader_sees_its_own_callers_vault() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = gate_db(dir.path(), "CREATE TABLE rows (id INTEGER PRIMARY KEY);");
        let queue = |id: i64| {
            let (writer, path) = (writer.clone(), path.clone());
            std::thread::spawn(move || {
                let vault = Arc::new(Vault::generate());
                let _scope = Scope::enter(&vault, Some(&writer));
                write::<_, diesel::result::Error, _>(&mut open(&path), |c| {
                    diesel::sql_query(format!("INSERT INTO rows VALUES ({id})")).execute(c)?;
                    let here = crate::storage::fields::vault().unwrap();
                    Ok((Arc::ptr_eq(&here, &vault), std::thread::current().id()))
                })
                .map(|(own, ran_on)| (own, ran_on == std::thread::current().id()))
            })
        };
        let (a, b) = writer.exclusive(|_| {
            let a = queue(1);
            until_queued(&writer, 1);
            let b = queue(2);
            until_queued(&writer, 2);
            (a, b)
        });
        let (a, b) = (a.join().unwrap().unwrap(), b.join().unwrap().unwrap());
        assert_eq!(a, (true, true), "the leader ran its own write");
        assert_eq!(
            b,
            (true, false),
            "the leader ran the second write, in its caller's scope"
        );
        assert_eq!(count(&mut open(&path), "rows"), 2);
    }

    #[derive(QueryableByName)]
    struct S {
        #[diesel(sql_type = diesel::sql_types::Text)]
        s: String,
    }
}

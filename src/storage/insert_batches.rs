//! On PostgreSQL, writes that only insert rows (a submission: the request, its blind index,
//! event, outbox rows and first code) and wait at the same time are committed together, in one
//! transaction: group commit, as `write_gate` does on SQLite.
//!
//! Why: alone, a submission is one statement and its commit, and PostgreSQL's time per
//! submission went mostly to what every statement and commit costs whatever it holds (the
//! round trip, starting the executor, flushing the log at commit), not to the rows
//! (docs/PERFORMANCE.md, seventh round). Committed 32 at a time, a submission costs about half
//! of PostgreSQL's time.
//!
//! How: a write queues its rows. While fewer than [`LEADERS`] threads lead, the thread that
//! queues leads itself: it takes its own rows and those waiting behind (at most
//! [`MAX_BATCH`]), runs them on a pooled connection, and before it returns hands the lead to
//! the thread of the next waiting rows (taking them out of the queue, so no one else runs
//! them) or, with none waiting, gives up its place. So rows queued always have a leader
//! coming, and at most `LEADERS` batches run at a time, each on its own connection.
//!
//! - One write alone is its one statement, committed by itself, as before batching.
//! - Several are `BEGIN`, each write's statement, `COMMIT`. Rows are inserted in their
//!   [`lock_order`](super::inserts::Writes::lock_order): a request's tallies are updated by
//!   trigger at commit, row by row, and two batches locking the same tally rows in different
//!   orders deadlocked (PostgreSQL ends one after a second).
//! - If a statement fails (a clash of keys) or the server refuses the commit (a deadlock all
//!   the same), nothing of the batch is kept, and each write is run again alone, so each gets
//!   its own outcome and one write's clash does not fail the others.
//! - If the commit's outcome is unknown (the connection was lost while committing), every
//!   write of the batch fails with that error rather than being run again: running it again
//!   could store it twice.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::Connection;

use super::inserts::Rows;
use super::{DbConnection, StoreError};

/// The most writes committed in one transaction.
pub const MAX_BATCH: usize = 32;

/// The most batches running at a time (each on a pooled connection). Two keep PostgreSQL busy
/// while a batch's results travel back and the next one is gathered.
pub const LEADERS: usize = 2;

/// The queue of one PostgreSQL database's inserting writes.
#[derive(Default)]
pub struct Batches {
    queue: Mutex<Queue>,
    /// Writes queued or being written, not yet returned.
    pending: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads leading now, or told to and on their way.
    leaders: usize,
}

struct Job {
    rows: Rows,
    turn: Arc<Turn>,
}

/// Where the thread that queued rows waits: to lead (handed its rows back), or for how they
/// were written.
#[derive(Default)]
struct Turn {
    state: Mutex<State>,
    signal: Condvar,
}

#[derive(Default)]
enum State {
    #[default]
    Waiting,
    Lead(Job),
    Ended(Result<(), StoreError>),
}

impl Turn {
    fn set(&self, state: State) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        self.signal.notify_one();
    }

    fn wait(&self) -> State {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match std::mem::take(&mut *state) {
                State::Waiting => {
                    state = self.signal.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                other => return other,
            }
        }
    }
}

impl Batches {
    /// How many writes are queued or being written.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `rows`, with other writes' waiting at the same time, on connections from
    /// `connect`; returns once they are committed or have failed.
    pub fn write<C>(
        &self,
        rows: Rows,
        connect: impl Fn() -> Result<C, StoreError>,
    ) -> Result<(), StoreError>
    where
        C: std::ops::DerefMut<Target = DbConnection>,
    {
        let turn = Arc::new(Turn::default());
        let job = Job {
            rows,
            turn: turn.clone(),
        };
        let lead = {
            let mut queue = self.queue();
            self.pending.fetch_add(1, Ordering::SeqCst);
            if queue.leaders < LEADERS {
                queue.leaders += 1;
                Some(job)
            } else {
                queue.jobs.push_back(job);
                None
            }
        };
        if let Some(job) = lead {
            self.lead(job, &connect);
        }
        loop {
            match turn.wait() {
                State::Ended(result) => {
                    self.pending.fetch_sub(1, Ordering::SeqCst);
                    return result;
                }
                State::Lead(job) => self.lead(job, &connect),
                State::Waiting => unreachable!("wait returns once the state changed"),
            }
        }
    }

    /// Runs `first` and the rows waiting behind it as one batch, hands the lead on, then tells
    /// each write of the batch how it ended.
    fn lead<C>(&self, first: Job, connect: &impl Fn() -> Result<C, StoreError>)
    where
        C: std::ops::DerefMut<Target = DbConnection>,
    {
        let mut jobs = vec![first];
        {
            let mut queue = self.queue();
            let n = queue.jobs.len().min(MAX_BATCH - 1);
            jobs.extend(queue.jobs.drain(..n));
        }
        // Rows locking shared rows go in one order in every batch (see the module's comment).
        jobs.sort_by(|a, b| a.rows.order().cmp(&b.rows.order()));
        let rows: Vec<&Rows> = jobs.iter().map(|j| &j.rows).collect();
        let results = catch_unwind(AssertUnwindSafe(|| match connect() {
            Ok(mut conn) => write_together(&mut conn, &rows),
            Err(e) => rows.iter().map(|_| Err(copy(&e))).collect(),
        }))
        .unwrap_or_else(|_| {
            let why = "writing the batch panicked";
            rows.iter()
                .map(|_| Err(StoreError::Unavailable(why.to_owned())))
                .collect()
        });
        {
            let mut queue = self.queue();
            match queue.jobs.pop_front() {
                Some(next) => next.turn.clone().set(State::Lead(next)),
                None => queue.leaders -= 1,
            }
        }
        for (job, result) in jobs.into_iter().zip(results) {
            job.turn.set(State::Ended(result));
        }
    }
}

/// Writes each of `batch` on `c`, in one transaction when there are several; one result each
/// (see the module's comment).
pub fn write_together(c: &mut DbConnection, batch: &[&Rows]) -> Vec<Result<(), StoreError>> {
    if let [alone] = batch {
        return vec![alone.write_on(c)];
    }
    let mut committing = false;
    let together = c.transaction::<_, StoreError, _>(|c| {
        for rows in batch {
            rows.write_on(c)?;
        }
        committing = true;
        Ok(())
    });
    match together {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        Err(e) if committing && !refused_by_server(&e) => {
            let why = format!("the outcome of a group commit is unknown: {e}");
            batch
                .iter()
                .map(|_| Err(StoreError::Unavailable(why.clone())))
                .collect()
        }
        // Nothing was kept: each on its own, for its own outcome.
        Err(_) => batch.iter().map(|rows| rows.write_on(c)).collect(),
    }
}

/// Whether PostgreSQL answered with an error (so the transaction is rolled back), rather than
/// the connection failing (so the commit may have happened).
fn refused_by_server(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Query(DieselError::DatabaseError(kind, _))
            if !matches!(kind, DatabaseErrorKind::ClosedConnection)
    )
}

/// The error of a batch that could not get a connection, for each of its writes.
fn copy(e: &StoreError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only an error PostgreSQL answered with means nothing was kept; a lost connection
    /// leaves the commit's outcome unknown.
    #[test]
    fn only_an_answered_error_means_the_batch_was_not_kept() {
        let answered =
            |kind| StoreError::Query(DieselError::DatabaseError(kind, Box::new("x".to_owned())));
        assert!(refused_by_server(&answered(
            DatabaseErrorKind::UniqueViolation
        )));
        assert!(refused_by_server(&answered(
            DatabaseErrorKind::SerializationFailure
        )));
        assert!(refused_by_server(&answered(DatabaseErrorKind::Unknown)));
        assert!(!refused_by_server(&answered(
            DatabaseErrorKind::ClosedConnection
        )));
        assert!(!refused_by_server(&StoreError::Query(
            DieselError::BrokenTransactionManager
        )));
        assert!(!refused_by_server(&StoreError::Unavailable("gone".into())));
    }
}

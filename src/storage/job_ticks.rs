//! Claims of scheduled-job ticks: with several instances on one database, each scheduled job
//! runs once per tick across all of them. A tick is the job's period counted from the Unix
//! epoch, so every instance with the same period agrees on it; the first instance to insert
//! `(job, tick)` runs that tick, the others find the row and skip it. A claimant that dies
//! mid-run loses its tick; the jobs are sweeps, so the next tick finds what it left.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::job_ticks;
use super::{to_db_time, DbConnection, StoreError};

/// Ticks older than this many are deleted when a newer one is claimed (they only served to
/// keep a tick from running twice).
const KEEP_TICKS: i64 = 1000;

/// The tick `now` falls in for a job run every `period_seconds`.
pub fn tick_of(now: DateTime<Utc>, period_seconds: u64) -> i64 {
    now.timestamp()
        .div_euclid(i64::try_from(period_seconds.max(1)).unwrap_or(i64::MAX))
}

/// Claims `tick` of `job` for `instance`: true for the first instance to ask, false for every
/// later one.
pub fn claim(
    c: &mut DbConnection,
    job: &str,
    tick: i64,
    instance: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // Not inside a transaction: on PostgreSQL a refused insert would end it.
    let inserted = diesel::insert_into(job_ticks::table)
        .values((
            job_ticks::job.eq(job),
            job_ticks::tick.eq(tick),
            job_ticks::instance.eq(instance),
            job_ticks::at.eq(to_db_time(now)),
        ))
        .execute(c)
        .map_err(|e| super::requests::duplicate_as(e, "job tick"));
    match inserted {
        Ok(_) => {
            diesel::delete(
                job_ticks::table
                    .filter(job_ticks::job.eq(job))
                    .filter(job_ticks::tick.lt(tick - KEEP_TICKS)),
            )
            .execute(c)?;
            Ok(true)
        }
        Err(StoreError::Duplicate(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_agree_on_ticks() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T12:00:59Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            tick_of(t, 60),
            tick_of(t - chrono::Duration::seconds(59), 60)
        );
        assert_eq!(
            tick_of(t, 60) + 1,
            tick_of(t + chrono::Duration::seconds(1), 60)
        );
        assert_eq!(tick_of(t, 0), t.timestamp(), "a zero period counts seconds");
    }
}

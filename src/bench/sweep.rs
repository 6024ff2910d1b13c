//! `rightsflow bench sweep`: the clock sweep among 1,000,000 open requests — finding every
//! request due within N working days (and every overdue one) that still needs a reminder —
//! timed against the plainest read of the same index range, in the same run.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use clap::Args;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::json;

use super::console::{seed_with, Lcg};
use crate::domain::Status;
use crate::notifications::reminders::{due_soon_cutoffs, find_needed, Needed};
use crate::service::Services;
use crate::storage::rows::RequestRow;
use crate::storage::schema::{reminders_sent, requests};
use crate::storage::{to_db_time, DbConnection, StoreError};

#[derive(Debug, Args)]
pub struct SweepBenchArgs {
    /// How many open requests the table holds.
    #[arg(long, default_value_t = 1_000_000)]
    pub requests: usize,
    /// The database (postgres://… or a SQLite path). Default: a SQLite file under
    /// target/bench/, reused by later runs.
    #[arg(long)]
    pub database_url: Option<String>,
    /// "Due soon" means within this many working days (the reminders' default).
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// Timed runs of each read, after one untimed.
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// An open request whose clock runs: in review, waiting for the subject or in progress, due
/// within the next 90 days (1% overdue by up to two days), mostly `cn`. The row generator of
/// `bench console`, made open and dated.
fn open_row(i: usize, rng: &mut Lcg, now: DateTime<Utc>) -> Result<RequestRow, StoreError> {
    let mut row = super::console::row(i, rng, now)?;
    let status = [
        Status::InReview,
        Status::AwaitingSubject,
        Status::InProgress,
    ][rng.below(3) as usize];
    let due = if rng.below(100) == 0 {
        now - Duration::minutes(rng.below(48 * 60) as i64 + 1)
    } else {
        now + Duration::minutes(rng.below(90 * 24 * 60) as i64)
    };
    let received = now - Duration::hours(rng.below(24 * 20) as i64 + 1);
    row.status = status.as_str().into();
    row.received_at = to_db_time(received);
    row.verified_at = Some(to_db_time(received + Duration::hours(1)));
    row.due_date = Some(due.date_naive());
    row.due_at = Some(to_db_time(due));
    row.closed_at = None;
    row.rejection_reason = None;
    row.created_at = to_db_time(received);
    row.updated_at = to_db_time(received);
    row.verified_methods = "email_code".into();
    Ok(row)
}

/// The floor: the ids of the open requests in the index range the sweep reads, nothing more
/// (no reminder check, no calendar, no columns beyond the id).
fn plain_range(conn: &mut DbConnection, horizon: DateTime<Utc>) -> Result<usize, StoreError> {
    let ids: Vec<String> = requests::table
        .filter(crate::storage::requests::open_condition())
        .filter(requests::due_at.le(to_db_time(horizon)))
        .select(requests::id)
        .load(conn)?;
    Ok(ids.len())
}

/// Medians and worst of `samples` runs of `f` (after one untimed), and what the last run found.
fn timed<T>(
    samples: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(f64, f64, T)> {
    f()?;
    let mut times = Vec::with_capacity(samples);
    let mut last = None;
    for _ in 0..samples {
        let began = Instant::now();
        let found = f()?;
        times.push(began.elapsed().as_secs_f64() * 1000.0);
        last = Some(found);
    }
    times.sort_by(f64::total_cmp);
    let found = last.ok_or_else(|| anyhow::anyhow!("no samples"))?;
    Ok((times[times.len() / 2], times[times.len() - 1], found))
}

/// Records every found reminder as sent (without queueing mail): the state after a sweep.
fn mark_reminded(s: &Services, needed: &[Needed], now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut conn = s.db().conn()?;
    crate::storage::db::write::<_, StoreError, _>(&mut conn, |c| {
        for n in needed {
            diesel::insert_into(reminders_sent::table)
                .values((
                    reminders_sent::request_id.eq(&n.request.id),
                    reminders_sent::kind.eq(n.message.as_str()),
                    reminders_sent::due_at.eq(to_db_time(n.due_at)),
                    reminders_sent::sent_at.eq(to_db_time(now)),
                ))
                .execute(c)?;
        }
        Ok(())
    })?;
    Ok(())
}

pub async fn sweep(args: SweepBenchArgs) -> anyhow::Result<()> {
    let dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&dir)?;
    let database_url = args.database_url.clone().unwrap_or_else(|| {
        dir.join(format!("sweep-{}.db", args.requests))
            .display()
            .to_string()
    });
    let config = super::config(&dir, database_url);
    let services = crate::startup::services(&config).await?;
    let backend = services.db().backend().as_str();
    let (samples, days, n) = (args.samples.max(1), args.days, args.requests);
    let s = services.clone();
    let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        eprintln!("seeding {n} open requests into {backend} (kept for later runs)…");
        let seeded = seed_with(s.db(), n, open_row)?;
        let mut conn = s.db().conn()?;
        // Earlier runs' reminders are forgotten: each run starts from the first sweep.
        conn.batch_execute("DELETE FROM reminders_sent")?;
        if seeded > 0 {
            conn.batch_execute(if backend == "postgres" {
                "VACUUM ANALYZE requests"
            } else {
                "PRAGMA analysis_limit=0; ANALYZE"
            })?;
        }
        drop(conn);
        let now = Utc::now();
        let horizon = due_soon_cutoffs(&s, days, now)
            .into_iter()
            .map(|(_, t)| t)
            .fold(now, DateTime::max);
        let floor = timed(samples, || Ok(plain_range(&mut *s.db().conn()?, horizon)?))?;
        let first = timed(samples, || Ok(find_needed(&s, days, now, None)?))?;
        mark_reminded(&s, &first.2, now)?;
        let after = timed(samples, || Ok(find_needed(&s, days, now, None)?.len()))?;
        let overdue = first
            .2
            .iter()
            .filter(|r| r.message == crate::domain::Message::Overdue)
            .count();
        Ok((floor, (first.0, first.1, first.2.len()), overdue, after))
    })
    .await??;
    let (floor, first, overdue, after) = figures;
    println!(
        "\nrightsflow bench sweep — {n} open requests on {backend}, due within {days} working days, {samples} samples, {}",
        Utc::now().format("%Y-%m-%d")
    );
    println!(
        "{:<58} {:>9} {:>9} {:>9} {:>11}",
        "read", "found", "p50 ms", "max ms", "p50/floor"
    );
    let rows = [
        (
            "open ids in the range read (floor)",
            floor.2,
            floor.0,
            floor.1,
        ),
        (
            "clock sweep, first: every reminder needed",
            first.2,
            first.0,
            first.1,
        ),
        (
            "clock sweep, after those were sent: nothing new",
            after.2,
            after.0,
            after.1,
        ),
    ];
    for (name, found, p50, max) in rows {
        println!(
            "{name:<58} {found:>9} {p50:>9.1} {max:>9.1} {:>10.2}x",
            p50 / floor.0.max(0.001)
        );
    }
    println!("({overdue} of the first sweep's reminders are overdue ones)");
    println!("goal: finding them among 1,000,000 open requests in under 1 s");
    if let Some(path) = &args.json {
        let figures: Vec<_> = rows
            .iter()
            .map(|(name, found, p50, max)| json!({ "read": name, "found": found, "p50_ms": p50, "max_ms": max, "p50_over_floor": p50 / floor.0.max(0.001) }))
            .collect();
        let doc = json!({ "bench": "sweep", "requests": n, "backend": backend, "days": days, "samples": samples, "date": Utc::now().to_rfc3339(), "figures": figures });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}

//! `rightsflow bench console`: the staff console under a large table. Seeds a database with
//! N requests (1,000,000 by default; kept between runs), starts the application on it, signs
//! in, and times the first page of the default queue and the dashboard over HTTP, against
//! `/healthz` on the same server in the same run (the floor: what any request costs). Prints
//! a table and, with `--json`, writes the figures. Figures are printed, not asserted.

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use clap::Args;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::json;

use crate::config::Config;
use crate::domain::{Jurisdiction, RequestKind, Status};
use crate::startup::{open_database, Application};
use crate::storage::rows::{self, RequestRow};
use crate::storage::schema::requests;
use crate::storage::{fields, to_db_time, Database, DbConnection, StoreError};

#[derive(Debug, Args)]
pub struct ConsoleBenchArgs {
    /// How many requests the table holds.
    #[arg(long, default_value_t = 1_000_000)]
    pub requests: usize,
    /// The database (postgres://… or a SQLite path). Default: a SQLite file under
    /// target/bench/, reused by later runs.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Timed requests per page, after 10 untimed ones.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A small deterministic generator: the same table every run.
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn reference(i: usize) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut n = i as u64;
    let mut s = [b'0'; 8];
    for slot in s.iter_mut().rev() {
        *slot = ALPHABET[(n % 32) as usize];
        n /= 32;
    }
    let text = String::from_utf8_lossy(&s).into_owned();
    format!("DSR-{}-{}", &text[..4], &text[4..])
}

/// One generated request: 20% open (spread over the open statuses, due within ±60 days),
/// 80% ended in the last two years; mostly `cn`.
/// One request as the bench stores it: contact sealed as the service seals it (inside a
/// database scope), so reading the queue pays for opening it.
pub(super) fn row(
    i: usize,
    rng: &mut Lcg,
    now: chrono::DateTime<Utc>,
) -> Result<RequestRow, StoreError> {
    let kind = RequestKind::ALL[rng.below(RequestKind::ALL.len() as u64) as usize];
    let jurisdiction = match rng.below(10) {
        0 => Jurisdiction::Eu,
        1 => Jurisdiction::UsCa,
        _ => Jurisdiction::Cn,
    };
    let open = rng.below(5) == 0;
    let status = if open {
        [
            Status::AwaitingVerification,
            Status::InReview,
            Status::AwaitingSubject,
            Status::InProgress,
        ][rng.below(4) as usize]
    } else {
        [
            Status::Completed,
            Status::Completed,
            Status::Completed,
            Status::Rejected,
            Status::Withdrawn,
            Status::Expired,
        ][rng.below(6) as usize]
    };
    let received = if open {
        now - Duration::hours(rng.below(24 * 40) as i64)
    } else {
        now - Duration::hours(rng.below(24 * 730) as i64 + 24 * 20)
    };
    let verified = (status != Status::AwaitingVerification && status != Status::Expired)
        .then(|| received + Duration::hours(2));
    let due = verified.map(|v| {
        if open {
            now + Duration::hours(rng.below(24 * 120) as i64) - Duration::days(60)
        } else {
            v + Duration::days(21)
        }
    });
    let closed = (!open).then(|| received + Duration::hours(rng.below(24 * 30) as i64 + 1));
    let id = format!("bench-{i:08}");
    Ok(RequestRow {
        subject_email: Some(fields::seal(
            rows::EMAIL,
            &id,
            &format!("subject{i}@bench.test"),
        )?),
        id,
        reference: reference(i),
        kind: kind.as_str().into(),
        jurisdiction: jurisdiction.as_str().into(),
        status: status.as_str().into(),
        locale: "zh-CN".into(),
        channel: "online".into(),
        subject_name: None,
        subject_phone: None,
        details: "{}".into(),
        received_at: to_db_time(received),
        verified_at: verified.map(to_db_time),
        due_date: due.map(|d| d.date_naive()),
        due_at: due.map(to_db_time),
        due_warnings: "[]".into(),
        acknowledge_date: None,
        acknowledge_at: None,
        extended_at: None,
        assignee_id: None,
        first_approval_by: None,
        approved_at: None,
        fulfilment_started_at: None,
        closed_at: closed.map(to_db_time),
        rejection_reason: (status == Status::Rejected).then(|| "excessive".into()),
        version: 2,
        created_at: to_db_time(received),
        updated_at: to_db_time(closed.unwrap_or(received)),
        verified_methods: if verified.is_some() {
            "email_code".into()
        } else {
            String::new()
        },
        representative: None,
        platform_user_id: None,
        duplicate_of: None,
    })
}

/// Fills the table up to `n` generated requests (what is there already is kept). Also used by
/// the tests of the dashboard's kept figures.
pub fn seed(db: &Database, n: usize) -> anyhow::Result<usize> {
    seed_with(db, n, row)
}

/// One generated request row: its number, the generator, the time of the run.
pub(super) type MakeRow =
    fn(usize, &mut Lcg, chrono::DateTime<Utc>) -> Result<RequestRow, StoreError>;

/// Fills the table up to `n` requests made by `make` (what is there already is kept).
pub(super) fn seed_with(db: &Database, n: usize, make: MakeRow) -> anyhow::Result<usize> {
    let mut conn = db.conn()?;
    let have: i64 = requests::table
        .filter(requests::id.like("bench-%"))
        .count()
        .get_result(&mut *conn)?;
    let start = have as usize;
    if start >= n {
        return Ok(0);
    }
    let now = Utc::now();
    let mut rng = Lcg(start as u64 + 7);
    let began = Instant::now();
    for chunk_start in (start..n).step_by(10_000) {
        let end = (chunk_start + 10_000).min(n);
        let rows: Vec<RequestRow> = (chunk_start..end)
            .map(|i| make(i, &mut rng, now))
            .collect::<Result<_, _>>()?;
        // Multi-row inserts on the backend's own connection (32 columns a row: 500 rows stay
        // under SQLite's limit of bound values).
        // (MultiConnection has no multi-row insert; each backend's own connection does.)
        macro_rules! insert_all {
            ($c:expr) => {
                $c.transaction::<_, diesel::result::Error, _>(|c| {
                    for batch in rows.chunks(500) {
                        diesel::insert_into(requests::table)
                            .values(batch)
                            .execute(c)?;
                    }
                    Ok(())
                })?
            };
        }
        match &mut *conn {
            DbConnection::Sqlite(c) => insert_all!(c),
            DbConnection::Postgres(c) => insert_all!(c),
        }
        if end % 100_000 == 0 || end == n {
            eprintln!(
                "  seeded {end} of {n} requests ({:.0} s)",
                began.elapsed().as_secs_f64()
            );
        }
    }
    Ok(n - start)
}

struct Timing {
    p50: f64,
    p99: f64,
    mean: f64,
}

fn time(agent: &ureq::Agent, url: &str, cookie: &str, samples: usize) -> anyhow::Result<Timing> {
    timed(agent, url, cookie, samples, 10)
}

/// `samples` timed requests after `warm_up` untimed ones.
fn timed(
    agent: &ureq::Agent,
    url: &str,
    cookie: &str,
    samples: usize,
    warm_up: usize,
) -> anyhow::Result<Timing> {
    let mut ms = Vec::with_capacity(samples);
    for i in 0..samples + warm_up {
        let started = Instant::now();
        let mut res = agent.get(url).header("Cookie", cookie).call()?;
        let status = res.status();
        let _ = res.body_mut().read_to_vec()?;
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        if i >= warm_up {
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Ok(Timing {
        p50: at(0.5),
        p99: at(0.99),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
    })
}

/// Signs in through the console's form like a browser; returns the cookies.
fn sign_in(agent: &ureq::Agent, base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let cookie_of = |res: &ureq::http::Response<ureq::Body>, name: &str| -> Option<String> {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.strip_prefix(&format!("{name}="))
                    .and_then(|c| c.split(';').next())
                    .map(str::to_owned)
            })
    };
    let mut page = agent.get(&format!("{base}/console/sign-in")).call()?;
    let csrf_cookie =
        cookie_of(&page, "rf_csrf").ok_or_else(|| anyhow::anyhow!("no form token"))?;
    let html = page.body_mut().read_to_string()?;
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("no form token field"))?
        .to_owned();
    let body = format!(
        "csrf={token}&email={}&password={}",
        email.replace('@', "%40"),
        password
    );
    let res = agent
        .post(&format!("{base}/console/sign-in"))
        .header("Cookie", &format!("rf_csrf={csrf_cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(body)?;
    let staff = cookie_of(&res, "rf_staff")
        .ok_or_else(|| anyhow::anyhow!("sign-in failed: {}", res.status()))?;
    Ok(format!("rf_csrf={csrf_cookie}; rf_staff={staff}"))
}

pub async fn console(args: ConsoleBenchArgs) -> anyhow::Result<()> {
    let dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&dir)?;
    let database_url = args.database_url.clone().unwrap_or_else(|| {
        dir.join(format!("console-{}.db", args.requests))
            .display()
            .to_string()
    });
    let password = crate::auth::password::generate();
    let config = Config {
        listen: "127.0.0.1:0".into(),
        admin_email: "bench-admin@bench.test".into(),
        ..super::config(&dir, database_url.clone())
    };
    let db = open_database(&config)?;
    let backend = db.backend().as_str();
    eprintln!(
        "seeding {} requests into {backend} (kept for later runs)…",
        args.requests
    );
    let seeded = tokio::task::spawn_blocking({
        let db = db.clone();
        let n = args.requests;
        move || seed(&db, n)
    })
    .await??;
    eprintln!("  {seeded} new rows");
    // The dashboard keeps the counts of final days (storage::report_days); forget them, so the
    // first view is timed as it is after a deployment, counting the whole period.
    db.conn()?
        .batch_execute("DELETE FROM report_answered_days; DELETE FROM report_received_days;")?;
    if seeded > 0 {
        // Fresh statistics (and, on PostgreSQL, the visibility map that index-only counts
        // need) after a bulk load, as an operator would; autovacuum would, later.
        let mut conn = db.conn()?;
        let statements: &[&str] = if backend == "postgres" {
            // The bulk load updated the few rows of the tally tables a million times: compact
            // them once (autovacuum keeps them small under ordinary traffic). One statement
            // per call: PostgreSQL runs a string of several as one transaction, and VACUUM
            // refuses to run inside one.
            &[
                "VACUUM ANALYZE requests",
                "VACUUM FULL ANALYZE request_tallies, due_tallies",
            ]
        } else {
            // Full statistics, as `rightsflow migrate` leaves them (see storage::db).
            &["PRAGMA analysis_limit=0; ANALYZE"]
        };
        for sql in statements {
            conn.batch_execute(sql)?;
        }
    }
    // A fresh admin for this run (the first-admin rule only fires on an empty staff table).
    let email = format!("bench-{}@bench.test", uuid::Uuid::new_v4().simple());
    crate::service::staff::add(
        &db,
        &crate::domain::Actor::System,
        &crate::domain::EmailAddress::parse(&email)?,
        crate::domain::Role::Admin,
        crate::domain::Locale::ZhCn,
        &password,
        Utc::now(),
    )?;
    let app = Application::build(config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = app.server_handle();
    let shutdown = app.shutdown_handle();
    let running = tokio::spawn(app.run_until_stopped());
    let samples = args.samples.max(10);
    let measured =
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(&'static str, Timing)>> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(StdDuration::from_secs(60)))
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into();
            let cookie = sign_in(&agent, &base, &email, &password)?;
            Ok(vec![
                (
                    "GET /healthz (floor)",
                    time(&agent, &format!("{base}/healthz"), "", samples)?,
                ),
                (
                    "GET /console/queue (first page, default)",
                    time(&agent, &format!("{base}/console/queue"), &cookie, samples)?,
                ),
                (
                    "GET /console/dashboard, first view (keeps ~90 days)",
                    timed(&agent, &format!("{base}/console/dashboard"), &cookie, 1, 0)?,
                ),
                (
                    "GET /console/dashboard (90 days)",
                    time(
                        &agent,
                        &format!("{base}/console/dashboard"),
                        &cookie,
                        samples,
                    )?,
                ),
            ])
        })
        .await?;
    shutdown.trigger();
    server.stop(true).await;
    let _ = running.await;
    let measured = measured?;
    let floor = measured[0].1.p50.max(0.001);
    println!(
        "\nrightsflow bench console — {} requests on {backend}, {samples} samples each, {}",
        args.requests,
        Utc::now().format("%Y-%m-%d")
    );
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>12}",
        "page", "p50 ms", "p99 ms", "mean ms", "p50/floor"
    );
    for (name, t) in &measured {
        println!(
            "{name:<52} {:>9.2} {:>9.2} {:>9.2} {:>11.1}x",
            t.p50,
            t.p99,
            t.mean,
            t.p50 / floor
        );
    }
    println!(
        "goal: the queue's and the dashboard's p99 under 10 ms (issue #9; #6 asked for 100 ms)"
    );
    if let Some(path) = &args.json {
        let figures: Vec<_> = measured
            .iter()
            .map(|(name, t)| json!({ "page": name, "p50_ms": t.p50, "p99_ms": t.p99, "mean_ms": t.mean, "p50_over_floor": t.p50 / floor }))
            .collect();
        let doc = json!({ "bench": "console", "requests": args.requests, "backend": backend, "samples": samples, "date": Utc::now().to_rfc3339(), "figures": figures });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Reference;

    #[test]
    fn generated_references_are_valid_and_distinct() {
        let a = reference(0);
        let b = reference(1_000_000);
        assert!(Reference::parse(&a).is_ok() && Reference::parse(&b).is_ok());
        assert_ne!(a, b);
    }
}

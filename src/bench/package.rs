//! `rightsflow bench package`: the portability package of a subject with 1,000,000 rows (by
//! default) against one with 10, in the same process: time, size, and peak resident memory
//! (VmHWM, reset between the two through /proc/self/clear_refs). Flat memory means the two
//! peaks are about the same. The data system is a SQLite file under target/bench/, kept for
//! later runs; the package is sealed into a fresh Rightsflow database, then read back and its
//! SHA-256 checked.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use diesel::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{Config, FulfilmentConfig, Secret, SystemConfig};
use crate::fulfilment::package::seal_package;
use crate::fulfilment::sql::Target;
use crate::service::{now, requests, Services};
use crate::storage::blobs::{self, Sealed};
use crate::storage::fields;
use crate::storage::schema::requests as requests_table;

#[derive(Debug, Args)]
pub struct PackageBenchArgs {
    /// How many rows the large subject has.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Where the sealed package is stored (postgres://… or a SQLite path). Default: a fresh
    /// SQLite file under target/bench/.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

const SMALL_ROWS: usize = 10;

const DATASET: &str = r#"
[subject]
table = "users"
id = "id"
keys = { email = { column = "email" } }

[[tables]]
name = "users"
link = "id"
key = "id"
columns = { name = "account", email = "account" }

[[tables]]
name = "events"
link = "user_id"
key = "id"
columns = { at = "browsing_history", page = "browsing_history", query = "search_history", device = "device" }
"#;

/// A data system with two users: one with `rows` events, one with 10.
fn platform(path: &std::path::Path, rows: usize) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let events = |first: usize, n: usize, user: u32| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO events SELECT {first} + i, {user}, datetime('2026-01-01', '+' || (i % 86400) || ' seconds'), \
             '/products/item-' || (i % 5000) || '?from=search', '搜索词 ' || (i % 997), 'Android 15 / Mi ' || (i % 13) FROM n;"
        )
    };
    let script = format!(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
         CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, at TEXT, page TEXT, query TEXT, device TEXT);
         INSERT INTO users VALUES (1, '大客户', 'large@bench.test'), (2, '小客户', 'small@bench.test');
         {} {}
         CREATE INDEX events_user ON events (user_id);",
        events(0, rows, 1),
        events(rows, SMALL_ROWS, 2)
    );
    Target::open(&tmp.display().to_string())?.run_script(&script)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Resident memory now and at its peak since the last reset, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts a new peak (Linux: writing 5 to clear_refs resets VmHWM to the current RSS).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Run {
    rows: usize,
    seconds: f64,
    sealed: Sealed,
    rss_before: f64,
    peak: f64,
}

fn run(s: &Services, email: &str, rows: usize) -> anyhow::Result<Run> {
    // A portability request of the subject, in progress, as the tasks leave it.
    let mut conn = s.db().conn()?;
    let mut row = super::console::row(rows, &mut super::console::Lcg(7), now())?;
    row.id = uuid::Uuid::new_v4().to_string();
    row.kind = "portability".into();
    row.status = "in_progress".into();
    row.subject_email = Some(fields::seal(crate::storage::rows::EMAIL, &row.id, email)?);
    row.details = fields::seal(
        crate::storage::rows::DETAILS,
        &row.id,
        &json!({ "categories": [], "format": "json" }).to_string(),
    )?;
    diesel::insert_into(requests_table::table)
        .values(&row)
        .execute(&mut *conn)?;
    drop(conn);
    let r = requests::get(s, &row.id)?;
    let system = s
        .systems()
        .find("bench")
        .ok_or_else(|| anyhow::anyhow!("the bench system is not configured"))?;
    let (rss_before, _) = memory();
    reset_peak();
    let started = Instant::now();
    let sealed = seal_package(s, &[system], &r, now()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let (_, peak) = memory();
    // Read back, chunk by chunk: the bytes open under the key and hash to what was recorded.
    let mut hasher = Sha256::new();
    for seq in 0..sealed.chunks {
        let plain = blobs::read_chunk(
            &mut *s.db().conn()?,
            s.data_key(),
            &sealed.blob_id,
            seq,
            sealed.chunks,
        )?;
        hasher.update(&plain);
    }
    let read: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    anyhow::ensure!(read == sealed.sha256, "the package did not read back whole");
    Ok(Run {
        rows,
        seconds,
        sealed,
        rss_before,
        peak,
    })
}

pub async fn package(args: PackageBenchArgs) -> anyhow::Result<()> {
    let dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&dir)?;
    let platform_db = dir.join(format!("package-platform-{}.db", args.rows));
    eprintln!(
        "preparing the data system ({} rows; kept for later runs)…",
        args.rows
    );
    platform(&platform_db, args.rows)?;
    let dataset = dir.join("package-platform.toml");
    std::fs::write(&dataset, DATASET)?;
    let work = dir.join(format!("package-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work)?;
    let config = Config {
        data_dir: work.clone(),
        database_url: Some(
            args.database_url
                .clone()
                .unwrap_or_else(|| work.join("rightsflow.db").display().to_string()),
        ),
        jwt_secret: Some(Secret::new(crate::auth::password::generate().repeat(3))),
        data_key: Some(Secret::new(crate::auth::sealing::DataKey::generate_hex())),
        fulfilment: FulfilmentConfig {
            demo_platform: false,
            systems: vec![SystemConfig::sql(
                "bench",
                &platform_db.display().to_string(),
                dataset,
            )],
            ..Default::default()
        },
        ..Config::default()
    };
    let s = crate::startup::services(&config).await?;
    let backend = s.db().backend().as_str();
    let resets = reset_peak();
    let (small, large) = tokio::task::spawn_blocking(move || -> anyhow::Result<(Run, Run)> {
        Ok((
            run(&s, "small@bench.test", SMALL_ROWS)?,
            run(&s, "large@bench.test", args.rows)?,
        ))
    })
    .await??;
    let _ = std::fs::remove_dir_all(&work);

    println!("portability package from a SQLite data system, sealed (AES-256-GCM) into {backend}");
    println!(
        "{:>10} {:>9} {:>11} {:>12} {:>14} {:>14}",
        "rows", "seconds", "rows/s", "package MiB", "RSS before MiB", "peak RSS MiB"
    );
    for r in [&small, &large] {
        println!(
            "{:>10} {:>9.2} {:>11.0} {:>12.1} {:>14.1} {:>14.1}",
            r.rows,
            r.seconds,
            r.rows as f64 / r.seconds,
            r.sealed.size as f64 / 1048576.0,
            r.rss_before,
            r.peak
        );
    }
    let ratio = large.peak / small.peak;
    println!(
        "peak RSS, {} rows against {SMALL_ROWS}: {ratio:.2}x{}",
        args.rows,
        if resets {
            ""
        } else {
            " (peak could not be reset: both figures are the process's peak)"
        }
    );
    if let Some(path) = args.json {
        let figure = |r: &Run| {
            json!({
                "rows": r.rows,
                "seconds": r.seconds,
                "package_bytes": r.sealed.size,
                "chunks": r.sealed.chunks,
                "rss_before_mib": r.rss_before,
                "peak_rss_mib": r.peak,
            })
        };
        let doc = json!({
            "benchmark": "package",
            "store": backend,
            "date": now().to_rfc3339(),
            "baseline": figure(&small),
            "large": figure(&large),
            "peak_ratio": ratio,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}

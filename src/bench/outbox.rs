//! `rightsflow bench outbox`: email rows delivered by the outbox worker to an SMTP sink on
//! loopback over pooled connections, against the ceiling of the same mailer sending the same
//! messages with no database at all, in the same run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::Utc;
use clap::Args;
use serde_json::json;

use super::smtp_sink::Sink;
use crate::config::{Config, MailTransportKind, Secret};
use crate::notifications::mail::EmailPayload;
use crate::notifications::templates::RenderedEmail;
use crate::notifications::{Notifier, Shutdown, Worker};
use crate::storage::outbox::{self, OutboxRow, EMAIL};
use crate::storage::StoreError;

#[derive(Debug, Args)]
pub struct OutboxBenchArgs {
    /// How many email rows to deliver (and, for the ceiling, to send directly).
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// The database (postgres://… or a SQLite path). Default: a fresh SQLite file under
    /// target/bench/. On PostgreSQL use a database of its own: the worker delivers whatever
    /// the outbox holds.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Deliveries in flight at once (the worker's lanes; the ceiling's threads).
    #[arg(long, default_value_t = crate::config::WorkerConfig::default().concurrency)]
    pub concurrency: usize,
    /// Rows the worker claims at a time.
    #[arg(long, default_value_t = crate::config::WorkerConfig::default().batch)]
    pub batch: i64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A notification of the usual size (about 2 KiB: subject, text and HTML, Chinese and English).
fn email(i: usize) -> EmailPayload {
    let text = "您的个人信息权利请求已收到，我们将在法定期限内答复。参考编号：DSR-BNCH-0001。\n\
                We have received your request about your personal data and will answer within \
                the legal time limit. Reference: DSR-BNCH-0001.\n"
        .repeat(4);
    EmailPayload {
        to: format!("subject{i}@bench.test"),
        locale: "zh-CN".into(),
        message: "received".into(),
        content: RenderedEmail {
            subject: "我们已收到您的请求 / We received your request (DSR-BNCH-0001)".into(),
            html: format!(
                "<html><body><p>{}</p></body></html>",
                text.replace('\n', "<br>")
            ),
            text,
        },
    }
}

/// Sends `n` messages with `mailer` on `lanes` threads; returns the seconds taken.
fn ceiling(notifier: &Notifier, n: usize, lanes: usize) -> anyhow::Result<f64> {
    let next = AtomicUsize::new(0);
    let began = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..lanes)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            return Ok(());
                        }
                        notifier.mailer.send(&format!("ceiling-{i}"), &email(i))?;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a sending thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(began.elapsed().as_secs_f64())
}

/// Queues `n` email rows, as `notifications::expand` writes them, in transactions of 1,000.
fn queue(services: &crate::service::Services, run: &str, n: usize) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut conn = services.db().conn()?;
    for start in (0..n).step_by(1000) {
        crate::storage::db::write::<_, StoreError, _>(&mut conn, |c| {
            for i in start..(start + 1000).min(n) {
                let payload = serde_json::to_string(&email(i))
                    .map_err(|e| StoreError::Setup(e.to_string()))?;
                let row = OutboxRow::new(format!("{run}-{i}.email"), None, EMAIL, payload, now);
                outbox::insert(c, &row)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

pub async fn outbox(args: OutboxBenchArgs) -> anyhow::Result<()> {
    let dir =
        PathBuf::from("target/bench").join(format!("outbox-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let (sink, port) = Sink::start().await?;
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| dir.join("rightsflow.db").display().to_string());
    let mut config = Config {
        mail_transport: Some(MailTransportKind::Smtp),
        smtp_url: Some(Secret::new(format!("smtp://127.0.0.1:{port}"))),
        ..super::config(&dir, database_url)
    };
    config.worker.concurrency = args.concurrency.max(1);
    config.worker.batch = args.batch.max(1);
    let services = crate::startup::services(&config).await?;
    let notifier = crate::startup::notifier(&config)?;
    let backend = services.db().backend().as_str();
    let (n, lanes) = (args.messages.max(1), config.worker.concurrency);
    let s = services.clone();
    // This run's rows, told apart from anything an earlier run left in the database.
    let run = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let run_id = run.clone();
    let (ceiling_s, worker_s) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        eprintln!("sending {n} messages straight to the sink (the ceiling)…");
        let ceiling_s = ceiling(&notifier, n, lanes)?;
        eprintln!("queueing {n} email rows into {backend}…");
        queue(&s, &run_id, n)?;
        eprintln!("delivering them with the outbox worker…");
        let worker = Worker::new(s.clone(), notifier);
        let shutdown = Shutdown::default();
        let began = Instant::now();
        let mut delivered = 0;
        // Rows an earlier, interrupted run left pending are delivered too; the sink's count
        // below checks this run's rows only.
        while delivered < n {
            let done = worker.run_once(&shutdown)?;
            if done == 0 {
                anyhow::bail!("the outbox ran dry after {delivered} of {n} deliveries");
            }
            delivered += done;
        }
        Ok((ceiling_s, began.elapsed().as_secs_f64()))
    })
    .await??;
    // Every row once, by its own Message-ID (the sink saw the ceiling's messages too).
    let ids = sink.ids();
    let from_worker: Vec<&String> = ids.iter().filter(|id| id.contains(&run)).collect();
    let distinct: std::collections::HashSet<&&String> = from_worker.iter().collect();
    if from_worker.len() != n || distinct.len() != n {
        anyhow::bail!(
            "the sink got {} worker messages ({} distinct) for {n} rows",
            from_worker.len(),
            distinct.len()
        );
    }
    let (ceiling_rate, worker_rate) = (n as f64 / ceiling_s, n as f64 / worker_s);
    println!(
        "\nrightsflow bench outbox — {n} messages on {backend}, {lanes} in flight, batches of {}, {}",
        config.worker.batch,
        Utc::now().format("%Y-%m-%d")
    );
    println!("{:<52} {:>10} {:>12}", "sender", "seconds", "messages/s");
    println!(
        "{:<52} {:>10.2} {:>12.0}",
        "mailer straight to the sink (ceiling)", ceiling_s, ceiling_rate
    );
    println!(
        "{:<52} {:>10.2} {:>12.0}",
        "outbox worker: claim, send, mark done", worker_s, worker_rate
    );
    println!(
        "worker / ceiling: {:.0}%; every row arrived once with its own Message-ID",
        100.0 * worker_rate / ceiling_rate
    );
    println!("goal: at least 500 messages per second");
    if let Some(path) = &args.json {
        let doc = json!({ "bench": "outbox", "messages": n, "backend": backend, "concurrency": lanes,
            "batch": config.worker.batch, "date": Utc::now().to_rfc3339(),
            "ceiling_per_s": ceiling_rate, "worker_per_s": worker_rate,
            "worker_over_ceiling": worker_rate / ceiling_rate });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    // A fresh SQLite file per run: nothing to keep.
    if args.database_url.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

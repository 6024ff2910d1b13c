//! `rightsflow bench intake`: submissions per second and their latency at a given concurrency,
//! against a ceiling measured in the same run: an actix-web handler (`rightsflow bench
//! ceiling`, a separate process like the service) that does one insert of the same body into
//! the same database. Also the service's start-up time to `/readyz` on an existing database and
//! its resident memory idle and under the load. Figures are printed (and written as JSON),
//! never asserted.
//!
//! Both servers run as child processes of the benchmark, started from this same binary with the
//! same pool size, and are driven by the same load generator (`load.rs`) on the same cores.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use chrono::Utc;
use clap::Args;
use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::RunQueryDsl;
use serde_json::json;

use super::load::{self, Load};
use crate::storage::{Backend, Database};

#[derive(Debug, Args)]
pub struct IntakeBenchArgs {
    /// The database (postgres://… or a SQLite path). Default: a fresh SQLite file under
    /// target/bench/ (emptied at the start of each run).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Clients sending at once, each on its own connection.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Measured seconds per server (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Connections each server's pool holds (the service's default is 8).
    #[arg(long, default_value_t = 8)]
    pub pool_size: u32,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The ceiling's server (run by `bench intake`; not for use on its own).
#[derive(Debug, Args)]
pub struct CeilingArgs {
    #[arg(long)]
    pub database_url: String,
    #[arg(long)]
    pub listen: String,
    #[arg(long, default_value_t = 8)]
    pub pool_size: u32,
}

/// One submission as the portal's API takes it (a different address each time).
fn submission(n: u64) -> String {
    json!({
        "kind": "access",
        "subject": { "name": "测试用户", "email": format!("bench.user.{n}@example.com") },
        "details": { "categories": ["orders", "account"] },
    })
    .to_string()
}

/// The ceiling: one handler, one insert of the body as received, on the same pool and database
/// the service uses (the insert runs on the blocking pool, as the service's storage does).
pub async fn ceiling(args: CeilingArgs) -> anyhow::Result<()> {
    let db = Database::connect(
        &args.database_url,
        args.pool_size,
        Arc::new(crate::auth::vault::Vault::generate()),
    )?;
    db.conn()?.batch_execute(
        "CREATE TABLE IF NOT EXISTS bench_ceiling \
         (id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at TEXT NOT NULL)",
    )?;
    let data = web::Data::new(db);
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/ceiling", web::post().to(insert))
            .route(
                "/readyz",
                web::get().to(|| async { HttpResponse::Ok().finish() }),
            )
    })
    .bind(&args.listen)?
    .run()
    .await?;
    Ok(())
}

async fn insert(db: web::Data<Database>, body: web::Bytes) -> actix_web::Result<HttpResponse> {
    let text = String::from_utf8(body.to_vec()).map_err(actix_web::error::ErrorBadRequest)?;
    // Keyed as the service keys its requests.
    let id = crate::storage::new_id();
    let row = id.clone();
    web::block(move || -> anyhow::Result<usize> {
        Ok(diesel::sql_query(
            "INSERT INTO bench_ceiling (id, body, received_at) VALUES ($1, $2, $3)",
        )
        .bind::<Text, _>(row)
        .bind::<Text, _>(text)
        .bind::<Text, _>(Utc::now().to_rfc3339())
        .execute(&mut *db.conn()?)?)
    })
    .await?
    .map_err(actix_web::error::ErrorInternalServerError)?;
    Ok(HttpResponse::Created().json(json!({ "id": id })))
}

/// A child server; killed when dropped.
struct Server {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(args: &[&str], envs: &[(&str, String)]) -> anyhow::Result<Server> {
        let addr = load::free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .args(
                args.iter()
                    .map(|a| a.replace("{listen}", &addr.to_string())),
            )
            .envs(envs.iter().map(|(k, v)| (*k, v.clone())))
            .env("RIGHTSFLOW_LISTEN", addr.to_string())
            .env("RUST_LOG", "warn")
            .env_remove("RIGHTSFLOW_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Server { child, addr })
    }

    async fn ready(&self, since: Instant) -> anyhow::Result<Duration> {
        load::wait_ready(self.addr, since, Duration::from_secs(120))
            .await
            .ok_or_else(|| anyhow::anyhow!("the server did not become ready"))
    }
}

pub async fn intake(args: IntakeBenchArgs) -> anyhow::Result<()> {
    let work = tempdir()?;
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            let dir = PathBuf::from("target/bench");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("intake.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            path.display().to_string()
        }
    };
    let backend = Backend::from_url(&url);
    // The service as deployed: its own process, limits raised (one address sends everything),
    // scheduled jobs and the outbox worker off (only intake is measured).
    let config = work.join("rightsflow.toml");
    std::fs::write(
        &config,
        format!(
            "database_pool_size = {}\nexpiry_sweep_seconds = 0\nreminder_sweep_seconds = 0\n\n\
             [rate_limits]\nrequests_per_ip = 100000000\nsubmissions_per_ip = 100000000\n\n\
             [worker]\nin_serve = false\n\n[fulfilment]\ndemo_platform = false\n",
            args.pool_size
        ),
    )?;
    let envs = [
        (
            "RIGHTSFLOW_DATA_DIR",
            work.join("data").display().to_string(),
        ),
        ("RIGHTSFLOW_DATABASE_URL", url.clone()),
        (
            "RIGHTSFLOW_ADMIN_PASSWORD",
            crate::auth::password::generate(),
        ),
    ];
    let serve = ["--config", config.to_str().unwrap_or_default(), "serve"];
    let warmup = Duration::from_secs(1);
    let measure = Duration::from_secs(args.seconds.max(1));

    eprintln!("starting the service on {} (migrations)…", backend.as_str());
    let first = Server::start(&serve, &envs)?;
    first.ready(Instant::now()).await?;
    drop(first);
    let started = Instant::now();
    let service = Server::start(&serve, &envs)?;
    let startup = service.ready(started).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_rss, _) = load::rss_mib(service.child.id()).unwrap_or((f64::NAN, f64::NAN));
    eprintln!(
        "intake: {} clients for {}s…",
        args.concurrency,
        measure.as_secs()
    );
    // Both servers get the same submissions from the same clients, answered 201.
    let drive = |addr, path| {
        load::post_load(
            addr,
            path,
            args.concurrency,
            warmup,
            measure,
            201,
            Arc::new(submission),
        )
    };
    let intake = drive(service.addr, "/api/v1/requests").await;
    let (_, loaded_rss) = load::rss_mib(service.child.id()).unwrap_or((f64::NAN, f64::NAN));
    drop(service);

    eprintln!("ceiling: one insert per request…");
    let pool = args.pool_size.to_string();
    let ceiling_server = Server::start(
        &[
            "bench",
            "ceiling",
            "--database-url",
            &url,
            "--listen",
            "{listen}",
            "--pool-size",
            &pool,
        ],
        &[],
    )?;
    ceiling_server.ready(Instant::now()).await?;
    let ceiling = drive(ceiling_server.addr, "/ceiling").await;
    drop(ceiling_server);
    let _ = std::fs::remove_dir_all(&work);

    report(
        &args, backend, &intake, &ceiling, startup, idle_rss, loaded_rss,
    )
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rightsflow-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn report(
    args: &IntakeBenchArgs,
    backend: Backend,
    intake: &Load,
    ceiling: &Load,
    startup: Duration,
    idle_rss: f64,
    loaded_rss: f64,
) -> anyhow::Result<()> {
    let ratio = intake.per_second() / ceiling.per_second().max(f64::MIN_POSITIVE);
    println!(
        "\nrightsflow bench intake — {} at concurrency {}, {} s each, {}",
        backend.as_str(),
        args.concurrency,
        args.seconds,
        Utc::now().format("%Y-%m-%d")
    );
    println!(
        "{:<44} {:>10} {:>9} {:>9} {:>7}",
        "server", "per s", "p50 ms", "p99 ms", "errors"
    );
    for (name, l) in [
        ("POST /api/v1/requests (the service)", intake),
        ("ceiling: one insert of the body", ceiling),
    ] {
        println!(
            "{name:<44} {:>10.0} {:>9.2} {:>9.2} {:>7}",
            l.per_second(),
            l.quantile_ms(0.5),
            l.quantile_ms(0.99),
            l.errors
        );
    }
    println!(
        "service / ceiling: {:.1}% (goal: at least 50%)",
        ratio * 100.0
    );
    println!(
        "start-up to /readyz on an existing database: {:.0} ms (goal: under 1 s)",
        startup.as_secs_f64() * 1000.0
    );
    println!(
        "resident memory: {idle_rss:.1} MiB idle (goal: under 60), {loaded_rss:.1} MiB peak under load (goal: under 200)"
    );
    if let Some(path) = &args.json {
        let figures = |l: &Load| json!({ "per_second": l.per_second(), "p50_ms": l.quantile_ms(0.5), "p99_ms": l.quantile_ms(0.99), "ok": l.ok, "errors": l.errors });
        let doc = json!({
            "bench": "intake",
            "backend": backend.as_str(),
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "date": Utc::now().to_rfc3339(),
            "service": figures(intake),
            "ceiling": figures(ceiling),
            "service_over_ceiling": ratio,
            "startup_ms": startup.as_secs_f64() * 1000.0,
            "rss_idle_mib": idle_rss,
            "rss_peak_loaded_mib": loaded_rss,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}

//! The command line: `serve` (the default), `migrate`, `staff add`, `deadline`, `drp …`,
//! `opendsr …`.

mod opendsr;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::clock::{due_after, extended_due, CalendarSet, Due};
use crate::config::Config;
use crate::domain::{ClockStart, EmailAddress, Jurisdiction, Policy, Role};
use crate::service::{now, staff};
use crate::startup::{load_calendars, open_database, Application};

#[derive(Debug, Parser)]
#[command(
    name = "rightsflow",
    version,
    about = "Data-subject rights requests, from submission to an answer on time"
)]
pub struct Cli {
    /// A TOML config file (also RIGHTSFLOW_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Run only the background work (outbox worker, reminders, expiry), without HTTP; for
    /// deployments that scale delivery separately from serving.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage staff accounts.
    Staff {
        #[command(subcommand)]
        action: StaffCommand,
    },
    /// Print the legal due date for a clock started at a given instant.
    Deadline(DeadlineArgs),
    /// Benchmarks that print figures (see docs/PERFORMANCE.md).
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// The data keys personal data is sealed under.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// The Data Rights Protocol: authorised agents and our business key (docs/INTEROP.md).
    Drp {
        #[command(subcommand)]
        action: DrpCommand,
    },
    /// OpenDSR 2.0: controllers and our signing key (docs/INTEROP.md).
    Opendsr {
        #[command(subcommand)]
        action: opendsr::OpendsrCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum DrpCommand {
    /// Register an authorised agent, or change its name and verify key (a new key ends the
    /// agent's bearer token). Logged in the audit log.
    AgentAdd {
        /// The agent's id in the network's directory (e.g. CR_AGENT).
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// Base64 of the agent's 32-byte Ed25519 verify key.
        #[arg(long)]
        verify_key: String,
        /// Where the agent's status callbacks may go (e.g. https://agent.example.com); without
        /// it the agent gets no callbacks and polls.
        #[arg(long)]
        callback_origin: Option<String>,
    },
    /// Turn an agent off (its token stops working) or on again. Logged in the audit log.
    AgentSet {
        #[arg(long)]
        id: String,
        /// true or false.
        #[arg(long, action = clap::ArgAction::Set)]
        active: bool,
    },
    /// List the registered agents.
    Agents,
    /// Make a new business signing key: prints the seed (for RIGHTSFLOW_DRP_SIGNING_KEY; keep
    /// it secret, outside the repository) and the verify key agents check callbacks with.
    Keygen,
    /// Print the verify key of the configured signing key (what agents check callbacks with).
    PublicKey,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Seal everything not under the current data key (RIGHTSFLOW_DATA_KEY) with it: values
    /// under the keys it replaced (RIGHTSFLOW_PREVIOUS_DATA_KEYS) and values from before
    /// encryption. In batches, while the service runs; run it again to resume.
    Rotate {
        /// Rows per batch (each batch is one transaction).
        #[arg(long, default_value_t = 500)]
        batch: i64,
        /// Stop after this many batches (spread a large rotation out; run again to go on).
        #[arg(long)]
        max_batches: Option<usize>,
    },
    /// How many values and results are not yet under the current key.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every request's hash-chained event log and the audit log; exits 1 naming the first
    /// broken entry.
    Verify {
        /// Also check that the database still holds every chain head this anchor file (from
        /// `audit anchor`) names: catches chains rewritten or cut short since it was taken.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Write an anchor: the heads of both chains, signed, to keep outside the database (another
    /// machine, write-once storage). No personal data.
    Anchor {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write one request's evidence package (JSON): the request, its timeline with hashes and
    /// the chain's check, messages sent, tasks and results. It holds personal data.
    Export {
        /// The request's reference (DSR-…).
        #[arg(long)]
        request: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The staff console's queue and dashboard on a large table.
    Console(crate::bench::ConsoleBenchArgs),
    /// A portability package for a subject with many rows: time and peak memory.
    Package(crate::bench::PackageBenchArgs),
    /// Submissions per second and their latency against a one-insert ceiling; start-up time
    /// and memory.
    Intake(crate::bench::IntakeBenchArgs),
    /// The clock sweep: requests needing a deadline reminder among 1,000,000 open ones.
    Sweep(crate::bench::SweepBenchArgs),
    /// The outbox worker's deliveries per second to an SMTP sink on loopback.
    Outbox(crate::bench::OutboxBenchArgs),
    /// The intake benchmark's ceiling server (started by `bench intake`).
    #[command(hide = true)]
    Ceiling(crate::bench::CeilingArgs),
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff account. Without --password-stdin a password is generated and printed once.
    Add {
        #[arg(long)]
        email: String,
        /// agent, reviewer, admin or auditor.
        #[arg(long)]
        role: String,
        /// The language of their emails: zh-CN (default) or en.
        #[arg(long, default_value = "zh-CN")]
        locale: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Args)]
pub struct DeadlineArgs {
    /// cn, eu or us-ca.
    #[arg(long, default_value = "cn")]
    pub jurisdiction: String,
    /// When the clock starts (RFC 3339 with offset): verification in cn, receipt elsewhere.
    /// Default: now.
    #[arg(long)]
    pub from: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    let command = cli.command.unwrap_or(Command::Serve);
    if !matches!(command, Command::Serve | Command::Worker) {
        // Maintenance (migrate, audit, keys, bench) may read whole tables: no statement timeout.
        config.database_statement_timeout_seconds = 0;
    }
    match command {
        Command::Serve => {
            crate::telemetry::init(config.log_format);
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::Worker => {
            crate::telemetry::init(config.log_format);
            let services = crate::startup::services(&config).await?;
            let notifier = crate::startup::notifier(&config)?;
            let shutdown = crate::notifications::Shutdown::default();
            let handles =
                crate::startup::Background::new(&config, services, notifier, true).start(&shutdown);
            wait_for_signal().await;
            tracing::info!("stopping: finishing the current delivery");
            shutdown.trigger();
            crate::startup::drain(handles).await;
        }
        Command::Migrate => {
            crate::telemetry::init(config.log_format);
            let db = open_database(&config)?;
            println!("database is up to date ({})", db.backend().as_str());
        }
        Command::Audit {
            action: AuditCommand::Verify { anchor },
        } => {
            crate::telemetry::init(config.log_format);
            let db = open_database(&config)?;
            match crate::storage::audit::verify(&mut *db.conn()?)? {
                Ok(c) => println!(
                    "audit chain intact: {} events in {} requests",
                    c.events, c.requests
                ),
                Err(b) => {
                    println!(
                        "audit chain broken at request {} (id {}), event {}: {}",
                        b.reference.as_deref().unwrap_or("?"),
                        b.request_id,
                        b.seq,
                        b.why
                    );
                    std::process::exit(1);
                }
            }
            match crate::storage::audit_log::verify(&mut *db.conn()?)? {
                Ok(n) => println!("audit log intact: {n} entries"),
                Err((seq, why)) => {
                    println!("audit log broken at entry {seq}: {why}");
                    std::process::exit(1);
                }
            }
            if let Some(path) = anchor {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let anchor: crate::storage::anchor::Anchor = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not an anchor file", path.display()))?;
                match crate::storage::anchor::check(&mut *db.conn()?, &anchor)? {
                    Ok(n) => println!(
                        "anchor of {} holds: {n} chain heads still in place",
                        anchor.heads.taken_at.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    Err(why) => {
                        println!("anchor check failed: {why}");
                        std::process::exit(1);
                    }
                }
            }
        }
        Command::Audit {
            action: AuditCommand::Anchor { out },
        } => {
            crate::telemetry::init(config.log_format);
            let db = open_database(&config)?;
            let anchor = crate::storage::anchor::take(&mut *db.conn()?, chrono::Utc::now())?;
            let json = serde_json::to_string_pretty(&anchor)?;
            match out {
                Some(path) => std::fs::write(&path, json + "\n")
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{json}"),
            }
            eprintln!(
                "anchored {} request chains and {}",
                anchor.heads.requests.len(),
                match &anchor.heads.audit_log {
                    Some((seq, _)) => format!("the audit log at entry {seq}"),
                    None => "an empty audit log".to_owned(),
                }
            );
        }
        Command::Audit {
            action: AuditCommand::Export { request, out },
        } => {
            crate::telemetry::init(config.log_format);
            let reference = crate::domain::Reference::parse(&request)
                .map_err(|e| anyhow::anyhow!("--request: {e}"))?;
            let services = crate::startup::services(&config).await?;
            let evidence = tokio::task::spawn_blocking(move || {
                crate::service::evidence::export(&services, &reference)
            })
            .await?
            .map_err(|e| match e {
                crate::service::ServiceError::NotFound => {
                    anyhow::anyhow!("no request has the reference {request}")
                }
                other => other.into(),
            })?;
            let text = serde_json::to_string_pretty(&evidence)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, text + "\n")?;
                    eprintln!("evidence for {request} written to {}", path.display());
                }
                None => println!("{text}"),
            }
        }
        Command::Keys { action } => {
            crate::telemetry::init(config.log_format);
            let db = open_database(&config)?;
            let current = db.vault().current().id().to_owned();
            match action {
                KeysCommand::Status => println!(
                    "current key {current}: {} values and results still under other keys or in clear",
                    crate::storage::rekey::remaining(&db)?
                ),
                KeysCommand::Rotate { batch, max_batches } => {
                    let done = crate::storage::rekey::rotate(&db, batch, max_batches, |p| {
                        tracing::info!(values = p.values, lookups = p.lookups, results = p.results, "rotating");
                    })?;
                    println!(
                        "sealed under key {current}: {} values, {} results; {} requests indexed; {} remaining",
                        done.values, done.results, done.lookups, done.remaining
                    );
                }
            }
        }
        Command::Drp { action } => drp_command(&config, action)?,
        Command::Opendsr { action } => opendsr::run(&config, action)?,
        Command::Staff {
            action:
                StaffCommand::Add {
                    email,
                    role,
                    locale,
                    password_stdin,
                },
        } => {
            let email =
                EmailAddress::parse(&email).context("--email is not a valid email address")?;
            let role: Role = role
                .parse()
                .context("--role must be agent, reviewer, admin or auditor")?;
            let locale = crate::domain::Locale::parse_loose(&locale)
                .context("--locale must be zh-CN or en")?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (crate::auth::password::generate(), true)
            };
            let db = open_database(&config)?;
            // An operator at the machine: the system, in the audit log.
            let row = staff::add(
                &db,
                &crate::domain::Actor::System,
                &email,
                role,
                locale,
                &password,
                now(),
            )?;
            println!("added {} as {role} (id {})", row.email, row.id);
            if generated {
                println!("password: {password}\n(shown only this once)");
            }
        }
        Command::Bench {
            which: BenchCommand::Console(args),
        } => {
            crate::bench::console(args).await?;
        }
        Command::Bench {
            which: BenchCommand::Package(args),
        } => {
            crate::bench::package(args).await?;
        }
        Command::Bench {
            which: BenchCommand::Intake(args),
        } => {
            crate::bench::intake(args).await?;
        }
        Command::Bench {
            which: BenchCommand::Outbox(args),
        } => {
            crate::bench::outbox(args).await?;
        }
        Command::Bench {
            which: BenchCommand::Sweep(args),
        } => {
            crate::bench::sweep(args).await?;
        }
        Command::Bench {
            which: BenchCommand::Ceiling(args),
        } => {
            crate::bench::ceiling(args).await?;
        }
        Command::Deadline(args) => {
            let calendars = load_calendars(&config)?;
            let report = deadline(&config.policy, &calendars, &args)?;
            println!("{report}");
        }
    }
    Ok(())
}

/// Waits for SIGTERM (how service managers stop a process) or Ctrl-C.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The `deadline` report: the due date and the instant it ends, the extended one where the
/// jurisdiction allows an extension, and any calendar warning.
pub fn deadline(
    policy: &Policy,
    calendars: &CalendarSet,
    args: &DeadlineArgs,
) -> anyhow::Result<String> {
    let jurisdiction: Jurisdiction = args
        .jurisdiction
        .parse()
        .context("--jurisdiction must be cn, eu or us-ca")?;
    let from: DateTime<Utc> = match &args.from {
        Some(text) => DateTime::<FixedOffset>::parse_from_rfc3339(text)
            .context("--from must be an RFC 3339 instant, e.g. 2026-09-28T10:00:00+08:00")?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let rules = policy.rules(jurisdiction);
    let (tz, region) = (rules.time_zone, rules.calendar_region.as_str());
    let due = due_after(from, rules.respond, tz, calendars, region);
    let extended = rules
        .extension
        .map(|ext| extended_due(from, rules.respond, ext, tz, calendars, region));
    let acknowledge = rules
        .acknowledge
        .map(|p| due_after(from, p, tz, calendars, region));
    let local = |d: &Due| {
        d.ends_at
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    };
    if due.date < from.date_naive() - chrono::Duration::days(1) {
        bail!("the computed due date lies before the start; check the calendar files");
    }
    if args.json {
        return Ok(json!({
            "jurisdiction": jurisdiction,
            "time_zone": tz.name(),
            "period": rules.respond,
            "from": from,
            "due": { "date": due.date, "ends_at": local(&due), "ends_at_utc": due.ends_at, "warnings": due.warnings },
            "extended": extended.as_ref().map(|e| json!({ "date": e.date, "ends_at": local(e), "ends_at_utc": e.ends_at })),
            "acknowledge_by": acknowledge.as_ref().map(|a| json!({ "date": a.date, "ends_at": local(a) })),
        })
        .to_string());
    }
    let starts = match rules.clock_starts {
        ClockStart::Verification => "identity verification",
        ClockStart::Receipt => "receipt",
    };
    let mut lines = vec![
        format!(
            "jurisdiction: {jurisdiction} ({}) — {} / {}, counted from {starts}; the start day is not counted",
            tz.name(),
            rules.respond.describe_en(),
            rules.respond.describe_zh()
        ),
        format!("from: {} (local day {})", from.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, false), from.with_timezone(&tz).date_naive()),
        format!("due: {} (ends {})", due.date, local(&due)),
    ];
    match (&extended, rules.extension) {
        (Some(e), Some(ext)) => lines.push(format!(
            "extended: {} (ends {}) — after an extension of {}",
            e.date,
            local(e),
            ext.describe_en()
        )),
        _ => lines.push("extended: none — this jurisdiction allows no extension".into()),
    }
    if let (Some(a), Some(p)) = (&acknowledge, rules.acknowledge) {
        lines.push(format!(
            "acknowledge by: {} (ends {}) — {}",
            a.date,
            local(a),
            p.describe_en()
        ));
    }
    for w in &due.warnings {
        lines.push(format!("warning: {w} / {}", w.message_zh()));
    }
    Ok(lines.join("\n"))
}

/// `rightsflow drp …`: an operator at the machine acts as the system (in the audit log).
fn drp_command(config: &Config, action: DrpCommand) -> anyhow::Result<()> {
    use crate::interop::drp::service as drp;
    let system = crate::domain::Actor::System;
    match action {
        DrpCommand::Keygen => {
            let (seed, verify_key) = crate::interop::drp::generate_key_pair();
            println!("signing key (RIGHTSFLOW_DRP_SIGNING_KEY, keep secret): {seed}");
            println!("verify key (for agents): {verify_key}");
        }
        DrpCommand::PublicKey => match config.drp.settings().map_err(anyhow::Error::msg)? {
            Some(s) => println!("{}", s.verify_key()),
            None => bail!("drp.business_id and drp.signing_key are not set"),
        },
        DrpCommand::AgentAdd {
            id,
            name,
            verify_key,
            callback_origin,
        } => {
            let db = open_database(config)?;
            let origin = callback_origin.as_deref();
            drp::register_agent(&db, &system, &id, &name, &verify_key, origin, now())?;
            println!("agent {id} registered");
        }
        DrpCommand::AgentSet { id, active } => {
            let db = open_database(config)?;
            drp::set_agent_active(&db, &system, &id, active, now())?;
            println!("agent {id} {}", if active { "enabled" } else { "disabled" });
        }
        DrpCommand::Agents => {
            let db = open_database(config)?;
            for a in drp::agents(&db)? {
                let state = if a.active { "active" } else { "disabled" };
                let origin = a.callback_origin.as_deref().unwrap_or("-");
                println!("{}\t{}\t{}\t{origin}\t{state}", a.id, a.name, a.verify_key);
            }
        }
    }
    Ok(())
}

//! `rightsflow bench …`: benchmarks that print figures, each against a baseline measured in the
//! same run (docs/PERFORMANCE.md). Figures are printed, not asserted.
//!
//! - `console.rs`: the staff queue and dashboard under 1,000,000 requests;
//! - `intake.rs`: submissions per second and their latency against one insert per request (the
//!   ceiling), start-up time and resident memory; `load.rs` is its load generator;
//! - `outbox.rs`: email rows delivered by the outbox worker to an SMTP sink on loopback
//!   (`smtp_sink.rs`) against the same mailer sending straight to it;
//! - `sweep.rs`: the clock sweep (reminders needed) among 1,000,000 open requests;
//! - `package.rs`: a portability package for a subject with 1,000,000 rows, peak memory against
//!   a subject with 10.

mod console;
mod intake;
mod load;
mod outbox;
mod package;
mod smtp_sink;
mod sweep;

pub use console::{console, seed, ConsoleBenchArgs};
pub use intake::{ceiling, intake, CeilingArgs, IntakeBenchArgs};
pub use outbox::{outbox, OutboxBenchArgs};
pub use package::{package, PackageBenchArgs};
pub use sweep::{sweep, SweepBenchArgs};

/// The configuration the in-process benchmarks start from: their data folder and database, a
/// fresh token key, no scheduled jobs, no demo platform, and no broad rate limit (one address
/// sends every timed request).
fn config(data_dir: &std::path::Path, database_url: String) -> crate::config::Config {
    crate::config::Config {
        data_dir: data_dir.to_path_buf(),
        database_url: Some(database_url),
        jwt_secret: Some(crate::config::Secret::new(
            crate::auth::password::generate().repeat(3),
        )),
        expiry_sweep_seconds: 0,
        reminder_sweep_seconds: 0,
        rate_limits: crate::web::limits::RateLimitConfig {
            requests_per_ip: u32::MAX,
            ..Default::default()
        },
        fulfilment: crate::config::FulfilmentConfig {
            demo_platform: false,
            systems: vec![],
            ..Default::default()
        },
        ..crate::config::Config::default()
    }
}

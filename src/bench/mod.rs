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

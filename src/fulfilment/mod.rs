//! Fulfilment: doing what an approved request asks in the systems that hold the subject's data.
//!
//! - `dataset.rs`: a data system's dataset description; `sql.rs`: the SQL connector acting on
//!   it; `demo/`: the demo platform's database and description;
//! - `registry.rs`: the configured systems; `run.rs`: planning and running tasks from the
//!   outbox worker, completing the request; `package.rs`: building the access report
//!   (`report.rs`) or the portability package (`zipstream.rs`) as a stream into sealed storage.
//!
//! See docs/FULFILMENT.md for what issue #7 still needs.

pub mod consents;
pub mod dataset;
pub mod gpc;
pub mod http;
pub mod package;
pub mod registry;
pub mod report;
pub mod restriction;
pub mod run;
pub mod sql;
pub mod transfer;
pub mod zipstream;

/// The demo platform (WEIMACMS): its schema and data, portable between SQLite and PostgreSQL.
pub const DEMO_PLATFORM_SQL: &str = include_str!("demo/platform.sql");
/// The demo platform's dataset description.
pub const DEMO_PLATFORM_DATASET: &str = include_str!("demo/platform.toml");

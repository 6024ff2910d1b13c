//! Fulfilment: doing what an approved request asks in the systems that hold the subject's data.
//!
//! So far: the dataset description of a data system (`dataset.rs`) and the SQL connector that
//! acts on it (`sql.rs`), with the demo platform's database and description (`demo/`). The
//! registry of systems, tasks run from the worker, results and recipients come next (issue #7;
//! see docs/FULFILMENT.md).

pub mod dataset;
pub mod sql;

/// The demo platform (WEIMACMS): its schema and data, portable between SQLite and PostgreSQL.
pub const DEMO_PLATFORM_SQL: &str = include_str!("demo/platform.sql");
/// The demo platform's dataset description.
pub const DEMO_PLATFORM_DATASET: &str = include_str!("demo/platform.toml");

//! `rightsflow bench …`: benchmarks that print figures, each against a baseline measured in the
//! same run (docs/PERFORMANCE.md). Figures are printed, not asserted.
//!
//! - `console.rs`: the staff queue and dashboard under 1,000,000 requests;
//! - `package.rs`: a portability package for a subject with 1,000,000 rows, peak memory against
//!   a subject with 10.

mod console;
mod package;

pub use console::{console, seed, ConsoleBenchArgs};
pub use package::{package, PackageBenchArgs};

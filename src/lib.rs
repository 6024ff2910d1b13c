//! Rightsflow: a data-subject rights request workflow engine. See docs/ARCHITECTURE.md.

pub mod clock;
pub mod domain;
pub mod storage;

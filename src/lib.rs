//! Rightsflow: a data-subject rights request workflow engine. See docs/ARCHITECTURE.md for the
//! parts and how a request moves through them.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod fulfilment;
pub mod interop;
pub mod jobs;
pub mod notifications;
pub mod percent;
pub mod service;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod web;

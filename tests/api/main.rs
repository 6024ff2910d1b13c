//! API tests: the JSON API through real HTTP on loopback, each test on a fresh SQLite file and,
//! when RIGHTSFLOW_TEST_POSTGRES_URL is set, again on a fresh PostgreSQL database.

#![allow(clippy::unwrap_used)]

mod helpers;
mod smtp;

mod access_log;
mod attacks;
mod audit;
mod bad_input;
mod cli;
mod connectors;
mod consents;
mod console;
mod crash_safety;
mod delivery;
mod drp;
mod encryption;
mod fulfilment;
mod gpc;
mod inserts;
mod lifecycle;
mod mail_connections;
mod notifications;
mod opendsr;
mod packages;
mod portal;
mod queue;
mod recipients;
mod reports;
mod restriction;
mod results;
mod retention;
mod scale_out;
mod second_factor;
mod service;
mod verification;

//! The open protocols other systems send requests through (docs/INTEROP.md). Each protocol is
//! mounted under a prefix of its own (`/drp/v1/…`, `/opendsr/v1/…`), since both call their
//! routes `/v1/…`; `intake.rs` is what they share when a request arrives.

pub mod admin;
pub mod callback;
pub mod drp;
pub mod intake;
pub mod opendsr;

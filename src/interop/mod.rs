//! The open protocols other systems send requests through (docs/INTEROP.md). Each protocol is
//! mounted under a prefix of its own (`/drp/v1/…`; OpenDSR will be `/opendsr/v1/…`), since
//! both call their routes `/v1/…`.

pub mod drp;

//! Chain anchors: the heads of both hash chains (every request's event chain, and the audit log's
//! one chain), written to a file that is kept outside the database.
//!
//! A hash chain shows that its entries were not changed one by one; it cannot show that someone
//! with write access to the database did not rewrite a chain consistently from some point on, or
//! cut entries off its end (the audit log has no "version" to compare its last entry with). An
//! anchor taken earlier and kept elsewhere (another machine, write-once storage, the privacy
//! officer's mail) closes that gap: every head it names must still be in the database, with the
//! same hash, and since each hash covers everything before it, so must all that came before.
//!
//! Heads are per request (not one digest of the whole table), so an anchor stays checkable while
//! the service keeps appending: later events only extend chains past the anchored heads. The
//! file is signed with a keyed MAC under the index key, so an anchor cannot be forged or edited
//! without the deployment's secrets.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{audit_log, request_events, requests};
use super::{fields, DbConnection, StoreError};

pub const FORMAT: &str = "rightsflow-anchor/1";

/// What an anchor records (the signed part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heads {
    pub format: String,
    pub taken_at: DateTime<Utc>,
    /// The audit log's last entry: `(seq, hash)`; none while the log is empty.
    pub audit_log: Option<(i64, String)>,
    /// Every request's last event: request id → `(seq, hash)`.
    pub requests: BTreeMap<String, (i64, String)>,
}

/// An anchor as written to its file: the heads and their MAC.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchor {
    #[serde(flatten)]
    pub heads: Heads,
    pub mac: String,
}

/// Reads both chains' heads now and signs them.
pub fn take(c: &mut DbConnection, now: DateTime<Utc>) -> Result<Anchor, StoreError> {
    c.transaction(|c| {
        let audit_log = audit_log::table
            .order(audit_log::seq.desc())
            .select((audit_log::seq, audit_log::hash))
            .first::<(i64, String)>(c)
            .optional()?;
        // A request's last event is the one at its version (the chain check holds them equal).
        let rows: Vec<(String, i64, Option<String>)> = request_events::table
            .inner_join(
                requests::table.on(requests::id
                    .eq(request_events::request_id)
                    .and(requests::version.eq(request_events::seq))),
            )
            .select((
                request_events::request_id,
                request_events::seq,
                request_events::hash,
            ))
            .load(c)?;
        let heads = Heads {
            format: FORMAT.to_owned(),
            taken_at: now,
            audit_log,
            requests: rows
                .into_iter()
                .map(|(id, seq, hash)| (id, (seq, hash.unwrap_or_default())))
                .collect(),
        };
        let mac = mac_of(&heads)?;
        Ok(Anchor { heads, mac })
    })
}

fn mac_of(heads: &Heads) -> Result<String, StoreError> {
    let body = serde_json::to_string(heads).map_err(|e| StoreError::corrupt(e.to_string()))?;
    Ok(fields::vault()?.anchor_mac(&body))
}

/// Checks that the database still holds every head `anchor` names: `Ok(heads checked)`, or why
/// not, naming the first request or audit-log entry that differs. Run it with the chain check
/// (`audit verify`), which proves everything before each head.
pub fn check(c: &mut DbConnection, anchor: &Anchor) -> Result<Result<usize, String>, StoreError> {
    if anchor.heads.format != FORMAT {
        return Ok(Err(format!(
            "not an anchor this version can read (format {:?})",
            anchor.heads.format
        )));
    }
    // A forged or edited file must not pass for a real one.
    if mac_of(&anchor.heads)? != anchor.mac {
        return Ok(Err(
            "the anchor's signature does not match: it was edited, or written under another index key"
                .into(),
        ));
    }
    let taken = anchor.heads.taken_at.format("%Y-%m-%d %H:%M:%S UTC");
    if let Some((seq, hash)) = &anchor.heads.audit_log {
        let now: Option<String> = audit_log::table
            .filter(audit_log::seq.eq(seq))
            .select(audit_log::hash)
            .first(c)
            .optional()?;
        match now {
            None => {
                return Ok(Err(format!(
                    "audit log entry {seq}, the last one at {taken}, is gone: entries were removed"
                )))
            }
            Some(h) if h != *hash => {
                return Ok(Err(format!(
                "audit log entry {seq} differs from the anchor of {taken}: the log was rewritten"
            )))
            }
            Some(_) => {}
        }
    }
    for (id, (seq, hash)) in &anchor.heads.requests {
        let now: Option<Option<String>> = request_events::table
            .filter(request_events::request_id.eq(id))
            .filter(request_events::seq.eq(seq))
            .select(request_events::hash)
            .first(c)
            .optional()?;
        let why = match now {
            None => "is gone: events were removed",
            Some(h) if h.as_deref() != Some(hash.as_str()) => {
                "differs from the anchor: the chain was rewritten"
            }
            Some(_) => continue,
        };
        let reference: Option<String> = requests::table
            .find(id)
            .select(requests::reference)
            .first(c)
            .optional()?;
        return Ok(Err(format!(
            "request {} (id {id}): event {seq}, its last at {taken}, {why}",
            reference.as_deref().unwrap_or("(deleted)")
        )));
    }
    Ok(Ok(
        anchor.heads.requests.len() + usize::from(anchor.heads.audit_log.is_some())
    ))
}

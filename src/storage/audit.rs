//! The tamper-evident event log: each request's events form a hash chain. An event's `hash` is
//! the hex SHA-256 of the previous event's hash and the event's own content (request, sequence
//! number, time, actor, command, statuses, and the SHA-256 of the details as written: opened
//! when sealed, so re-sealing under a new key leaves the chain intact, and replaceable by a
//! marker carrying that digest when the request is anonymised); the first event of a
//! request chains to [`GENESIS`]. Changing, removing or reordering any stored event breaks the
//! chain from there on; [`verify`] names the first broken event.
//!
//! Chains are per request, not one global chain: events are written under each request's own
//! version check, so concurrent work on different requests never waits on a global tail.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use sha2::{Digest, Sha256};

use super::rows::EventRow;
use super::schema::request_events;
use super::{DbConnection, StoreError};

/// What the first event of every request chains to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the chain holds of an event's details: the SHA-256 of the details as written, or, once
/// its request was anonymised, the digest the details were replaced with (so the chain still
/// verifies without them).
pub fn details_digest(details: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(details) {
        if v["anonymised"] == true {
            if let Some(d) = v["digest"].as_str() {
                return d.to_owned();
            }
        }
    }
    Sha256::digest(details.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The event's content as hashed: a JSON array of its fields, in a fixed order (`details` by
/// their digest).
fn content(e: &EventRow) -> String {
    serde_json::json!([
        e.request_id,
        e.seq,
        e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        e.actor_type,
        e.actor_id,
        e.actor_role,
        e.command,
        e.from_status,
        e.to_status,
        details_digest(&e.details),
    ])
    .to_string()
}

/// The hash of an event that follows `prev`.
pub fn hash_of(prev: &str, e: &EventRow) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(content(e).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills in a new event's place in its request's chain (inside the writing transaction, after
/// the request's version check, so the previous event is the one just before it).
pub fn chain(c: &mut DbConnection, row: &mut EventRow) -> Result<(), StoreError> {
    let prev = if row.seq <= 1 {
        GENESIS.to_owned()
    } else {
        request_events::table
            .filter(request_events::request_id.eq(&row.request_id))
            .filter(request_events::seq.eq(row.seq - 1))
            .select(request_events::hash)
            .first::<Option<String>>(c)
            .optional()?
            .flatten()
            // Before the chain existed and not yet sealed: chain to what is there.
            .unwrap_or_else(|| GENESIS.to_owned())
    };
    link(row, prev);
    Ok(())
}

/// Chains the first event of a request not yet stored, which follows no other (no database
/// work: a new request hashes it before its write).
pub fn chain_first(row: &mut EventRow) {
    link(row, GENESIS.to_owned());
}

fn link(row: &mut EventRow, prev: String) {
    row.hash = Some(hash_of(&prev, row));
    row.prev_hash = Some(prev);
}

/// Seals events written before the chain existed, request by request in order (at start-up;
/// several instances may run it at once: each update only fills a hash that is still empty).
pub fn seal_unsealed(c: &mut DbConnection) -> Result<usize, StoreError> {
    let requests: Vec<String> = request_events::table
        .filter(request_events::hash.is_null())
        .select(request_events::request_id)
        .distinct()
        .load(c)?;
    let mut sealed = 0;
    for id in requests {
        let events: Vec<EventRow> = request_events::table
            .filter(request_events::request_id.eq(&id))
            .order(request_events::seq.asc())
            .select(EventRow::as_select())
            .load(c)?;
        let mut prev = GENESIS.to_owned();
        for e in events {
            match &e.hash {
                Some(h) => prev = h.clone(),
                None => {
                    let hash = hash_of(&prev, &opened(&e)?);
                    sealed += diesel::update(
                        request_events::table
                            .filter(request_events::request_id.eq(&e.request_id))
                            .filter(request_events::seq.eq(e.seq))
                            .filter(request_events::hash.is_null()),
                    )
                    .set((
                        request_events::prev_hash.eq(Some(prev.clone())),
                        request_events::hash.eq(Some(hash.clone())),
                    ))
                    .execute(c)?;
                    prev = hash;
                }
            }
        }
    }
    Ok(sealed)
}

/// The event with its details opened (what its hash covers).
fn opened(e: &EventRow) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        details: e.open_details()?,
        ..e.clone()
    })
}

/// Each event's `(prev_hash, hash)` of one request, by sequence number (evidence exports).
pub fn hashes(
    c: &mut DbConnection,
    request_id: &str,
) -> Result<std::collections::BTreeMap<i64, (String, String)>, StoreError> {
    let rows: Vec<(i64, Option<String>, Option<String>)> = request_events::table
        .filter(request_events::request_id.eq(request_id))
        .select((
            request_events::seq,
            request_events::prev_hash,
            request_events::hash,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(seq, prev, hash)| (seq, (prev.unwrap_or_default(), hash.unwrap_or_default())))
        .collect())
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub request_id: String,
    pub reference: Option<String>,
    pub seq: i64,
    pub why: String,
}

/// What a whole check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub requests: usize,
    pub events: usize,
}

#[derive(QueryableByName)]
struct Tail {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last: Option<i64>,
}

/// Checks every request's chain, event by event, reading one event at a time: each hash
/// recomputed from the content as stored, each event chained to the one before, sequence
/// numbers without gaps, and the last one the request's current version (so events removed from
/// the end are found too). Returns the first break, in request id and sequence order.
pub fn verify(c: &mut DbConnection) -> Result<Result<Checked, Broken>, StoreError> {
    verify_in(c, None)
}

/// The same check for one request's chain (an evidence export).
pub fn verify_request(
    c: &mut DbConnection,
    request_id: &str,
) -> Result<Result<Checked, Broken>, StoreError> {
    verify_in(c, Some(request_id))
}

fn verify_in(
    c: &mut DbConnection,
    only: Option<&str>,
) -> Result<Result<Checked, Broken>, StoreError> {
    let mut checked = Checked {
        requests: 0,
        events: 0,
    };
    let mut first_broken: Option<Broken> = None;
    {
        let mut current: Option<(String, i64, String)> = None; // request, last seq, last hash
        let mut check = |e: EventRow| -> Option<Broken> {
            checked.events += 1;
            let (expected_seq, prev) = match &current {
                Some((id, seq, hash)) if *id == e.request_id => (seq + 1, hash.clone()),
                _ => {
                    checked.requests += 1;
                    (1, GENESIS.to_owned())
                }
            };
            let broken = |why: &str| Broken {
                request_id: e.request_id.clone(),
                reference: None,
                seq: e.seq,
                why: why.to_owned(),
            };
            let problem = if e.seq != expected_seq {
                Some(broken(&format!(
                    "expected event {expected_seq} here: an event is missing"
                )))
            } else if e.prev_hash.as_deref() != Some(prev.as_str()) {
                Some(broken("it does not chain to the event before it"))
            } else {
                match opened(&e) {
                    Ok(plain) => (e.hash.as_deref() != Some(hash_of(&prev, &plain).as_str()))
                        .then(|| broken("its content does not match its hash: it was changed")),
                    // Changed ciphertext, or a key no longer configured: the error says which.
                    Err(err) => Some(broken(&format!("its sealed details do not open: {err}"))),
                }
            };
            current = Some((
                e.request_id.clone(),
                e.seq,
                e.hash.clone().unwrap_or_default(),
            ));
            problem
        };
        let mut rows = request_events::table
            .order((request_events::request_id.asc(), request_events::seq.asc()))
            .select(EventRow::as_select())
            .into_boxed();
        if let Some(id) = only {
            rows = rows.filter(request_events::request_id.eq(id.to_owned()));
        }
        let rows = rows.load_iter::<EventRow, diesel::connection::DefaultLoadingMode>(c)?;
        for row in rows {
            if let Some(b) = check(row?) {
                first_broken = Some(b);
                break;
            }
        }
    }
    // Events cut off the end of a request: its version is ahead of its last event.
    let tails: Vec<Tail> = diesel::sql_query(
        "SELECT r.id AS id, r.reference AS reference, r.version AS version, \
         (SELECT MAX(e.seq) FROM request_events e WHERE e.request_id = r.id) AS last \
         FROM requests r WHERE $1 = '' OR r.id = $1 ORDER BY r.id",
    )
    .bind::<Text, _>(only.unwrap_or_default())
    .load(c)?;
    let cut = tails
        .iter()
        .find(|t| t.last.unwrap_or(0) != t.version)
        .map(|t| Broken {
            request_id: t.id.clone(),
            reference: Some(t.reference.clone()),
            seq: t.last.unwrap_or(0) + 1,
            why: format!(
                "the request is at version {} but its events end at {}: events were removed",
                t.version,
                t.last.unwrap_or(0)
            ),
        });
    let broken = match (first_broken, cut) {
        (Some(b), _) => Some(b),
        (None, c) => c,
    };
    Ok(match broken {
        None => Ok(checked),
        Some(mut b) => {
            if b.reference.is_none() {
                b.reference = tails
                    .iter()
                    .find(|t| t.id == b.request_id)
                    .map(|t| t.reference.clone());
            }
            Err(b)
        }
    })
}

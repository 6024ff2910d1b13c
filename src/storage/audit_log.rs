//! The audit log: what happens around requests rather than in their workflow — staff sign-ins
//! (and failed ones), account and role changes, who looked at which request, exports,
//! downloads, configuration changes. Requests' own events have their own chains (`audit.rs`);
//! this is one append-only chain over all entries in `seq` order, each entry's `hash` the
//! SHA-256 of the previous entry's hash and its own content, so an entry changed, removed or
//! inserted afterwards is found by [`verify`].

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::audit::GENESIS;
use super::schema::audit_log;
use super::{from_db_time, to_db_time, DbConnection, StoreError};
use crate::domain::Actor;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct LogRow {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub request_id: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What happened, by whom, about which request (if one).
pub struct Entry<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub request_id: Option<&'a str>,
    pub details: Value,
    pub at: DateTime<Utc>,
}

/// The actions logged (stable names: the auditor's page and API filter on them).
pub mod action {
    pub const SIGN_IN: &str = "staff.sign_in";
    pub const SIGN_IN_FAILED: &str = "staff.sign_in_failed";
    pub const ACCOUNT_ADDED: &str = "staff.account_added";
    pub const ROLE_CHANGED: &str = "staff.role_changed";
    pub const ACCOUNT_ENABLED: &str = "staff.account_enabled";
    pub const ACCOUNT_DISABLED: &str = "staff.account_disabled";
    pub const REQUEST_VIEWED: &str = "request.viewed";
    pub const QUEUE_EXPORTED: &str = "queue.exported";
    pub const RESULT_DOWNLOADED: &str = "result.downloaded";
    pub const EVIDENCE_EXPORTED: &str = "evidence.exported";
    pub const CONFIG_CHANGED: &str = "config.changed";
    pub const REQUEST_ANONYMISED: &str = "request.anonymised";
}

fn content(r: &LogRow) -> String {
    serde_json::json!([
        r.seq,
        r.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        r.actor_type,
        r.actor_id,
        r.actor_role,
        r.action,
        r.request_id,
        r.details,
    ])
    .to_string()
}

fn hash_of(prev: &str, r: &LogRow) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(content(r).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends an entry at the end of the chain. Two writers racing for the same place: the
/// primary key refuses the second, which reads the new end and tries again.
pub fn append(c: &mut DbConnection, e: &Entry<'_>) -> Result<i64, StoreError> {
    let (actor_id, actor_role) = match e.actor {
        Actor::Staff { id, role } => (Some(id.clone()), Some(role.as_str().to_owned())),
        _ => (None, None),
    };
    for _ in 0..50 {
        let written = super::db::write(&mut *c, |c| {
            let last: Option<(i64, String)> = audit_log::table
                .order(audit_log::seq.desc())
                .select((audit_log::seq, audit_log::hash))
                .first(c)
                .optional()?;
            let (seq, prev) = last.map_or((1, GENESIS.to_owned()), |(s, h)| (s + 1, h));
            let mut row = LogRow {
                seq,
                at: to_db_time(e.at),
                actor_type: e.actor.kind_str().to_owned(),
                actor_id: actor_id.clone(),
                actor_role: actor_role.clone(),
                action: e.action.to_owned(),
                request_id: e.request_id.map(str::to_owned),
                details: e.details.to_string(),
                prev_hash: prev,
                hash: String::new(),
            };
            row.hash = hash_of(&row.prev_hash, &row);
            diesel::insert_into(audit_log::table)
                .values(&row)
                .execute(c)
                .map_err(|e| super::requests::duplicate_as(e, "audit entry"))?;
            Ok::<_, StoreError>(seq)
        });
        match written {
            Err(StoreError::Duplicate(_)) => continue,
            other => return other,
        }
    }
    Err(StoreError::Conflict)
}

/// What the auditor filters on.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub request_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
}

/// Entries matching `f`, newest first, with the total.
pub fn list(
    c: &mut DbConnection,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<LogRow>, i64), StoreError> {
    let filtered = || {
        let mut q = audit_log::table.into_boxed();
        if let Some(r) = &f.request_id {
            q = q.filter(audit_log::request_id.eq(r.clone()));
        }
        if let Some(a) = &f.actor_id {
            q = q.filter(audit_log::actor_id.eq(a.clone()));
        }
        if let Some(a) = &f.action {
            q = q.filter(audit_log::action.eq(a.clone()));
        }
        q
    };
    let total = filtered().count().get_result(c)?;
    let rows = filtered()
        .order(audit_log::seq.desc())
        .limit(limit)
        .offset(offset)
        .select(LogRow::as_select())
        .load(c)?;
    Ok((rows, total))
}

/// The latest entry of an action (start-up compares the configuration with the last one).
pub fn last_of(c: &mut DbConnection, action: &str) -> Result<Option<LogRow>, StoreError> {
    Ok(audit_log::table
        .filter(audit_log::action.eq(action))
        .order(audit_log::seq.desc())
        .select(LogRow::as_select())
        .first(c)
        .optional()?)
}

/// Checks the whole chain, one entry at a time: `Ok(entries)`, or the first broken entry's
/// number and why.
pub fn verify(c: &mut DbConnection) -> Result<Result<usize, (i64, String)>, StoreError> {
    let rows = audit_log::table
        .order(audit_log::seq.asc())
        .select(LogRow::as_select())
        .load_iter::<LogRow, diesel::connection::DefaultLoadingMode>(c)?;
    let (mut expected, mut prev, mut n) = (1i64, GENESIS.to_owned(), 0usize);
    for row in rows {
        let row = row?;
        let why = if row.seq != expected {
            Some(format!(
                "expected entry {expected} here: an entry is missing"
            ))
        } else if row.prev_hash != prev {
            Some("it does not chain to the entry before it".to_owned())
        } else if row.hash != hash_of(&prev, &row) {
            Some("its content does not match its hash: it was changed".to_owned())
        } else {
            None
        };
        if let Some(why) = why {
            return Ok(Err((row.seq, why)));
        }
        expected += 1;
        prev = row.hash;
        n += 1;
    }
    Ok(Ok(n))
}

impl LogRow {
    pub fn at(&self) -> DateTime<Utc> {
        from_db_time(self.at)
    }
}

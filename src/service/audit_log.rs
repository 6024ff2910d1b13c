//! The audit log as use cases write it and the auditor reads it (see `storage::audit_log`).
//! Writing is part of the act: a look at a request that cannot be logged is not given.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ServiceError, Services};
use crate::domain::{Actor, Role};
use crate::storage::audit_log::{self as store, action, Entry, Filter, LogRow};

pub fn record(
    s: &Services,
    actor: &Actor,
    what: &str,
    request_id: Option<&str>,
    details: Value,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    store::append(
        &mut *s.db().conn()?,
        &Entry {
            actor,
            action: what,
            request_id,
            details,
            at,
        },
    )?;
    Ok(())
}

/// Auditors only (not even admins: those who act are not those who watch the acting).
pub fn list(
    s: &Services,
    actor: &Actor,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<LogRow>, i64), ServiceError> {
    if !matches!(
        actor,
        Actor::Staff {
            role: Role::Auditor,
            ..
        }
    ) {
        return Err(ServiceError::NotPermitted);
    }
    Ok(store::list(&mut *s.db().conn()?, filter, limit, offset)?)
}

/// At start-up: logs the configuration when it differs from the one last logged (a
/// fingerprint of every setting, secrets shown only as the data key's id).
pub fn note_configuration(
    s: &Services,
    fingerprint: &str,
    at: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let mut conn = s.db().conn()?;
    let last = store::last_of(&mut conn, action::CONFIG_CHANGED)?;
    let same = last
        .and_then(|l| serde_json::from_str::<Value>(&l.details).ok())
        .is_some_and(|d| d["fingerprint"] == fingerprint);
    if same {
        return Ok(false);
    }
    store::append(
        &mut conn,
        &Entry {
            actor: &Actor::System,
            action: action::CONFIG_CHANGED,
            request_id: None,
            details: serde_json::json!({
                "fingerprint": fingerprint,
                "data_key": s.data_key().id(),
            }),
            at,
        },
    )?;
    Ok(true)
}

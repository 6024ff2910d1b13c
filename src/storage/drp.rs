//! The Data Rights Protocol's tables (migration 000022): registered agents, the digests of the
//! bearer tokens they were given, and which DRP request is which of our requests. A status
//! callback is queued in the same transaction as the change it reports (`queue_callback`,
//! called for every event), so none is lost.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::audit_log::{self, Entry};
use super::outbox;
use super::schema::{drp_agents, drp_requests, drp_tokens};
use super::{to_db_time, DbConnection, StoreError};
use crate::domain::{Actor, RequestState};
use crate::interop::drp::{status, DRP_CALLBACK};

/// The audit log's action for a change of an agent's registration.
pub const AGENT_REGISTERED: &str = "drp.agent_registered";
pub const AGENT_CHANGED: &str = "drp.agent_changed";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = drp_agents)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub verify_key: String,
    /// `scheme://host[:port]` the agent's status callbacks may go to; none: no callbacks.
    pub callback_origin: Option<String>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = drp_requests)]
pub struct DrpRequestRow {
    pub id: String,
    pub request_id: Option<String>,
    pub agent_id: String,
    pub agent_request_id: Option<String>,
    pub exercise: String,
    pub regime: Option<String>,
    pub status_callback: Option<String>,
    pub outcome: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn agents(conn: &mut DbConnection) -> Result<Vec<AgentRow>, StoreError> {
    Ok(drp_agents::table
        .order(drp_agents::id.asc())
        .select(AgentRow::as_select())
        .load(conn)?)
}

pub fn agent(conn: &mut DbConnection, id: &str) -> Result<Option<AgentRow>, StoreError> {
    Ok(drp_agents::table
        .filter(drp_agents::id.eq(id))
        .select(AgentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Registers an agent, or replaces its name and key; logged in the audit log in the same
/// transaction. A new key ends the tokens made under the old one.
pub fn register(conn: &mut DbConnection, who: &Actor, row: &AgentRow) -> Result<(), StoreError> {
    super::db::write(&mut *conn, |c| {
        let before = agent(c, &row.id)?;
        match &before {
            None => {
                diesel::insert_into(drp_agents::table)
                    .values(row)
                    .execute(c)?;
            }
            Some(old) => {
                diesel::update(drp_agents::table.filter(drp_agents::id.eq(&row.id)))
                    .set((
                        drp_agents::name.eq(&row.name),
                        drp_agents::verify_key.eq(&row.verify_key),
                        drp_agents::callback_origin.eq(&row.callback_origin),
                        drp_agents::active.eq(row.active),
                        drp_agents::updated_at.eq(row.updated_at),
                    ))
                    .execute(c)?;
                if old.verify_key != row.verify_key {
                    diesel::delete(drp_tokens::table.filter(drp_tokens::agent_id.eq(&row.id)))
                        .execute(c)?;
                }
            }
        }
        audit_log::append(
            c,
            &Entry {
                actor: who,
                action: if before.is_none() {
                    AGENT_REGISTERED
                } else {
                    AGENT_CHANGED
                },
                request_id: None,
                details: json!({
                    "agent_id": row.id, "name": row.name, "verify_key": row.verify_key,
                    "callback_origin": row.callback_origin, "active": row.active,
                }),
                at: row.updated_at.and_utc(),
            },
        )?;
        Ok(())
    })
}

/// Turns an agent off (its tokens end with it) or on again; logged.
pub fn set_active(
    conn: &mut DbConnection,
    who: &Actor,
    id: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::db::write(&mut *conn, |c| {
        let changed = diesel::update(drp_agents::table.filter(drp_agents::id.eq(id)))
            .set((
                drp_agents::active.eq(active),
                drp_agents::updated_at.eq(to_db_time(now)),
            ))
            .execute(c)?;
        if changed != 1 {
            return Err(StoreError::NotFound);
        }
        if !active {
            diesel::delete(drp_tokens::table.filter(drp_tokens::agent_id.eq(id))).execute(c)?;
        }
        audit_log::append(
            c,
            &Entry {
                actor: who,
                action: AGENT_CHANGED,
                request_id: None,
                details: json!({ "agent_id": id, "active": active }),
                at: now,
            },
        )?;
        Ok(())
    })
}

/// Stores a new token's digest for an agent, ending the agent's earlier ones: one pair-wise
/// token per agent at a time.
pub fn replace_token(
    conn: &mut DbConnection,
    agent_id: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::db::write(&mut *conn, |c| {
        diesel::delete(drp_tokens::table.filter(drp_tokens::agent_id.eq(agent_id))).execute(c)?;
        diesel::insert_into(drp_tokens::table)
            .values((
                drp_tokens::token_hash.eq(token_hash),
                drp_tokens::agent_id.eq(agent_id),
                drp_tokens::created_at.eq(to_db_time(now)),
            ))
            .execute(c)?;
        Ok(())
    })
}

/// The active agent a token digest belongs to.
pub fn agent_of_token(
    conn: &mut DbConnection,
    token_hash: &str,
) -> Result<Option<AgentRow>, StoreError> {
    Ok(drp_tokens::table
        .inner_join(drp_agents::table)
        .filter(drp_tokens::token_hash.eq(token_hash))
        .filter(drp_agents::active.eq(true))
        .select(AgentRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_request(conn: &mut DbConnection, row: &DrpRequestRow) -> Result<(), StoreError> {
    diesel::insert_into(drp_requests::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_request(conn: &mut DbConnection, id: &str) -> Result<DrpRequestRow, StoreError> {
    drp_requests::table
        .filter(drp_requests::id.eq(id))
        .select(DrpRequestRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// The agent a request of ours came from, if it came through DRP (for the console).
pub fn agent_of_request(
    conn: &mut DbConnection,
    request_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(drp_requests::table
        .filter(drp_requests::request_id.eq(request_id))
        .select(drp_requests::agent_id)
        .first(conn)
        .optional()?)
}

/// Queues a status callback when a request that came through DRP with a `status_callback`
/// changes its DRP status, reason or expected-by date (inside the caller's transaction). The
/// row carries the state as it is now, so each callback reports the change that made it.
pub fn queue_callback(
    c: &mut DbConnection,
    request_id: &str,
    before: &RequestState,
    after: &RequestState,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if status::summary(before) == status::summary(after) {
        return Ok(());
    }
    let found: Option<(String, Option<String>)> = drp_requests::table
        .filter(drp_requests::request_id.eq(request_id))
        .select((drp_requests::id, drp_requests::status_callback))
        .first(c)
        .optional()?;
    let Some((drp_id, Some(_))) = found else {
        return Ok(());
    };
    let payload = json!({ "drp_request_id": drp_id, "state": after });
    outbox::queue_status_callback(c, request_id, DRP_CALLBACK, &payload, after.version, at)
}

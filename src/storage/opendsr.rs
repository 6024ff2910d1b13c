//! OpenDSR's tables (migration 000023): registered controllers with the digest of their
//! bearer token, and which OpenDSR request is which of our requests. Status callbacks are
//! queued in the same transaction as the change they report (`queue_callbacks`, called for
//! every event), one outbox row per callback URL, so none is lost.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::audit_log::{self, Entry};
use super::outbox;
use super::schema::{opendsr_controllers, opendsr_requests};
use super::{to_db_time, DbConnection, StoreError};
use crate::domain::{Actor, RequestState};
use crate::interop::opendsr::{status, OPENDSR_CALLBACK};

/// The audit log's actions for a controller's registration and its changes.
pub const CONTROLLER_REGISTERED: &str = "opendsr.controller_registered";
pub const CONTROLLER_CHANGED: &str = "opendsr.controller_changed";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = opendsr_controllers)]
pub struct ControllerRow {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    /// `scheme://host[:port]` the controller's status callbacks may go to; none: no callbacks.
    pub callback_origin: Option<String>,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = opendsr_requests)]
pub struct OpendsrRequestRow {
    pub controller_id: String,
    pub subject_request_id: String,
    pub request_id: String,
    pub subject_request_type: String,
    pub regulation: String,
    pub api_version: Option<String>,
    /// A JSON array of URLs.
    pub status_callback_urls: String,
    pub created_at: NaiveDateTime,
}

impl OpendsrRequestRow {
    pub fn callback_urls(&self) -> Vec<String> {
        serde_json::from_str(&self.status_callback_urls).unwrap_or_default()
    }
}

pub fn controllers(conn: &mut DbConnection) -> Result<Vec<ControllerRow>, StoreError> {
    Ok(opendsr_controllers::table
        .order(opendsr_controllers::id.asc())
        .select(ControllerRow::as_select())
        .load(conn)?)
}

pub fn controller(conn: &mut DbConnection, id: &str) -> Result<Option<ControllerRow>, StoreError> {
    Ok(opendsr_controllers::table
        .find(id)
        .select(ControllerRow::as_select())
        .first(conn)
        .optional()?)
}

fn logged(
    c: &mut DbConnection,
    who: &Actor,
    action: &str,
    details: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    audit_log::append(
        c,
        &Entry {
            actor: who,
            action,
            request_id: None,
            details,
            at,
        },
    )?;
    Ok(())
}

/// Registers a controller with its token's digest, or, for one registered already, changes
/// its name and gives it the new token (the old one ends); logged in the same transaction.
pub fn register(
    conn: &mut DbConnection,
    who: &Actor,
    row: &ControllerRow,
) -> Result<(), StoreError> {
    super::db::write(&mut *conn, |c| {
        let changed = diesel::update(opendsr_controllers::table.find(&row.id))
            .set((
                opendsr_controllers::name.eq(&row.name),
                opendsr_controllers::token_hash.eq(&row.token_hash),
                opendsr_controllers::callback_origin.eq(&row.callback_origin),
                opendsr_controllers::active.eq(row.active),
                opendsr_controllers::updated_at.eq(row.updated_at),
            ))
            .execute(c)?;
        if changed == 0 {
            diesel::insert_into(opendsr_controllers::table)
                .values(row)
                .execute(c)?;
        }
        // The token's digest is not logged: it is a secret's stand-in, and says nothing.
        let action = if changed == 0 {
            CONTROLLER_REGISTERED
        } else {
            CONTROLLER_CHANGED
        };
        let details = json!({
            "controller_id": row.id, "name": row.name, "callback_origin": row.callback_origin,
            "active": row.active, "new_token": true,
        });
        logged(c, who, action, details, row.updated_at.and_utc())
    })
}

/// Turns a controller off (its token stops working) or on again; logged.
pub fn set_active(
    conn: &mut DbConnection,
    who: &Actor,
    id: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::db::write(&mut *conn, |c| {
        let changed = diesel::update(opendsr_controllers::table.find(id))
            .set((
                opendsr_controllers::active.eq(active),
                opendsr_controllers::updated_at.eq(to_db_time(now)),
            ))
            .execute(c)?;
        if changed != 1 {
            return Err(StoreError::NotFound);
        }
        let details = json!({ "controller_id": id, "active": active });
        logged(c, who, CONTROLLER_CHANGED, details, now)
    })
}

/// The active controller a token digest belongs to.
pub fn controller_of_token(
    conn: &mut DbConnection,
    token_hash: &str,
) -> Result<Option<ControllerRow>, StoreError> {
    Ok(opendsr_controllers::table
        .filter(opendsr_controllers::token_hash.eq(token_hash))
        .filter(opendsr_controllers::active.eq(true))
        .select(ControllerRow::as_select())
        .first(conn)
        .optional()?)
}

/// Links a new OpenDSR request to ours (inside the submission's transaction). The same
/// `subject_request_id` twice from one controller: `Duplicate`.
pub fn insert_request(c: &mut DbConnection, row: &OpendsrRequestRow) -> Result<(), StoreError> {
    diesel::insert_into(opendsr_requests::table)
        .values(row)
        .execute(c)
        .map_err(|e| super::requests::duplicate_as(e, "subject_request_id"))?;
    Ok(())
}

pub fn find_request(
    conn: &mut DbConnection,
    controller_id: &str,
    subject_request_id: &str,
) -> Result<OpendsrRequestRow, StoreError> {
    opendsr_requests::table
        .find((controller_id, subject_request_id))
        .select(OpendsrRequestRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// The controller a request of ours came from, if it came through OpenDSR (for the console).
pub fn controller_of_request(
    conn: &mut DbConnection,
    request_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(opendsr_requests::table
        .filter(opendsr_requests::request_id.eq(request_id))
        .select(opendsr_requests::controller_id)
        .first(conn)
        .optional()?)
}

/// Queues a status callback to each of the controller's URLs when a request that came through
/// OpenDSR changes its OpenDSR status (or what the extension tells: our status, our reason)
/// or its expected completion time. Inside the caller's transaction; the rows carry the state
/// as it is now, so each callback reports the change that made it.
pub fn queue_callbacks(
    c: &mut DbConnection,
    request_id: &str,
    before: &RequestState,
    after: &RequestState,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if status::summary(before) == status::summary(after) {
        return Ok(());
    }
    let found: Option<OpendsrRequestRow> = opendsr_requests::table
        .filter(opendsr_requests::request_id.eq(request_id))
        .select(OpendsrRequestRow::as_select())
        .first(c)
        .optional()?;
    let Some(found) = found else {
        return Ok(());
    };
    for url in found.callback_urls() {
        let payload = json!({
            "controller_id": found.controller_id,
            "subject_request_id": found.subject_request_id,
            "url": url,
            "state": after,
        });
        outbox::queue_status_callback(
            c,
            request_id,
            OPENDSR_CALLBACK,
            &payload,
            after.version,
            at,
        )?;
    }
    Ok(())
}

//! The DRP use cases: agents (registered by an admin), pair-wise key set-up, and requests made,
//! read and revoked by the agent that made them. Blocking (diesel), like every service.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::exercise::{self, Action};
use super::message::{self, Refusal};
use super::status::{self, Links};
use super::DrpSettings;
use crate::domain::{Actor, Channel, Command, FreeText, Locale, RequestDetails};
use crate::interop::admin;
use crate::service::requests::{self, NewRequest};
use crate::service::{ServiceError, Services};
use crate::storage::consents::{self as ledger, ConsentEvent};
use crate::storage::drp::{self as store, AgentRow, DrpRequestRow};
use crate::storage::{from_db_time, to_db_time, Database, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DrpError {
    /// DRP is not configured here: its routes do not exist.
    #[error("the Data Rights Protocol is not configured")]
    NotConfigured,
    /// No bearer token, or one we did not issue (or issued to an agent since turned off).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A signed message failed a check.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The agent may not see or change this (another agent's request or agent id).
    #[error("this agent may not use this resource")]
    Forbidden,
    #[error("no such request")]
    NotFound,
    /// A well-signed message asks for something we do not do.
    #[error("{0}")]
    Unsupported(String),
    /// A well-signed message with a field we cannot use.
    #[error("{0}")]
    Invalid(String),
    /// The request can no longer be revoked (fulfilment started, or it ended).
    #[error("the request can no longer be revoked")]
    NotRevocable,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for DrpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => DrpError::NotFound,
            other => DrpError::Service(other.into()),
        }
    }
}

pub fn settings(s: &Services) -> Result<&DrpSettings, DrpError> {
    s.drp().ok_or(DrpError::NotConfigured)
}

/// The digest a bearer token is stored as (tokens are 256 random bits: a plain hash suffices).
pub fn token_hash(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// An agent id as the network's directory writes them (`[A-Z_]+`), digits and dashes allowed.
pub fn valid_agent_id(id: &str) -> bool {
    crate::interop::admin::valid_id(id)
}

/// Registers an agent or changes its name and key: admins only (the CLI acts as the system).
pub fn register_agent(
    db: &Database,
    who: &Actor,
    id: &str,
    name: &str,
    verify_key: &str,
    callback_origin: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DrpError> {
    admin::require_admin(who)?;
    if !valid_agent_id(id) {
        return Err(DrpError::Invalid(
            "the agent id is 1 to 64 letters, digits, '_' or '-'".into(),
        ));
    }
    let name = admin::checked_name(name, "agent").map_err(DrpError::Invalid)?;
    message::parse_verify_key(verify_key).map_err(DrpError::Invalid)?;
    let callback_origin = callback_origin
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(crate::interop::callback::registered_origin)
        .transpose()
        .map_err(DrpError::Invalid)?;
    let row = AgentRow {
        id: id.to_owned(),
        name: name.to_owned(),
        verify_key: verify_key.trim().to_owned(),
        callback_origin,
        active: true,
        created_at: to_db_time(now),
        updated_at: to_db_time(now),
    };
    store::register(&mut *db.conn()?, who, &row)?;
    tracing::info!(agent = %id, "drp agent registered");
    Ok(())
}

pub fn set_agent_active(
    db: &Database,
    who: &Actor,
    id: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<(), DrpError> {
    admin::require_admin(who)?;
    store::set_active(&mut *db.conn()?, who, id, active, now)?;
    tracing::info!(agent = %id, active, "drp agent changed");
    Ok(())
}

pub fn agents(db: &Database) -> Result<Vec<AgentRow>, DrpError> {
    Ok(store::agents(&mut *db.conn()?)?)
}

/// Pair-wise key set-up (§2.05): the message is signed by the agent the path names; a token
/// is made, its digest stored, and the token returned (once).
pub fn key_setup(
    s: &Services,
    agent_id: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<String, DrpError> {
    let cfg = settings(s)?;
    let agent = store::agent(&mut *s.db().conn()?, agent_id)?
        .filter(|a| a.active)
        .ok_or(DrpError::Forbidden)?;
    let key = message::parse_verify_key(&agent.verify_key).map_err(DrpError::Invalid)?;
    let signed = message::open(body, &key)?;
    message::check_claims(&signed, &agent.id, &cfg.business_id, now)?;
    let token = data_encoding::BASE64URL_NOPAD.encode(&rand::random::<[u8; 32]>());
    store::replace_token(&mut *s.db().conn()?, &agent.id, &token_hash(&token), now)?;
    tracing::info!(agent = %agent.id, "drp token issued");
    Ok(token)
}

/// The agent a bearer token was issued to.
pub fn authenticate(s: &Services, token: Option<&str>) -> Result<AgentRow, DrpError> {
    settings(s)?;
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(DrpError::Unauthorized)?;
    store::agent_of_token(&mut *s.db().conn()?, &token_hash(token))?.ok_or(DrpError::Unauthorized)
}

/// Opens a message an authenticated agent signed and checks its claims.
fn open_signed(
    s: &Services,
    agent: &AgentRow,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, DrpError> {
    let cfg = settings(s)?;
    let key = message::parse_verify_key(&agent.verify_key).map_err(DrpError::Invalid)?;
    let signed = message::open(body, &key)?;
    Ok(message::check_claims(
        &signed,
        &agent.id,
        &cfg.business_id,
        now,
    )?)
}

fn optional_text(m: &Map<String, Value>, k: &str) -> Result<Option<String>, DrpError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) if !v.trim().is_empty() && v.len() <= 2000 => {
            Ok(Some(v.trim().to_owned()))
        }
        Some(_) => Err(DrpError::Invalid(format!("{k} must be a non-empty string"))),
    }
}

/// A Data Rights Exercise (§2.01): the signed message becomes one of our requests (or, for an
/// opt-in to sale, a consent grant), and the answer is its status object.
pub fn exercise(
    s: &Services,
    agent: &AgentRow,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Value, DrpError> {
    let m = open_signed(s, agent, body, now)?;
    let name = optional_text(&m, "exercise")?
        .ok_or_else(|| DrpError::Invalid("exercise is required".into()))?;
    let action = exercise::action(&name)
        .ok_or_else(|| DrpError::Unsupported(format!("unsupported rights action: {name}")))?;
    let regime = optional_text(&m, "regime")?;
    let jurisdiction = exercise::jurisdiction(regime.as_deref())
        .ok_or_else(|| DrpError::Unsupported("unsupported regime (only ccpa)".into()))?;
    let callback = optional_text(&m, "status_callback")?;
    if let Some(url) = &callback {
        crate::interop::callback::allowed(agent.callback_origin.as_deref(), url)
            .map_err(DrpError::Invalid)?;
    }
    let who = exercise::identity(&m).map_err(DrpError::Invalid)?;
    let row = DrpRequestRow {
        id: uuid::Uuid::new_v4().to_string(),
        request_id: None,
        agent_id: agent.id.clone(),
        agent_request_id: optional_text(&m, "agent-request-id")?,
        exercise: name,
        regime,
        status_callback: callback,
        outcome: None,
        created_at: to_db_time(now),
    };
    match action {
        Action::Request { kind, details } => {
            let details = RequestDetails::parse(kind, details)
                .map_err(|e| DrpError::Service(ServiceError::Internal(e.to_string())))?;
            let new = NewRequest {
                kind,
                jurisdiction,
                contact: who.contact,
                details,
                locale: Locale::En,
                channel: Channel::Online,
                received_at: None,
                representative: None,
                platform_user_id: None,
            };
            let link = |c: &mut crate::storage::DbConnection,
                        request: &crate::storage::rows::StoredRequest| {
                let linked = DrpRequestRow {
                    request_id: Some(request.id.clone()),
                    ..row.clone()
                };
                store::insert_request(c, &linked)
            };
            let request = crate::interop::intake::submit(s, new, who.attested, link, now)?;
            tracing::info!(agent = %agent.id, reference = %request.reference, "drp request received");
            Ok(status_of(
                s,
                &row.id,
                row.agent_request_id.as_deref(),
                &request,
            ))
        }
        Action::ConsentGrant { purpose } => {
            let granted = who.attested && who.contact.email.is_some();
            let row = DrpRequestRow {
                outcome: Some(if granted { "fulfilled" } else { "denied" }.into()),
                ..row
            };
            let webhook = s.consents().webhook_url.is_some();
            let event = ConsentEvent {
                id: format!("drp:{}", row.id),
                platform_user_id: None,
                email: who.contact.email.as_ref().map(|e| e.as_str().to_owned()),
                purpose: purpose.as_str().to_owned(),
                granted: true,
                source: format!("drp:{}", agent.id),
                request_id: None,
                at: to_db_time(now),
            };
            crate::storage::db::write(&mut *s.db().conn()?, |c| {
                store::insert_request(c, &row)?;
                if granted {
                    ledger::record(c, &event, webhook, now)?;
                }
                Ok::<_, StoreError>(())
            })?;
            tracing::info!(agent = %agent.id, granted, "drp opt-in answered");
            Ok(grant_status(&row))
        }
    }
}

/// The status object of a request made through DRP.
fn status_of(
    s: &Services,
    drp_id: &str,
    agent_request_id: Option<&str>,
    request: &crate::storage::rows::StoredRequest,
) -> Value {
    let links = Links {
        request_page: format!("{}/requests/{}", s.public_url(), request.reference.as_str()),
    };
    status::object(
        drp_id,
        agent_request_id,
        &request.state,
        &links,
        s.policy().verification_window_days,
    )
}

/// The status of an opt-in, answered at once.
fn grant_status(row: &DrpRequestRow) -> Value {
    let mut o = json!({
        "request_id": row.id,
        "received_at": from_db_time(row.created_at),
        "status": row.outcome,
    });
    if let Some(m) = o.as_object_mut() {
        if let Some(id) = &row.agent_request_id {
            m.insert("agent_request_id".into(), json!(id));
        }
        if row.outcome.as_deref() == Some("denied") {
            m.insert("reason".into(), json!("insuf_verification"));
            m.insert(
                "processing_details".into(),
                json!("An opt-in is recorded only for an email address the agent verified"),
            );
        } else {
            m.insert(
                "processing_details".into(),
                json!("The consent to sale (sharing with partners) is recorded"),
            );
        }
    }
    o
}

/// The request `drp_id` if `agent` made it (another agent's: forbidden).
fn own(s: &Services, agent: &AgentRow, drp_id: &str) -> Result<DrpRequestRow, DrpError> {
    let row = store::find_request(&mut *s.db().conn()?, drp_id)?;
    if row.agent_id != agent.id {
        return Err(DrpError::Forbidden);
    }
    Ok(row)
}

/// Data Rights Status (§2.02).
pub fn status(s: &Services, agent: &AgentRow, drp_id: &str) -> Result<Value, DrpError> {
    let row = own(s, agent, drp_id)?;
    match &row.request_id {
        Some(id) => {
            let request = requests::get(s, id)?;
            Ok(status_of(
                s,
                &row.id,
                row.agent_request_id.as_deref(),
                &request,
            ))
        }
        None => Ok(grant_status(&row)),
    }
}

/// Data Rights Revoke (§2.04): a signed message (the four claims, and an optional `reason`);
/// the request is withdrawn as if the user had withdrawn it.
pub fn revoke(
    s: &Services,
    agent: &AgentRow,
    drp_id: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Value, DrpError> {
    let m = open_signed(s, agent, body, now)?;
    let row = own(s, agent, drp_id)?;
    let Some(id) = &row.request_id else {
        return Err(DrpError::NotRevocable);
    };
    let reason = optional_text(&m, "reason")?
        .map(|r| FreeText::parse(&r))
        .transpose()
        .map_err(|e| DrpError::Invalid(format!("reason: {e}")))?;
    let request = match requests::act(
        s,
        id,
        &Actor::Subject,
        &Command::Withdraw { reason },
        None,
        now,
    ) {
        Ok(r) => r,
        Err(ServiceError::Transition(_)) => return Err(DrpError::NotRevocable),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(agent = %agent.id, reference = %request.reference, "drp request revoked");
    Ok(status_of(
        s,
        &row.id,
        row.agent_request_id.as_deref(),
        &request,
    ))
}

/// A status callback: where it goes and its body, the status object of the state the outbox
/// row recorded. The URL is checked against the agent's registered origin again (the admin
/// may have changed it since the request came).
pub fn callback(
    s: &Services,
    drp_id: &str,
    state: &crate::domain::RequestState,
) -> Result<(String, Value), DrpError> {
    let mut conn = s.db().conn()?;
    let row = store::find_request(&mut conn, drp_id)?;
    let url = row
        .status_callback
        .clone()
        .ok_or_else(|| DrpError::Invalid("the request has no status_callback".into()))?;
    let origin = store::agent(&mut conn, &row.agent_id)?.and_then(|a| a.callback_origin);
    drop(conn);
    crate::interop::callback::allowed(origin.as_deref(), &url).map_err(DrpError::Invalid)?;
    let id = row.request_id.as_deref().ok_or(DrpError::NotFound)?;
    let request = requests::get(s, id)?;
    let snapshot = crate::storage::rows::StoredRequest {
        state: state.clone(),
        ..request
    };
    let status = status_of(s, &row.id, row.agent_request_id.as_deref(), &snapshot);
    Ok((url, status))
}

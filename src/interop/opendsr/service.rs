//! The OpenDSR use cases: controllers (registered by an admin, each with a bearer token), and
//! requests created, read and cancelled by the controller that made them. Blocking (diesel),
//! like every service.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::status::{self, Links};
use super::OpendsrSettings;
use crate::domain::details::DataCategory;
use crate::domain::{
    Actor, Channel, Command, Jurisdiction, Locale, RequestDetails, RequestKind, SubjectContact,
};
use crate::interop::admin;
use crate::interop::drp::service::token_hash;
use crate::service::requests::{self, NewRequest};
use crate::service::{ServiceError, Services};
use crate::storage::opendsr::{self as store, ControllerRow, OpendsrRequestRow};
use crate::storage::rows::StoredRequest;
use crate::storage::{to_db_time, Database, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpendsrError {
    /// OpenDSR is not configured here: its routes do not exist.
    #[error("OpenDSR is not configured")]
    NotConfigured,
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("no such request")]
    NotFound,
    /// The request cannot be used; `reason` is our stable code (§7.6's `errors[].reason`).
    #[error("{message}")]
    Invalid {
        reason: &'static str,
        message: String,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for OpendsrError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => OpendsrError::NotFound,
            other => OpendsrError::Service(other.into()),
        }
    }
}

fn invalid(reason: &'static str, message: impl Into<String>) -> OpendsrError {
    OpendsrError::Invalid {
        reason,
        message: message.into(),
    }
}

pub fn settings(s: &Services) -> Result<&OpendsrSettings, OpendsrError> {
    s.opendsr().ok_or(OpendsrError::NotConfigured)
}

/// Registers a controller, or gives a registered one a new token (and name); returns the
/// token, shown once. Admins only (the CLI acts as the system).
pub fn register_controller(
    db: &Database,
    who: &Actor,
    id: &str,
    name: &str,
    callback_origin: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, OpendsrError> {
    admin::require_admin(who)?;
    if !admin::valid_id(id) {
        return Err(invalid(
            "invalid_value",
            "the controller id is 1 to 64 letters, digits, '_' or '-'",
        ));
    }
    let name = admin::checked_name(name, "controller").map_err(|m| invalid("invalid_value", m))?;
    let callback_origin = callback_origin
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(crate::interop::callback::registered_origin)
        .transpose()
        .map_err(|m| invalid("invalid_value", m))?;
    let token = data_encoding::BASE64URL_NOPAD.encode(&rand::random::<[u8; 32]>());
    let row = ControllerRow {
        id: id.to_owned(),
        name: name.to_owned(),
        token_hash: token_hash(&token),
        callback_origin,
        active: true,
        created_at: to_db_time(now),
        updated_at: to_db_time(now),
    };
    store::register(&mut *db.conn()?, who, &row)?;
    tracing::info!(controller = %id, "opendsr controller registered");
    Ok(token)
}

pub fn set_controller_active(
    db: &Database,
    who: &Actor,
    id: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<(), OpendsrError> {
    admin::require_admin(who)?;
    store::set_active(&mut *db.conn()?, who, id, active, now)?;
    tracing::info!(controller = %id, active, "opendsr controller changed");
    Ok(())
}

pub fn controllers(db: &Database) -> Result<Vec<ControllerRow>, OpendsrError> {
    Ok(store::controllers(&mut *db.conn()?)?)
}

/// The controller a bearer token was given to.
pub fn authenticate(s: &Services, token: Option<&str>) -> Result<ControllerRow, OpendsrError> {
    settings(s)?;
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(OpendsrError::Unauthorized)?;
    store::controller_of_token(&mut *s.db().conn()?, &token_hash(token))?
        .ok_or(OpendsrError::Unauthorized)
}

/// The discovery document (§6.3).
pub fn discovery(s: &Services) -> Result<Value, OpendsrError> {
    settings(s)?;
    Ok(json!({
        "api_version": super::API_VERSION,
        "supported_identities": [{ "identity_type": "email", "identity_format": "raw" }],
        "supported_subject_request_types": ["access", "portability", "erasure"],
        "processor_certificate": format!("{}/opendsr/v1/certificate.pem", s.public_url()),
    }))
}

/// An OpenDSR request type as our kind, with the details it asks for.
pub fn kind_of(subject_request_type: &str) -> Option<(RequestKind, Value)> {
    let all: Vec<&str> = DataCategory::ALL.iter().map(|c| c.as_str()).collect();
    Some(match subject_request_type {
        "access" => (
            RequestKind::Access,
            json!({ "categories": all, "format": "page" }),
        ),
        "portability" => (
            RequestKind::Portability,
            json!({ "categories": all, "format": "json" }),
        ),
        "erasure" => (RequestKind::Deletion, json!({ "scope": "account" })),
        _ => return None,
    })
}

/// The jurisdiction a `regulation` runs in.
pub fn jurisdiction_of(regulation: &str) -> Option<Jurisdiction> {
    match regulation {
        "gdpr" => Some(Jurisdiction::Eu),
        "ccpa" => Some(Jurisdiction::UsCa),
        _ => None,
    }
}

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, OpendsrError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(v)) if !v.trim().is_empty() && v.len() <= 2000 => Ok(Some(v.trim())),
        Some(_) => Err(invalid(
            "invalid_value",
            format!("{k} must be a non-empty string"),
        )),
    }
}

fn required<'a>(m: &'a Map<String, Value>, k: &str) -> Result<&'a str, OpendsrError> {
    text(m, k)?.ok_or_else(|| invalid("missing_field", format!("{k} field is required")))
}

/// A lowercase UUID v4 (§1.1, §7.1.1).
fn valid_uuid_v4(v: &str) -> bool {
    uuid::Uuid::parse_str(v).is_ok_and(|u| u.get_version_num() == 4)
        && v.len() == 36
        && !v.chars().any(|c| c.is_ascii_uppercase())
}

/// The subject's email address from the identities (§5.3): only `email` in `raw` format lets
/// us find the account and write to its owner.
fn contact_of(m: &Map<String, Value>) -> Result<SubjectContact, OpendsrError> {
    let unusable = || {
        invalid(
            "unsupported_identity",
            "subject_identities must hold an identity_type email in identity_format raw",
        )
    };
    let list = m
        .get("subject_identities")
        .and_then(Value::as_array)
        .ok_or_else(unusable)?;
    let email = list
        .iter()
        .find(|i| i["identity_type"] == "email" && i["identity_format"] == "raw")
        .and_then(|i| i["identity_value"].as_str())
        .ok_or_else(unusable)?;
    SubjectContact::new(None, Some(email), None)
        .map_err(|e| invalid("invalid_identity", e.to_string()))
}

/// The request's callback URLs: each must be at the controller's registered callback origin
/// (`interop::callback::allowed`).
fn callback_urls(
    m: &Map<String, Value>,
    origin: Option<&str>,
) -> Result<Vec<String>, OpendsrError> {
    let bad = || {
        invalid(
            "invalid_callback_url",
            "status_callback_urls must be an array of at most 10 http(s) URLs",
        )
    };
    let list = match m.get("status_callback_urls") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(list)) if list.len() <= 10 => list,
        Some(_) => return Err(bad()),
    };
    list.iter()
        .map(|u| match u.as_str() {
            Some(u) if u.len() <= 2000 => crate::interop::callback::allowed(origin, u)
                .map(|()| u.to_owned())
                .map_err(|m| invalid("invalid_callback_url", m)),
            _ => Err(bad()),
        })
        .collect()
}

/// A new request (§7.1). `legacy`: it came on an OpenGDPR route name, where `regulation` did
/// not exist yet and means `gdpr`. Returns the response of §7.3 without its signature.
pub fn create(
    s: &Services,
    controller: &ControllerRow,
    body: &[u8],
    legacy: bool,
    now: DateTime<Utc>,
) -> Result<Value, OpendsrError> {
    settings(s)?;
    let m: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| invalid("invalid_json", "the body must be a JSON object"))?;
    let id = required(&m, "subject_request_id")?;
    if !valid_uuid_v4(id) {
        return Err(invalid(
            "invalid_subject_request_id",
            "subject_request_id must be a lowercase UUID v4",
        ));
    }
    let type_name = required(&m, "subject_request_type")?;
    let (kind, details) = kind_of(type_name).ok_or_else(|| {
        invalid(
            "unsupported_request_type",
            "subject_request_type must be access, portability or erasure",
        )
    })?;
    let regulation = match (text(&m, "regulation")?, legacy) {
        (Some(r), _) => r,
        (None, true) => "gdpr",
        (None, false) => return Err(invalid("missing_field", "regulation field is required")),
    };
    let jurisdiction = jurisdiction_of(regulation)
        .ok_or_else(|| invalid("unsupported_regulation", "regulation must be gdpr or ccpa"))?;
    let submitted = required(&m, "submitted_time")?;
    if DateTime::parse_from_rfc3339(submitted).is_err() {
        return Err(invalid(
            "invalid_value",
            "submitted_time must be an RFC 3339 date",
        ));
    }
    let contact = contact_of(&m)?;
    let urls = callback_urls(&m, controller.callback_origin.as_deref())?;
    let api_version = text(&m, "api_version")?.map(str::to_owned);
    match store::find_request(&mut *s.db().conn()?, &controller.id, id) {
        Ok(_) => {
            return Err(invalid(
                "duplicate_request",
                "a request with this subject_request_id exists already",
            ))
        }
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let details = RequestDetails::parse(kind, details)
        .map_err(|e| OpendsrError::Service(ServiceError::Internal(e.to_string())))?;
    let new = NewRequest {
        kind,
        jurisdiction,
        contact,
        details,
        locale: Locale::En,
        channel: Channel::Online,
        received_at: None,
        representative: None,
        platform_user_id: None,
    };
    let row = OpendsrRequestRow {
        controller_id: controller.id.clone(),
        subject_request_id: id.to_owned(),
        request_id: String::new(),
        subject_request_type: type_name.to_owned(),
        regulation: regulation.to_owned(),
        api_version,
        status_callback_urls: serde_json::to_string(&urls).unwrap_or_else(|_| "[]".into()),
        created_at: to_db_time(now),
    };
    let link = |c: &mut crate::storage::DbConnection, request: &StoredRequest| {
        let linked = OpendsrRequestRow {
            request_id: request.id.clone(),
            ..row.clone()
        };
        store::insert_request(c, &linked)
    };
    // The controller verified the subject before sending (§3.2): its word, not our proof.
    let request = crate::interop::intake::submit(s, new, true, link, now)?;
    tracing::info!(controller = %controller.id, reference = %request.reference, "opendsr request received");
    let summary = status::summary(&request.state);
    Ok(json!({
        "controller_id": controller.id,
        "subject_request_id": id,
        "received_time": request.state.received_at,
        "expected_completion_time": summary.expected_completion_time,
        "encoded_request": data_encoding::BASE64.encode(body),
        "api_version": super::API_VERSION,
    }))
}

/// The status object of a request.
fn status_of(s: &Services, row: &OpendsrRequestRow, request: &StoredRequest) -> Value {
    let domain = s
        .opendsr()
        .map(|c| c.processor_domain.clone())
        .unwrap_or_default();
    let links = Links {
        request_page: format!("{}/requests/{}", s.public_url(), request.reference.as_str()),
    };
    status::object(
        &row.controller_id,
        &row.subject_request_id,
        &request.state,
        &links,
        &domain,
    )
}

/// Request status (§8.1); another controller's request is not found.
pub fn status(s: &Services, controller: &ControllerRow, id: &str) -> Result<Value, OpendsrError> {
    settings(s)?;
    let row = store::find_request(&mut *s.db().conn()?, &controller.id, id)?;
    let request = requests::get(s, &row.request_id)?;
    Ok(status_of(s, &row, &request))
}

/// Cancellation (§9): only while `pending`; the request is withdrawn as if the user had
/// withdrawn it. Returns the response of §9.2 without its signature.
pub fn cancel(
    s: &Services,
    controller: &ControllerRow,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Value, OpendsrError> {
    settings(s)?;
    let row = store::find_request(&mut *s.db().conn()?, &controller.id, id)?;
    let request = requests::get(s, &row.request_id)?;
    let not_pending = || {
        invalid(
            "not_cancellable",
            "a request can be cancelled only while it is pending",
        )
    };
    if status::summary(&request.state).status != "pending" {
        return Err(not_pending());
    }
    let withdraw = Command::Withdraw { reason: None };
    // On the version read: a request that left `pending` meanwhile (staff approved it) is not
    // withdrawn behind the check's back.
    let version = Some(request.state.version);
    match requests::act(s, &row.request_id, &Actor::Subject, &withdraw, version, now) {
        Ok(_) => {}
        Err(ServiceError::Transition(_) | ServiceError::Stale { .. }) => return Err(not_pending()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(controller = %controller.id, reference = %request.reference, "opendsr request cancelled");
    Ok(json!({
        "controller_id": controller.id,
        "subject_request_id": row.subject_request_id,
        "received_time": now,
        "api_version": super::API_VERSION,
    }))
}

/// A callback's body (§8.6): the status object of the state the outbox row recorded, and the
/// URL it goes to.
pub fn callback_body(
    s: &Services,
    controller_id: &str,
    subject_request_id: &str,
    url: &str,
    state: &crate::domain::RequestState,
) -> Result<Value, OpendsrError> {
    let mut conn = s.db().conn()?;
    let row = store::find_request(&mut conn, controller_id, subject_request_id)?;
    // Checked again at sending: the admin may have changed the controller's origin since.
    let origin = store::controller(&mut conn, controller_id)?.and_then(|c| c.callback_origin);
    drop(conn);
    crate::interop::callback::allowed(origin.as_deref(), url)
        .map_err(|m| invalid("invalid_callback_url", m))?;
    let request = requests::get(s, &row.request_id)?;
    let snapshot = StoredRequest {
        state: state.clone(),
        ..request
    };
    let mut body = status_of(s, &row, &snapshot);
    if let Some(m) = body.as_object_mut() {
        m.insert("status_callback_url".into(), json!(url));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opendsr_type_has_a_kind_with_valid_details() {
        for (t, want) in [
            ("access", RequestKind::Access),
            ("portability", RequestKind::Portability),
            ("erasure", RequestKind::Deletion),
        ] {
            let (kind, details) = kind_of(t).unwrap();
            assert_eq!(kind, want);
            assert!(RequestDetails::parse(kind, details).is_ok(), "{t}");
        }
        assert!(kind_of("rectification").is_none());
        assert_eq!(jurisdiction_of("gdpr"), Some(Jurisdiction::Eu));
        assert_eq!(jurisdiction_of("ccpa"), Some(Jurisdiction::UsCa));
        assert_eq!(jurisdiction_of("lgpd"), None);
    }

    #[test]
    fn subject_request_ids_are_lowercase_uuid_v4() {
        assert!(valid_uuid_v4("a7551968-d5d6-44b2-9831-815ac9017798"));
        assert!(!valid_uuid_v4("A7551968-D5D6-44B2-9831-815AC9017798"));
        assert!(!valid_uuid_v4("a7551968-d5d6-14b2-9831-815ac9017798"));
        assert!(!valid_uuid_v4("a7551968d5d644b29831815ac9017798"));
    }
}

//! Submitting requests and acting on them.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::{ServiceError, Services};
use crate::domain::{
    self, Actor, Channel, Command, Jurisdiction, Locale, Reference, Relationship, RequestDetails,
    RequestKind, Role, Status, SubjectContact,
};
use crate::storage::inserts::Writes;
use crate::storage::requests::{self as store, ListFilter};
use crate::storage::rows::StoredRequest;
use crate::storage::{staff as staff_store, StoreError};

/// A parsed submission: every field already a domain value.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub kind: RequestKind,
    pub jurisdiction: Jurisdiction,
    pub contact: SubjectContact,
    pub details: RequestDetails,
    pub locale: Locale,
    pub channel: Channel,
    /// For requests logged by staff: when it really arrived. None: now.
    pub received_at: Option<DateTime<Utc>>,
    /// Someone acting for the subject (guardian, relative, agent), if so.
    pub representative: Option<Relationship>,
    /// The platform account, when the request came with a token the platform signed.
    pub platform_user_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub request: StoredRequest,
}

/// Clock skew we tolerate between a staff member's stated receipt time and ours.
const RECEIPT_SKEW: i64 = 5;

pub fn submit(
    s: &Services,
    new: NewRequest,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Submitted, ServiceError> {
    submit_with(s, new, actor, now, |_| Writes::new())
}

/// As [`submit`], with `also` writing more about the new request in the same transaction (the
/// portal and the API store the first verification code with the request: one commit, and no
/// request without its code after a crash). `also(request)` runs before the write and returns
/// what to write inside it, so that what can be made without the database (a code's hash,
/// its sealed message) is made outside SQLite's one writer's turn; when that is only inserts,
/// the whole submission is one statement on PostgreSQL (`storage::inserts`). `also` may run
/// more than once: a colliding reference rolls everything back and tries again with a new
/// one.
pub fn submit_with<'a, F>(
    s: &Services,
    new: NewRequest,
    actor: &Actor,
    now: DateTime<Utc>,
    also: F,
) -> Result<Submitted, ServiceError>
where
    F: Fn(&StoredRequest) -> Writes<'a>,
{
    // At the precision both databases keep, so the stored instant reads back equal.
    let received_at = new.received_at.map_or(now, |t| t.trunc_subsecs(6));
    if received_at > now + Duration::minutes(RECEIPT_SKEW) {
        return Err(ServiceError::ReceivedInFuture);
    }
    // A package goes only to a processor the operator registered.
    if let crate::domain::details::RequestDetails::Portability(d) = &new.details {
        if let Some(name) = &d.destination {
            if s.systems().destination(name).is_none() {
                return Err(ServiceError::UnknownDestination);
            }
        }
    }
    let outcome = domain::submit(
        new.kind,
        new.jurisdiction,
        received_at,
        new.representative,
        actor,
        &s.context(now),
    );
    // Sealing and hashing happen before the write, on this thread: the keys in scope.
    let _scope = s.db().scope();
    // A fresh reference collides with an existing one about once in 10^12 draws; try again.
    for _ in 0..5 {
        let request = StoredRequest {
            id: crate::storage::new_id(),
            reference: Reference::generate(),
            state: outcome.state.clone(),
            locale: new.locale,
            channel: new.channel,
            contact: new.contact.clone(),
            details: new.details.to_json(),
            platform_user_id: new.platform_user_id.clone(),
            duplicate_of: None,
            created_at: now,
            updated_at: now,
        };
        match store::insert(s.db(), &request, &outcome, also(&request)) {
            Ok(()) => {
                tracing::info!(reference = %request.reference, kind = %new.kind, channel = %new.channel, "request submitted");
                return Ok(Submitted { request });
            }
            Err(StoreError::Duplicate(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Internal(
        "could not allocate a unique reference".into(),
    ))
}

pub fn get(s: &Services, id: &str) -> Result<StoredRequest, ServiceError> {
    Ok(store::find_by_id(&mut *s.db().conn()?, id)?)
}

/// A request as a staff member opens it: the look is logged (who looked at which request).
pub fn open_for_staff(s: &Services, who: &Actor, id: &str) -> Result<StoredRequest, ServiceError> {
    let r = get(s, id)?;
    super::audit_log::record(
        s,
        who,
        crate::storage::audit_log::action::REQUEST_VIEWED,
        Some(&r.id),
        serde_json::json!({ "reference": r.reference.as_str() }),
        super::now(),
    )?;
    Ok(r)
}

/// The request a subject names by reference, if their session opens it. Unknown reference and
/// wrong session give the same answer, so neither can be probed.
pub fn get_for_subject(
    s: &Services,
    reference: &Reference,
    session: &str,
) -> Result<StoredRequest, ServiceError> {
    super::verification::session_request(s, session, reference, super::now())
}

pub fn events(s: &Services, id: &str) -> Result<Vec<(i64, domain::Event)>, ServiceError> {
    Ok(store::events(&mut *s.db().conn()?, id)?)
}

pub fn list(s: &Services, filter: &ListFilter) -> Result<(Vec<StoredRequest>, i64), ServiceError> {
    Ok(store::list(&mut *s.db().conn()?, filter)?)
}

/// Applies one command to the request with this id. With `expected_version` the caller says
/// which version it decided on; a newer stored version fails with `Stale` instead of acting
/// on a state the caller never saw. Without it, a concurrent change is retried a few times.
pub fn act(
    s: &Services,
    id: &str,
    actor: &Actor,
    command: &Command,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<StoredRequest, ServiceError> {
    let mut conn = s.db().conn()?;
    if let Command::Assign { assignee: Some(to) } = command {
        let target = staff_store::find_by_id(&mut conn, to)?;
        let can_work =
            target.is_some_and(|t| t.active && t.role.parse::<Role>().is_ok_and(Role::acts));
        if !can_work {
            return Err(ServiceError::UnknownAssignee);
        }
    }
    for _ in 0..3 {
        let before = store::find_by_id(&mut conn, id)?;
        if expected_version.is_some_and(|v| v != before.state.version) {
            return Err(ServiceError::Stale {
                current: before.state.version,
            });
        }
        match act_on(s, &mut conn, before, actor, command, now) {
            Ok(after) => return Ok(after),
            // The request changed since it was read (`Busy` is a storage conflict).
            Err(ServiceError::Busy) if expected_version.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ServiceError::Busy)
}

/// Applies one command to `before` as it was read, on `conn` (inside the caller's transaction
/// when it holds one: a protocol's submission records the sender's attestation in the same
/// transaction as the request). A request changed since it was read fails with `Busy`.
pub fn act_on(
    s: &Services,
    conn: &mut crate::storage::DbConnection,
    before: StoredRequest,
    actor: &Actor,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<StoredRequest, ServiceError> {
    let outcome = domain::apply(&before.state, actor, command, &s.context(now))?;
    store::save_outcome(conn, &before, &outcome, now)?;
    tracing::info!(
        reference = %before.reference,
        command = command.name(),
        from = %before.state.status,
        to = %outcome.state.status,
        actor = actor.kind_str(),
        "command applied"
    );
    let newly_verified = before.state.verified_at.is_none() && outcome.state.verified_at.is_some();
    let mut after = before;
    after.state = outcome.state;
    after.updated_at = now;
    if newly_verified {
        flag_duplicate(conn, &mut after)?;
    }
    Ok(after)
}

/// Flags a request that duplicates another open one of the same kind by the same subject, for
/// staff to decide (they may reject it as `excessive`, or handle both); nothing is merged.
fn flag_duplicate(
    conn: &mut crate::storage::DbConnection,
    request: &mut StoredRequest,
) -> Result<(), ServiceError> {
    if let Some(original) = store::open_duplicate_of(conn, request)? {
        store::set_duplicate_of(conn, &request.id, &original)?;
        tracing::info!(reference = %request.reference, duplicate_of = %original, "request flagged as a duplicate");
        request.duplicate_of = Some(original);
    }
    Ok(())
}

/// A subject's command on their own request (withdraw, reply), in their session.
pub fn subject_act(
    s: &Services,
    reference: &Reference,
    credential: &str,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<StoredRequest, ServiceError> {
    let request = get_for_subject(s, reference, credential)?;
    act(s, &request.id, &Actor::Subject, command, None, now)
}

/// Expires requests whose verification window has passed. Safe to run on several instances at
/// once: the version check lets only one of them record each expiry.
pub fn expire_unverified(s: &Services, now: DateTime<Utc>) -> Result<usize, ServiceError> {
    let window = Duration::days(i64::from(s.policy().verification_window_days));
    let ids = store::awaiting_verification_since(&mut *s.db().conn()?, now - window, 500)?;
    let mut expired = 0;
    for id in ids {
        match act(s, &id, &Actor::System, &Command::Expire, None, now) {
            Ok(r) if r.state.status == Status::Expired => expired += 1,
            Ok(_) => {}
            // Another instance got there first, or the subject verified meanwhile.
            Err(ServiceError::Transition(_)) | Err(ServiceError::Busy) => {}
            Err(e) => return Err(e),
        }
    }
    if expired > 0 {
        tracing::info!(count = expired, "expired unverified requests");
    }
    Ok(expired)
}

//! The staff second factor (TOTP, any authenticator app): enrolment, the code at sign-in, and
//! the admin's controls (require it of an account, reset a lost one).
//!
//! An account has a second factor once its first code was typed (`totp_enabled_at`); a secret
//! shown but never confirmed counts for nothing. A code works once (the last step used is
//! kept), within ±30 s of now. Every wrong code is recorded with the sign-in attempts, and the
//! sign-in rate limit covers code attempts too.

use chrono::{DateTime, Utc};

use super::{staff::require_admin, ServiceError, Services};
use crate::auth::totp;
use crate::domain::Actor;
use crate::storage::staff::{self as store, StaffRow};

/// The name authenticator apps show beside the account.
pub const ISSUER: &str = "Rightsflow";
/// How long the code step of a sign-in may follow the password step.
const PENDING_MINUTES: i64 = 5;
const PENDING_AUDIENCE: &str = "rightsflow-console-second-factor";

/// What an authenticator app needs: the secret (to type in) and the address its QR code holds.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
}

impl Enrolment {
    fn of(secret: String, account: &str) -> Enrolment {
        let uri = totp::otpauth_uri(&secret, ISSUER, account);
        Enrolment { secret, uri }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PendingClaims {
    sub: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// Proof, for a few minutes, that this account's password was right: what the code step of a
/// console sign-in starts from.
pub(super) fn pending_token(
    s: &Services,
    staff_id: &str,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    s.tokens()
        .sign(&PendingClaims {
            sub: staff_id.to_owned(),
            iss: crate::auth::token::ISSUER.into(),
            aud: PENDING_AUDIENCE.into(),
            iat: now.timestamp(),
            exp: (now + chrono::Duration::minutes(PENDING_MINUTES)).timestamp(),
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// At sign-in, for an account required to enrol: the secret being set up (kept across
/// reloads, so a half-scanned code stays good), or a new one.
pub(super) fn enrolment_at_sign_in(
    s: &Services,
    staff: &StaffRow,
) -> Result<Enrolment, ServiceError> {
    let secret = match &staff.totp_secret {
        Some(pending) => pending.clone(),
        None => {
            let secret = totp::generate_secret();
            store::begin_totp(&mut *s.db().conn()?, &staff.id, &secret)?;
            secret
        }
    };
    Ok(Enrolment::of(secret, &staff.email))
}

/// Accepts `code` for the account's secret (enrolled, or being set up when `enrolling`),
/// using up its step; records a wrong one.
fn accept_code(
    s: &Services,
    staff: &StaffRow,
    code: &str,
    enrolling: bool,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let secret = if enrolling {
        staff
            .totp_secret
            .as_deref()
            .filter(|_| staff.totp().is_none())
    } else {
        staff.totp()
    };
    let mut conn = s.db().conn()?;
    let used = match secret
        .and_then(|secret| totp::matching_step(secret, code, now.timestamp(), staff.totp_last_step))
    {
        Some(step) => store::use_totp_step(&mut conn, &staff.id, step, enrolling, now)?,
        None => false,
    };
    if used {
        if enrolling {
            tracing::info!(staff_id = %staff.id, "staff second factor set up");
        }
        Ok(())
    } else {
        store::record_sign_in(&mut conn, Some(&staff.id), "bad_totp", now)?;
        tracing::warn!(staff_id = %staff.id, "wrong second-factor code");
        Err(ServiceError::TotpInvalid)
    }
}

/// The code step of a console sign-in: the pending token still good, the account still
/// active, the code right. Completes an enrolment the admin required.
pub(super) fn check_pending(
    s: &Services,
    pending: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<StaffRow, ServiceError> {
    let claims: PendingClaims = s
        .tokens()
        .verify_claims(pending, PENDING_AUDIENCE)
        .map_err(|_| ServiceError::Unauthenticated)?;
    let staff = store::find_by_id(&mut *s.db().conn()?, &claims.sub)?
        .filter(|r| r.active)
        .ok_or(ServiceError::Unauthenticated)?;
    let enrolling = staff.totp().is_none();
    if enrolling && !staff.totp_required {
        // The second factor was reset after the password step: start again.
        return Err(ServiceError::Unauthenticated);
    }
    accept_code(s, &staff, code, enrolling, now)?;
    Ok(staff)
}

/// The enrolment still to finish behind a pending sign-in (to show it again after a wrong code).
pub fn for_pending(s: &Services, pending: &str) -> Result<Option<Enrolment>, ServiceError> {
    let claims: PendingClaims = s
        .tokens()
        .verify_claims(pending, PENDING_AUDIENCE)
        .map_err(|_| ServiceError::Unauthenticated)?;
    pending_of(s, &claims.sub)
}

/// The API's sign-in: an enrolled account must send its code; an account required to enrol
/// must do so in the console (the API cannot show a QR code).
pub(super) fn check_for_api(
    s: &Services,
    staff: &StaffRow,
    code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    match (staff.totp(), code) {
        (Some(_), Some(code)) => accept_code(s, staff, code, false, now),
        (Some(_), None) => Err(ServiceError::TotpRequired),
        (None, _) if staff.totp_required => Err(ServiceError::TotpEnrolmentRequired),
        (None, _) => Ok(()),
    }
}

fn reload(s: &Services, id: &str) -> Result<StaffRow, ServiceError> {
    store::find_by_id(&mut *s.db().conn()?, id)?.ok_or(ServiceError::NotFound)
}

/// A signed-in staff member sets up a second factor of their own: a new secret to scan, which
/// counts once `confirm` gets its first code.
pub fn begin(s: &Services, staff_id: &str) -> Result<Enrolment, ServiceError> {
    let staff = reload(s, staff_id)?;
    if staff.totp().is_some() {
        return Err(ServiceError::NotPermitted);
    }
    let secret = totp::generate_secret();
    store::begin_totp(&mut *s.db().conn()?, staff_id, &secret)?;
    Ok(Enrolment::of(secret, &staff.email))
}

/// The secret being set up, to show it again (after a wrong code).
pub fn pending(s: &Services, staff_id: &str) -> Result<Option<Enrolment>, ServiceError> {
    pending_of(s, staff_id)
}

fn pending_of(s: &Services, staff_id: &str) -> Result<Option<Enrolment>, ServiceError> {
    let staff = reload(s, staff_id)?;
    Ok(match (&staff.totp_secret, staff.totp()) {
        (Some(secret), None) => Some(Enrolment::of(secret.clone(), &staff.email)),
        _ => None,
    })
}

/// Completes the signed-in staff member's own enrolment with the app's first code.
pub fn confirm(
    s: &Services,
    staff_id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let staff = reload(s, staff_id)?;
    accept_code(s, &staff, code, true, now)
}

/// The owner turns their second factor off, with a current code; not while an admin requires it.
pub fn turn_off(
    s: &Services,
    staff_id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let staff = reload(s, staff_id)?;
    if staff.totp_required || staff.totp().is_none() {
        return Err(ServiceError::NotPermitted);
    }
    accept_code(s, &staff, code, false, now)?;
    store::clear_totp(&mut *s.db().conn()?, staff_id, false, now)?;
    tracing::info!(staff_id = %staff_id, "staff second factor turned off");
    Ok(())
}

fn not_myself(actor: &Actor, id: &str) -> Result<(), ServiceError> {
    require_admin(actor)?;
    match actor {
        Actor::Staff { id: me, .. } if me == id => Err(ServiceError::NotPermitted),
        _ => Ok(()),
    }
}

/// Admins: require (or stop requiring) a second factor of another account. An account that
/// has none is signed out at once and sets one up at its next sign-in.
pub fn set_required(
    s: &Services,
    actor: &Actor,
    id: &str,
    required: bool,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    not_myself(actor, id)?;
    if !store::set_totp_required(&mut *s.db().conn()?, id, required, now)? {
        return Err(ServiceError::NotFound);
    }
    tracing::info!(staff_id = %id, required, "staff second factor requirement changed");
    Ok(())
}

/// Admins: removes another account's second factor (a lost phone) and ends its sessions; if
/// it is required, the account sets up a new one at its next sign-in.
pub fn reset(
    s: &Services,
    actor: &Actor,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    not_myself(actor, id)?;
    if !store::clear_totp(&mut *s.db().conn()?, id, true, now)? {
        return Err(ServiceError::NotFound);
    }
    tracing::info!(staff_id = %id, "staff second factor reset");
    Ok(())
}

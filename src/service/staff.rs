//! Staff accounts and sign-in.

use chrono::{DateTime, Utc};

use super::{second_factor, ServiceError, Services};
use crate::auth::password;
use crate::domain::{Actor, EmailAddress, Locale, Role};
use crate::storage::audit_log::{self, action};
use crate::storage::staff::{self as store, StaffRow};
use crate::storage::{to_db_time, Database, StoreError};
use serde_json::json;

/// A new staff account. `locale` is the language of the staff emails they get.
pub fn add(
    db: &Database,
    by: &Actor,
    email: &EmailAddress,
    role: Role,
    locale: Locale,
    password_text: &str,
    now: DateTime<Utc>,
) -> Result<StaffRow, ServiceError> {
    if password_text.chars().count() < password::MIN_PASSWORD_CHARS {
        return Err(ServiceError::WeakPassword(password::MIN_PASSWORD_CHARS));
    }
    let row = StaffRow {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.as_str().to_owned(),
        password_hash: password::hash(password_text)
            .map_err(|e| ServiceError::Internal(e.to_string()))?,
        role: role.as_str().to_owned(),
        active: true,
        created_at: to_db_time(now),
        last_login_at: None,
        locale: locale.as_str().to_owned(),
        totp_secret: None,
        totp_enabled_at: None,
        totp_last_step: None,
        totp_required: false,
    };
    let mut conn = db.conn()?;
    let inserted = crate::storage::db::write(&mut conn, |c| {
        store::insert(c, &row)?;
        log(
            c,
            by,
            action::ACCOUNT_ADDED,
            &row.id,
            json!({ "role": role.as_str() }),
            now,
        )
    });
    match inserted {
        Ok(()) => {
            tracing::info!(staff_id = %row.id, role = %role, "staff account created");
            Ok(row)
        }
        Err(StoreError::Duplicate(_)) => Err(ServiceError::DuplicateStaff),
        Err(e) => Err(e.into()),
    }
}

/// An entry in the audit log about a staff account (its id in the details).
fn log(
    c: &mut crate::storage::DbConnection,
    by: &Actor,
    what: &str,
    account: &str,
    mut details: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    details["account"] = json!(account);
    audit_log::append(
        c,
        &audit_log::Entry {
            actor: by,
            action: what,
            request_id: None,
            details,
            at,
        },
    )
    .map(drop)
}

/// Checks the password. Unknown email, wrong password and disabled account give the same
/// error, after the same amount of hashing work; each failure is recorded.
fn check_password(
    s: &Services,
    email: &str,
    password_text: &str,
    now: DateTime<Utc>,
) -> Result<StaffRow, ServiceError> {
    let mut conn = s.db().conn()?;
    let found = EmailAddress::parse(email)
        .ok()
        .map(|e| store::find_by_email(&mut conn, e.as_str()))
        .transpose()?
        .flatten();
    let hash = found
        .as_ref()
        .map_or(password::dummy_hash(), |row| row.password_hash.as_str());
    let password_ok = password::verify(password_text, hash);
    match found {
        Some(row) if password_ok && row.active => Ok(row),
        other => {
            let outcome = match &other {
                Some(r) if password_ok && !r.active => "disabled",
                _ => "bad_credentials",
            };
            store::record_sign_in(
                &mut conn,
                other.as_ref().map(|r| r.id.as_str()),
                outcome,
                now,
            )?;
            tracing::warn!(outcome, "staff sign-in failed");
            Err(ServiceError::InvalidCredentials)
        }
    }
}

/// Records a completed sign-in (password and, where the account has one, second factor).
fn signed_in(s: &Services, row: &StaffRow, now: DateTime<Utc>) -> Result<(), ServiceError> {
    let mut conn = s.db().conn()?;
    store::record_login(&mut conn, &row.id, now)?;
    store::record_sign_in(&mut conn, Some(&row.id), "ok", now)?;
    tracing::info!(staff_id = %row.id, "staff signed in");
    Ok(())
}

/// API sign-in: the password, then the second factor's code when the account has one (an
/// account required to enrol must do so in the console first), then a bearer token.
pub fn login(
    s: &Services,
    email: &str,
    password_text: &str,
    totp_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(String, StaffRow), ServiceError> {
    let row = check_password(s, email, password_text, now)?;
    second_factor::check_for_api(s, &row, totp_code, now)?;
    let role: Role = row
        .role
        .parse()
        .map_err(|e| ServiceError::Internal(format!("{e}")))?;
    let token = s
        .tokens()
        .issue(&row.id, role, now)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    signed_in(s, &row, now)?;
    Ok((token, row))
}

/// How long a console session lasts at most, signed in or not (a working day).
pub const CONSOLE_SESSION_HOURS: i64 = 12;
/// The console cookie's JWT lives this long; the console renews it while the session lives,
/// so a stolen cookie is good for minutes and a revoked session ends within a request.
pub const CONSOLE_TOKEN_MINUTES: i64 = 15;
const CONSOLE_AUDIENCE: &str = "rightsflow-console";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ConsoleClaims {
    sub: String,
    sid: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// A signed-in console user: who, with which role now, and the cookie token to send back.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub actor: Actor,
    pub staff: StaffRow,
    pub session_id: String,
    pub token: String,
    pub token_expires_at: DateTime<Utc>,
}

fn console_token(
    s: &Services,
    staff_id: &str,
    sid: &str,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>), ServiceError> {
    let exp = now + chrono::Duration::minutes(CONSOLE_TOKEN_MINUTES);
    let token = s
        .tokens()
        .sign(&ConsoleClaims {
            sub: staff_id.to_owned(),
            sid: sid.to_owned(),
            iss: crate::auth::token::ISSUER.into(),
            aud: CONSOLE_AUDIENCE.into(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok((token, exp))
}

fn actor_of(row: &StaffRow) -> Result<Actor, ServiceError> {
    let role = row
        .role
        .parse()
        .map_err(|e| ServiceError::Internal(format!("{e}")))?;
    Ok(Actor::Staff {
        id: row.id.clone(),
        role,
    })
}

/// Where a console sign-in stands after the password.
#[derive(Debug)]
pub enum ConsoleStep {
    SignedIn(Box<ConsoleUser>),
    /// The account has a second factor: its code comes next (`pending` carries the
    /// password's success to that step, for a few minutes).
    Code {
        pending: String,
    },
    /// An admin requires a second factor the account has not set up: it does so now.
    Enrol {
        pending: String,
        enrolment: second_factor::Enrolment,
    },
}

/// Console sign-in, first step: the password, then a session at once or the second factor.
pub fn console_sign_in(
    s: &Services,
    email: &str,
    password_text: &str,
    now: DateTime<Utc>,
) -> Result<ConsoleStep, ServiceError> {
    let staff = check_password(s, email, password_text, now)?;
    if staff.totp().is_some() {
        return Ok(ConsoleStep::Code {
            pending: second_factor::pending_token(s, &staff.id, now)?,
        });
    }
    if staff.totp_required {
        return Ok(ConsoleStep::Enrol {
            pending: second_factor::pending_token(s, &staff.id, now)?,
            enrolment: second_factor::enrolment_at_sign_in(s, &staff)?,
        });
    }
    start_session(s, staff, now).map(|u| ConsoleStep::SignedIn(Box::new(u)))
}

/// Console sign-in, second step: the code of the account's app (which, when enrolling,
/// completes the enrolment), then the session.
pub fn console_second_factor(
    s: &Services,
    pending: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<ConsoleUser, ServiceError> {
    let staff = second_factor::check_pending(s, pending, code, now)?;
    start_session(s, staff, now)
}

fn start_session(
    s: &Services,
    staff: StaffRow,
    now: DateTime<Utc>,
) -> Result<ConsoleUser, ServiceError> {
    signed_in(s, &staff, now)?;
    let session = store::StaffSession {
        id: uuid::Uuid::new_v4().to_string(),
        staff_id: staff.id.clone(),
        created_at: to_db_time(now),
        expires_at: to_db_time(now + chrono::Duration::hours(CONSOLE_SESSION_HOURS)),
        revoked_at: None,
    };
    store::insert_session(&mut *s.db().conn()?, &session)?;
    let (token, token_expires_at) = console_token(s, &staff.id, &session.id, now)?;
    Ok(ConsoleUser {
        actor: actor_of(&staff)?,
        staff,
        session_id: session.id,
        token,
        token_expires_at,
    })
}

/// The console user behind a cookie token: the token valid, its session live, the account
/// active (read fresh, so disabling or a role change takes effect on the next page). The token
/// is renewed when it is past half its life.
pub fn console_authenticate(
    s: &Services,
    token: &str,
    now: DateTime<Utc>,
) -> Result<ConsoleUser, ServiceError> {
    let claims: ConsoleClaims = s
        .tokens()
        .verify_claims(token, CONSOLE_AUDIENCE)
        .map_err(|_| ServiceError::Unauthenticated)?;
    let mut conn = s.db().conn()?;
    let session = store::live_session(&mut conn, &claims.sid, now)?
        .filter(|session| session.staff_id == claims.sub)
        .ok_or(ServiceError::Unauthenticated)?;
    let staff = store::find_by_id(&mut conn, &claims.sub)?
        .filter(|r| r.active)
        .ok_or(ServiceError::Unauthenticated)?;
    let half = chrono::Duration::minutes(CONSOLE_TOKEN_MINUTES) / 2;
    let (token, token_expires_at) = match DateTime::from_timestamp(claims.exp, 0) {
        Some(exp) if exp - now > half => (token.to_owned(), exp),
        _ => console_token(s, &staff.id, &session.id, now)?,
    };
    Ok(ConsoleUser {
        actor: actor_of(&staff)?,
        staff,
        session_id: session.id,
        token,
        token_expires_at,
    })
}

/// Signs out: the session ends now, whatever copies of its cookie exist.
pub fn console_sign_out(
    s: &Services,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    store::revoke_session(&mut *s.db().conn()?, session_id, now)?;
    Ok(())
}

/// Admins only: every staff account.
pub fn accounts(s: &Services, actor: &Actor) -> Result<Vec<StaffRow>, ServiceError> {
    require_admin(actor)?;
    Ok(store::all(&mut *s.db().conn()?)?)
}

pub(super) fn require_admin(actor: &Actor) -> Result<(), ServiceError> {
    if actor.administers() {
        Ok(())
    } else {
        Err(ServiceError::NotPermitted)
    }
}

/// Admins only: changes a role (effective on the account's next request). An admin cannot
/// change their own role or disable themselves: the last admin could lock everyone out.
pub fn change_role(s: &Services, actor: &Actor, id: &str, role: Role) -> Result<(), ServiceError> {
    require_admin(actor)?;
    if matches!(actor, Actor::Staff { id: me, .. } if me == id) {
        return Err(ServiceError::NotPermitted);
    }
    let changed = crate::storage::db::write(&mut *s.db().conn()?, |c| {
        let changed = store::set_role(c, id, role.as_str())?;
        if changed {
            let now = super::now();
            log(
                c,
                actor,
                action::ROLE_CHANGED,
                id,
                json!({ "role": role.as_str() }),
                now,
            )?;
        }
        Ok::<_, StoreError>(changed)
    })?;
    if changed {
        tracing::info!(staff_id = %id, role = %role, "staff role changed");
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Admins only: disables (ending every session at once) or re-enables an account.
pub fn set_active(
    s: &Services,
    actor: &Actor,
    id: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    require_admin(actor)?;
    if matches!(actor, Actor::Staff { id: me, .. } if me == id) {
        return Err(ServiceError::NotPermitted);
    }
    let changed = crate::storage::db::write(&mut *s.db().conn()?, |c| {
        let changed = store::set_active(c, id, active, now)?;
        if changed {
            let what = if active {
                action::ACCOUNT_ENABLED
            } else {
                action::ACCOUNT_DISABLED
            };
            log(c, actor, what, id, json!({}), now)?;
        }
        Ok::<_, StoreError>(changed)
    })?;
    if changed {
        tracing::info!(staff_id = %id, active, "staff account enabled or disabled");
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// The staff actor behind a bearer token, read fresh from the database: a disabled account or
/// a changed role takes effect on the next request.
pub fn authenticate(s: &Services, token: &str) -> Result<Actor, ServiceError> {
    let claims = s
        .tokens()
        .verify(token)
        .map_err(|_| ServiceError::Unauthenticated)?;
    let row = store::find_by_id(&mut *s.db().conn()?, &claims.sub)?.filter(|r| r.active);
    let row = row.ok_or(ServiceError::Unauthenticated)?;
    let role = row
        .role
        .parse()
        .map_err(|e| ServiceError::Internal(format!("{e}")))?;
    Ok(Actor::Staff { id: row.id, role })
}

/// On first start with no staff at all, creates the admin account. Returns the password when
/// it was generated, so the caller can show it once.
pub fn ensure_first_admin(
    db: &Database,
    email: &str,
    configured_password: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<String>, ServiceError> {
    if store::count(&mut *db.conn()?)? > 0 {
        return Ok(None);
    }
    let email = EmailAddress::parse(email)
        .map_err(|e| ServiceError::Internal(format!("admin email: {e}")))?;
    let (password_text, generated) = match configured_password {
        Some(p) => (p.to_owned(), false),
        None => (password::generate(), true),
    };
    match add(
        db,
        &Actor::System,
        &email,
        Role::Admin,
        Locale::default(),
        &password_text,
        now,
    ) {
        Ok(_) => Ok(generated.then_some(password_text)),
        // Another instance starting at the same moment created it.
        Err(ServiceError::DuplicateStaff) => Ok(None),
        Err(e) => Err(e),
    }
}

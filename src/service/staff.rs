//! Staff accounts and sign-in.

use chrono::{DateTime, Utc};

use super::{ServiceError, Services};
use crate::auth::password;
use crate::domain::{Actor, EmailAddress, Locale, Role};
use crate::storage::staff::{self as store, StaffRow};
use crate::storage::{to_db_time, Database, StoreError};

/// A new staff account. `locale` is the language of the staff emails they get.
pub fn add(
    db: &Database,
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
    };
    match store::insert(&mut *db.conn()?, &row) {
        Ok(()) => {
            tracing::info!(staff_id = %row.id, role = %role, "staff account created");
            Ok(row)
        }
        Err(StoreError::Duplicate(_)) => Err(ServiceError::DuplicateStaff),
        Err(e) => Err(e.into()),
    }
}

/// Checks the password and issues a token. Unknown email, wrong password and disabled account
/// give the same error, after the same amount of hashing work.
pub fn login(
    s: &Services,
    email: &str,
    password_text: &str,
    now: DateTime<Utc>,
) -> Result<(String, StaffRow), ServiceError> {
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
    let row = match found {
        Some(row) if password_ok && row.active => row,
        _ => {
            tracing::warn!("staff sign-in failed");
            return Err(ServiceError::InvalidCredentials);
        }
    };
    let role: Role = row
        .role
        .parse()
        .map_err(|e| ServiceError::Internal(format!("{e}")))?;
    let token = s
        .tokens()
        .issue(&row.id, role, now)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    store::record_login(&mut conn, &row.id, now)?;
    tracing::info!(staff_id = %row.id, "staff signed in");
    Ok((token, row))
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

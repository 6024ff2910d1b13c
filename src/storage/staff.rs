//! Staff accounts.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::requests::duplicate_as;
use super::schema::{staff_sessions, staff_sign_ins, staff_users};
use super::{audit_log, fields, to_db_time, DbConnection, StoreError};
use crate::domain::Actor;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = staff_users)]
pub struct StaffRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
    /// The language staff emails are written in.
    pub locale: String,
    /// The second factor's shared secret (base32): pending until `totp_enabled_at` is set.
    pub totp_secret: Option<String>,
    pub totp_enabled_at: Option<NaiveDateTime>,
    /// The step of the last code accepted: a code works once.
    pub totp_last_step: Option<i64>,
    /// An admin requires this account to use the second factor.
    pub totp_required: bool,
}

impl StaffRow {
    /// The secret of an enrolled second factor (not of one being set up).
    pub fn totp(&self) -> Option<&str> {
        self.totp_enabled_at.and(self.totp_secret.as_deref())
    }
}

pub fn insert(conn: &mut DbConnection, row: &StaffRow) -> Result<(), StoreError> {
    let sealed = StaffRow {
        totp_secret: fields::seal_opt(TOTP_SECRET, &row.id, row.totp_secret.as_deref())?,
        ..row.clone()
    };
    diesel::insert_into(staff_users::table)
        .values(sealed)
        .execute(conn)
        .map_err(|e| duplicate_as(e, "email"))?;
    Ok(())
}

/// The second factor's secret is sealed at rest (it would let anyone mint an account's codes).
const TOTP_SECRET: &str = "staff_users.totp_secret";

fn opened(row: StaffRow) -> Result<StaffRow, StoreError> {
    Ok(StaffRow {
        totp_secret: fields::open_opt(TOTP_SECRET, &row.id, row.totp_secret.as_deref())?,
        ..row
    })
}

fn all_opened(rows: Vec<StaffRow>) -> Result<Vec<StaffRow>, StoreError> {
    rows.into_iter().map(opened).collect()
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> Result<Option<StaffRow>, StoreError> {
    staff_users::table
        .filter(staff_users::email.eq(email))
        .select(StaffRow::as_select())
        .first(conn)
        .optional()?
        .map(opened)
        .transpose()
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<StaffRow>, StoreError> {
    staff_users::table
        .filter(staff_users::id.eq(id))
        .select(StaffRow::as_select())
        .first(conn)
        .optional()?
        .map(opened)
        .transpose()
}

pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(staff_users::table.count().get_result(conn)?)
}

pub fn record_login(
    conn: &mut DbConnection,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(staff_users::table.filter(staff_users::id.eq(id)))
        .set(staff_users::last_login_at.eq(Some(to_db_time(at))))
        .execute(conn)?;
    Ok(())
}

/// Active staff who decide (reviewers and admins): the recipients of "needs a decision" mail.
pub fn active_deciders(conn: &mut DbConnection) -> Result<Vec<StaffRow>, StoreError> {
    all_opened(
        staff_users::table
            .filter(staff_users::active.eq(true))
            .filter(staff_users::role.eq_any(["reviewer", "admin"]))
            .order(staff_users::email.asc())
            .select(StaffRow::as_select())
            .load(conn)?,
    )
}

/// Every staff account, by email.
pub fn all(conn: &mut DbConnection) -> Result<Vec<StaffRow>, StoreError> {
    all_opened(
        staff_users::table
            .order(staff_users::email.asc())
            .select(StaffRow::as_select())
            .load(conn)?,
    )
}

pub fn set_role(conn: &mut DbConnection, id: &str, role: &str) -> Result<bool, StoreError> {
    Ok(
        diesel::update(staff_users::table.filter(staff_users::id.eq(id)))
            .set(staff_users::role.eq(role))
            .execute(conn)?
            == 1,
    )
}

/// Enables or disables an account; disabling also ends every session it has, in the same
/// transaction.
pub fn set_active(
    conn: &mut DbConnection,
    id: &str,
    active: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    super::db::write(&mut *conn, |c| {
        let changed = diesel::update(staff_users::table.filter(staff_users::id.eq(id)))
            .set(staff_users::active.eq(active))
            .execute(c)?
            == 1;
        if changed && !active {
            end_sessions(c, id, now)?;
        }
        Ok(changed)
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = staff_sessions)]
pub struct StaffSession {
    pub id: String,
    pub staff_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_session(conn: &mut DbConnection, row: &StaffSession) -> Result<(), StoreError> {
    diesel::insert_into(staff_sessions::table)
        .values(row)
        .execute(conn)
        .map_err(|e| duplicate_as(e, "staff session"))?;
    Ok(())
}

/// The session if it exists, is not revoked and has not expired at `now`.
pub fn live_session(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<StaffSession>, StoreError> {
    Ok(staff_sessions::table
        .filter(staff_sessions::id.eq(id))
        .filter(staff_sessions::revoked_at.is_null())
        .filter(staff_sessions::expires_at.gt(to_db_time(now)))
        .select(StaffSession::as_select())
        .first(conn)
        .optional()?)
}

pub fn revoke_session(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        staff_sessions::table
            .filter(staff_sessions::id.eq(id))
            .filter(staff_sessions::revoked_at.is_null()),
    )
    .set(staff_sessions::revoked_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(())
}

/// Records a sign-in attempt: `ok`, `bad_credentials`, `disabled` or `rate_limited` (with
/// the second factor: `bad_totp`), in the sign-in table and the audit log together.
pub fn record_sign_in(
    conn: &mut DbConnection,
    staff_id: Option<&str>,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::db::write(&mut *conn, |c| {
        diesel::insert_into(staff_sign_ins::table)
            .values((
                staff_sign_ins::id.eq(uuid::Uuid::new_v4().to_string()),
                staff_sign_ins::staff_id.eq(staff_id),
                staff_sign_ins::outcome.eq(outcome),
                staff_sign_ins::at.eq(to_db_time(now)),
            ))
            .execute(c)?;
        // The account tried, when known (its role as it is now); else no one in particular.
        let role: Option<String> = match staff_id {
            Some(id) => staff_users::table
                .filter(staff_users::id.eq(id))
                .select(staff_users::role)
                .first(c)
                .optional()?,
            None => None,
        };
        let actor = match (staff_id, role) {
            (Some(id), Some(role)) => Actor::Staff {
                id: id.to_owned(),
                role: role.parse().map_err(StoreError::corrupt)?,
            },
            _ => Actor::System,
        };
        let action = if outcome == "ok" {
            audit_log::action::SIGN_IN
        } else {
            audit_log::action::SIGN_IN_FAILED
        };
        audit_log::append(
            c,
            &audit_log::Entry {
                actor: &actor,
                action,
                request_id: None,
                details: serde_json::json!({ "outcome": outcome }),
                at: now,
            },
        )?;
        Ok(())
    })
}

/// The sign-in attempts on record for one account (newest first), or for unknown emails.
pub fn sign_ins(
    conn: &mut DbConnection,
    staff_id: Option<&str>,
    limit: i64,
) -> Result<Vec<(Option<String>, String, NaiveDateTime)>, StoreError> {
    let q = staff_sign_ins::table
        .select((
            staff_sign_ins::staff_id,
            staff_sign_ins::outcome,
            staff_sign_ins::at,
        ))
        .order(staff_sign_ins::at.desc())
        .limit(limit)
        .into_boxed();
    let q = match staff_id {
        Some(id) => q.filter(staff_sign_ins::staff_id.eq(id.to_owned())),
        None => q.filter(staff_sign_ins::staff_id.is_null()),
    };
    Ok(q.load(conn)?)
}

fn end_sessions(c: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::update(
        staff_sessions::table
            .filter(staff_sessions::staff_id.eq(id))
            .filter(staff_sessions::revoked_at.is_null()),
    )
    .set(staff_sessions::revoked_at.eq(Some(to_db_time(now))))
    .execute(c)?)
}

/// Starts enrolment: keeps a pending secret (not yet counted; `totp_enabled_at` stays unset).
/// An enrolled account's secret is left alone (false).
pub fn begin_totp(conn: &mut DbConnection, id: &str, secret: &str) -> Result<bool, StoreError> {
    Ok(diesel::update(
        staff_users::table
            .filter(staff_users::id.eq(id))
            .filter(staff_users::totp_enabled_at.is_null()),
    )
    .set(staff_users::totp_secret.eq(Some(fields::seal(TOTP_SECRET, id, secret)?)))
    .execute(conn)?
        == 1)
}

/// Records that the code of `step` was used, only if no later or equal step was: two uses of
/// one code (even at the same moment from two instances) cannot both succeed. Enrolment
/// (`enable`) completes in the same statement.
pub fn use_totp_step(
    conn: &mut DbConnection,
    id: &str,
    step: i64,
    enable: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let target = staff_users::table.filter(staff_users::id.eq(id)).filter(
        staff_users::totp_last_step
            .is_null()
            .or(staff_users::totp_last_step.lt(step)),
    );
    let changed = if enable {
        diesel::update(target.filter(staff_users::totp_enabled_at.is_null()))
            .set((
                staff_users::totp_last_step.eq(Some(step)),
                staff_users::totp_enabled_at.eq(Some(to_db_time(now))),
            ))
            .execute(conn)?
    } else {
        diesel::update(target.filter(staff_users::totp_enabled_at.is_not_null()))
            .set(staff_users::totp_last_step.eq(Some(step)))
            .execute(conn)?
    };
    Ok(changed == 1)
}

/// Removes the second factor (an admin's reset, or the owner turning it off). With
/// `end_all`, every session of the account ends too, in the same transaction.
pub fn clear_totp(
    conn: &mut DbConnection,
    id: &str,
    end_all: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    super::db::write(&mut *conn, |c| {
        let changed = diesel::update(staff_users::table.filter(staff_users::id.eq(id)))
            .set((
                staff_users::totp_secret.eq(None::<String>),
                staff_users::totp_enabled_at.eq(None::<NaiveDateTime>),
                staff_users::totp_last_step.eq(None::<i64>),
            ))
            .execute(c)?
            == 1;
        if changed && end_all {
            end_sessions(c, id, now)?;
        }
        Ok(changed)
    })
}

/// Requires (or stops requiring) the second factor. Requiring it of an account that has not
/// enrolled ends its sessions, so the demand holds from the next page on.
pub fn set_totp_required(
    conn: &mut DbConnection,
    id: &str,
    required: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    super::db::write(&mut *conn, |c| {
        let changed = diesel::update(staff_users::table.filter(staff_users::id.eq(id)))
            .set(staff_users::totp_required.eq(required))
            .execute(c)?
            == 1;
        if changed && required {
            let enrolled = staff_users::table
                .filter(staff_users::id.eq(id))
                .select(staff_users::totp_enabled_at.is_not_null())
                .first::<bool>(c)?;
            if !enrolled {
                end_sessions(c, id, now)?;
            }
        }
        Ok(changed)
    })
}

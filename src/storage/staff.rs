//! Staff accounts.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::requests::duplicate_as;
use super::schema::staff_users;
use super::{to_db_time, DbConnection, StoreError};

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
}

pub fn insert(conn: &mut DbConnection, row: &StaffRow) -> Result<(), StoreError> {
    diesel::insert_into(staff_users::table)
        .values(row)
        .execute(conn)
        .map_err(|e| duplicate_as(e, "email"))?;
    Ok(())
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> Result<Option<StaffRow>, StoreError> {
    Ok(staff_users::table
        .filter(staff_users::email.eq(email))
        .select(StaffRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<StaffRow>, StoreError> {
    Ok(staff_users::table
        .filter(staff_users::id.eq(id))
        .select(StaffRow::as_select())
        .first(conn)
        .optional()?)
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
    Ok(staff_users::table
        .filter(staff_users::active.eq(true))
        .filter(staff_users::role.eq_any(["reviewer", "admin"]))
        .order(staff_users::email.asc())
        .select(StaffRow::as_select())
        .load(conn)?)
}

//! One-time-code challenges and subject sessions.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::{subject_sessions, verification_challenges};
use super::{to_db_time, DbConnection, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = verification_challenges, treat_none_as_default_value = false)]
pub struct Challenge {
    pub id: String,
    pub request_id: String,
    /// `email` or `sms`: where the code went.
    pub channel: String,
    /// Keyed hash of `"{id}:{code}"`; the code itself is never stored here.
    pub code_hash: String,
    pub expires_at: NaiveDateTime,
    pub attempts: i32,
    pub locked_at: Option<NaiveDateTime>,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// The insert of a challenge, to be written with others (`inserts::Writes`).
pub fn challenge_statement(c: Challenge) -> impl super::inserts::Insert {
    diesel::insert_into(verification_challenges::table).values(c)
}

/// The newest challenge of a request: the only one that counts (a new code replaces the old).
pub fn latest_challenge(
    conn: &mut DbConnection,
    request_id: &str,
) -> Result<Option<Challenge>, StoreError> {
    Ok(verification_challenges::table
        .filter(verification_challenges::request_id.eq(request_id))
        .order((
            verification_challenges::created_at.desc(),
            verification_challenges::id.desc(),
        ))
        .select(Challenge::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_challenge(conn: &mut DbConnection, id: &str) -> Result<Option<Challenge>, StoreError> {
    Ok(verification_challenges::table
        .filter(verification_challenges::id.eq(id))
        .select(Challenge::as_select())
        .first(conn)
        .optional()?)
}

/// Counts a wrong attempt, locking the challenge when it reaches `max`. Returns the attempts so
/// far. The increment happens in SQL, so parallel guesses cannot both see the old count.
pub fn count_wrong_attempt(
    conn: &mut DbConnection,
    id: &str,
    max: i32,
    now: DateTime<Utc>,
) -> Result<i32, StoreError> {
    super::db::write(&mut *conn, |c| {
        diesel::update(verification_challenges::table.filter(verification_challenges::id.eq(id)))
            .set(verification_challenges::attempts.eq(verification_challenges::attempts + 1))
            .execute(c)?;
        let attempts: i32 = verification_challenges::table
            .filter(verification_challenges::id.eq(id))
            .select(verification_challenges::attempts)
            .first(c)?;
        if attempts >= max {
            diesel::update(
                verification_challenges::table
                    .filter(verification_challenges::id.eq(id))
                    .filter(verification_challenges::locked_at.is_null()),
            )
            .set(verification_challenges::locked_at.eq(Some(to_db_time(now))))
            .execute(c)?;
        }
        Ok(attempts)
    })
}

/// Uses a challenge up, once: false when it was used (or locked) already, so a code or a
/// magic link works a single time even when two arrive together.
pub fn use_challenge(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = diesel::update(
        verification_challenges::table
            .filter(verification_challenges::id.eq(id))
            .filter(verification_challenges::used_at.is_null())
            .filter(verification_challenges::locked_at.is_null()),
    )
    .set(verification_challenges::used_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(changed == 1)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = subject_sessions)]
pub struct SubjectSession {
    pub id: String,
    pub request_id: String,
    /// How the subject proved themselves for this session.
    pub method: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_session(conn: &mut DbConnection, s: &SubjectSession) -> Result<(), StoreError> {
    diesel::insert_into(subject_sessions::table)
        .values(s)
        .execute(conn)?;
    Ok(())
}

/// A session that exists, is not revoked and has not expired.
pub fn live_session(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<SubjectSession>, StoreError> {
    Ok(subject_sessions::table
        .filter(subject_sessions::id.eq(id))
        .filter(subject_sessions::revoked_at.is_null())
        .filter(subject_sessions::expires_at.gt(to_db_time(now)))
        .select(SubjectSession::as_select())
        .first(conn)
        .optional()?)
}

pub fn revoke_session(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(subject_sessions::table.filter(subject_sessions::id.eq(id)))
        .set(subject_sessions::revoked_at.eq(Some(to_db_time(now))))
        .execute(conn)?;
    Ok(())
}

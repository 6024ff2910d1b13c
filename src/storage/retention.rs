//! Retention: a request ended longer ago than its evidence period is anonymised. Its personal
//! fields are replaced — contact, details, event details (by a marker carrying their digest, so
//! the hash chain still verifies), message payloads and texts, task results, consent emails —
//! its results' bytes deleted, its codes and sessions removed; what stays is the skeleton an
//! auditor needs: kind, dates, statuses, who acted when, and every hash.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde_json::json;

use super::audit::details_digest;
use super::rows::{EventRow, DETAILS, EVENT_DETAILS};
use super::schema::{
    anonymised_requests, consent_events, fulfilment_tasks, inbox_messages, outbox, request_events,
    request_results, requests, subject_lookups, subject_sessions, verification_challenges,
};
use super::{audit_log, fields, to_db_time, DbConnection, StoreError};
use crate::domain::Actor;

/// What an anonymised request's details read as.
pub const ANONYMISED: &str = r#"{"anonymised":true}"#;

#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Up to `limit` requests that ended before `ended_before` and are not anonymised yet.
pub fn due(
    c: &mut DbConnection,
    ended_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<Candidate> = diesel::sql_query(
        "SELECT r.id AS id FROM requests r WHERE r.closed_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM anonymised_requests a WHERE a.request_id = r.id) \
         ORDER BY r.closed_at, r.id LIMIT $2",
    )
    .bind::<Timestamp, _>(to_db_time(ended_before))
    .bind::<BigInt, _>(limit)
    .load(c)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Anonymises one request in one transaction; false when another instance claimed it first.
pub fn anonymise(c: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let claimed = super::db::write(&mut *c, |c| {
        // The claim: a second instance's insert fails here and it moves on.
        diesel::insert_into(anonymised_requests::table)
            .values((
                anonymised_requests::request_id.eq(id),
                anonymised_requests::at.eq(to_db_time(now)),
            ))
            .execute(c)
            .map_err(|e| super::requests::duplicate_as(e, "anonymised request"))?;
        diesel::update(requests::table.filter(requests::id.eq(id)))
            .set((
                requests::subject_name.eq(None::<String>),
                requests::subject_email.eq(None::<String>),
                requests::subject_phone.eq(None::<String>),
                requests::platform_user_id.eq(None::<String>),
                requests::details.eq(fields::seal(DETAILS, id, ANONYMISED)?),
            ))
            .execute(c)?;
        diesel::delete(subject_lookups::table.filter(subject_lookups::request_id.eq(id)))
            .execute(c)?;
        let events: Vec<EventRow> = request_events::table
            .filter(request_events::request_id.eq(id))
            .order(request_events::seq.asc())
            .select(EventRow::as_select())
            .load(c)?;
        for e in events {
            let digest = details_digest(&e.open_details()?);
            let marker = json!({ "anonymised": true, "digest": digest }).to_string();
            diesel::update(
                request_events::table
                    .filter(request_events::request_id.eq(id))
                    .filter(request_events::seq.eq(e.seq)),
            )
            .set(request_events::details.eq(fields::seal(EVENT_DETAILS, &e.place(), &marker)?))
            .execute(c)?;
        }
        let rows: Vec<String> = outbox::table
            .filter(outbox::request_id.eq(id))
            .select(outbox::id)
            .load(c)?;
        for row in rows {
            diesel::update(outbox::table.filter(outbox::id.eq(&row)))
                .set((
                    outbox::payload.eq(fields::seal(super::outbox::PAYLOAD, &row, ANONYMISED)?),
                    outbox::last_error.eq(None::<String>),
                ))
                .execute(c)?;
        }
        let messages: Vec<String> = inbox_messages::table
            .filter(inbox_messages::request_id.eq(id))
            .select(inbox_messages::id)
            .load(c)?;
        for m in messages {
            diesel::update(inbox_messages::table.filter(inbox_messages::id.eq(&m)))
                .set((
                    inbox_messages::subject.eq(fields::seal(super::inbox::SUBJECT, &m, "")?),
                    inbox_messages::body.eq(fields::seal(super::inbox::BODY, &m, "")?),
                ))
                .execute(c)?;
        }
        diesel::update(fulfilment_tasks::table.filter(fulfilment_tasks::request_id.eq(id)))
            .set(fulfilment_tasks::result.eq(None::<String>))
            .execute(c)?;
        diesel::update(consent_events::table.filter(consent_events::request_id.eq(id)))
            .set((
                consent_events::email.eq(None::<String>),
                consent_events::platform_user_id.eq(None::<String>),
            ))
            .execute(c)?;
        let blobs: Vec<Option<String>> = request_results::table
            .filter(request_results::request_id.eq(id))
            .select(request_results::blob_id)
            .load(c)?;
        for blob in blobs.into_iter().flatten() {
            super::blobs::delete(c, &blob)?;
        }
        diesel::update(
            request_results::table
                .filter(request_results::request_id.eq(id))
                .filter(request_results::purged_at.is_null()),
        )
        .set((
            request_results::purged_at.eq(Some(to_db_time(now))),
            request_results::body.eq(Vec::<u8>::new()),
        ))
        .execute(c)?;
        diesel::delete(
            verification_challenges::table.filter(verification_challenges::request_id.eq(id)),
        )
        .execute(c)?;
        diesel::delete(subject_sessions::table.filter(subject_sessions::request_id.eq(id)))
            .execute(c)?;
        audit_log::append(
            c,
            &audit_log::Entry {
                actor: &Actor::System,
                action: audit_log::action::REQUEST_ANONYMISED,
                request_id: Some(id),
                details: json!({}),
                at: now,
            },
        )?;
        Ok::<_, StoreError>(())
    });
    match claimed {
        Ok(()) => Ok(true),
        Err(StoreError::Duplicate(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes verification challenges that expired before `before` (their attempts no longer
/// count for anything).
pub fn purge_challenges(c: &mut DbConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        verification_challenges::table
            .filter(verification_challenges::expires_at.lt(to_db_time(before))),
    )
    .execute(c)?)
}

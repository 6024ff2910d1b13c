//! The transactional outbox: work that must happen after a state change, written with it, then
//! claimed by workers under a lease. `notify` rows (what the core asked for) are expanded into
//! deliveries (`email`, `sms`); `start_fulfilment` rows wait for fulfilment (issue #7).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde_json::json;

use super::consents::CONSENT_WEBHOOK;
use super::schema::outbox;
use super::tasks::FULFIL;
use super::{fields, to_db_time, DbConnection, StoreError};
use crate::domain::{Effect, Locale, Message, Recipient};
use crate::interop::drp::DRP_CALLBACK;
use crate::interop::opendsr::OPENDSR_CALLBACK;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = outbox, treat_none_as_default_value = false)]
pub struct OutboxRow {
    pub id: String,
    pub request_id: Option<String>,
    pub event_seq: Option<i64>,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub run_after: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub parent_id: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<NaiveDateTime>,
    pub done_at: Option<NaiveDateTime>,
}

pub const PENDING: &str = "pending";
pub const PROCESSING: &str = "processing";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// The kinds the notification worker handles.
pub const NOTIFY: &str = "notify";
pub const EMAIL: &str = "email";
pub const SMS: &str = "sms";
/// Written when a request is approved: plan its fulfilment tasks.
pub const START_FULFILMENT: &str = "start_fulfilment";
/// Written when every task of an access or portability request has ended: build its result
/// (report or package), then complete it.
pub const BUILD_RESULT: &str = "build_result";
/// Sends a built portability package to the processor the subject chose.
pub const TRANSFER: &str = "transfer_package";

impl OutboxRow {
    pub fn new(
        id: String,
        request_id: Option<&str>,
        kind: &str,
        payload: String,
        at: DateTime<Utc>,
    ) -> OutboxRow {
        OutboxRow {
            id,
            request_id: request_id.map(str::to_owned),
            event_seq: None,
            kind: kind.to_owned(),
            payload,
            status: PENDING.to_owned(),
            attempts: 0,
            run_after: to_db_time(at),
            created_at: to_db_time(at),
            last_error: None,
            parent_id: None,
            claimed_by: None,
            claimed_until: None,
            done_at: None,
        }
    }
}

/// A `notify` row: one message for one recipient, as `notifications::expand` reads it back.
/// `extra` carries values only the sender knows (a reminder's days left, a code).
pub fn notify_row(
    request_id: &str,
    event_seq: Option<i64>,
    to: &Recipient,
    message: Message,
    locale: Locale,
    extra: serde_json::Value,
    at: DateTime<Utc>,
) -> OutboxRow {
    let payload = json!({ "to": to, "message": message, "locale": locale, "extra": extra });
    let mut row = OutboxRow::new(
        super::new_id(),
        Some(request_id),
        NOTIFY,
        payload.to_string(),
        at,
    );
    row.event_seq = event_seq;
    row
}

/// Writes the effects of one accepted command (inside the caller's transaction).
pub fn enqueue(
    conn: &mut DbConnection,
    request_id: &str,
    event_seq: i64,
    effects: &[Effect],
    locale: Locale,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    for row in effect_rows(request_id, event_seq, effects, locale, at) {
        // One statement per row: batch inserts are not available across both backends.
        insert(conn, &row)?;
    }
    Ok(())
}

/// The outbox rows of one accepted command's effects, not yet sealed or written.
pub fn effect_rows(
    request_id: &str,
    event_seq: i64,
    effects: &[Effect],
    locale: Locale,
    at: DateTime<Utc>,
) -> Vec<OutboxRow> {
    effects
        .iter()
        .map(|effect| match effect {
            Effect::Notify { to, message } => notify_row(
                request_id,
                Some(event_seq),
                to,
                *message,
                locale,
                json!({}),
                at,
            ),
            Effect::StartFulfilment => {
                let mut row = OutboxRow::new(
                    super::new_id(),
                    Some(request_id),
                    START_FULFILMENT,
                    "{}".into(),
                    at,
                );
                row.event_seq = Some(event_seq);
                row
            }
        })
        .collect()
}

/// The sealed columns: a message's payload holds its address and text; an error may quote
/// an address back (a mail server refusing a recipient).
pub const PAYLOAD: &str = "outbox.payload";
const LAST_ERROR: &str = "outbox.last_error";

/// A row's last error as staff read it (sealed at rest).
pub fn open_error(id: &str, stored: Option<String>) -> Result<Option<String>, StoreError> {
    fields::open_opt(LAST_ERROR, id, stored.as_deref())
}

/// The row as read: payload and last error opened.
fn opened(row: OutboxRow) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        payload: fields::open(PAYLOAD, &row.id, &row.payload)?,
        last_error: open_error(&row.id, row.last_error.clone())?,
        ..row
    })
}

fn all_opened(rows: Vec<OutboxRow>) -> Result<Vec<OutboxRow>, StoreError> {
    rows.into_iter().map(opened).collect()
}

/// Queues one status callback of a protocol (DRP, OpenDSR) about `request_id`, in the caller's
/// transaction. `payload` carries the state it reports; `version` is that state's event, so a
/// row is tied to the change that made it.
pub fn queue_status_callback(
    conn: &mut DbConnection,
    request_id: &str,
    kind: &str,
    payload: &serde_json::Value,
    version: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut row = OutboxRow::new(
        super::new_id(),
        Some(request_id),
        kind,
        payload.to_string(),
        at,
    );
    row.event_seq = Some(version);
    insert(conn, &row)
}

/// Inserts `row`, sealed, on `conn` (inside the caller's transaction, if any).
pub fn insert(conn: &mut DbConnection, row: &OutboxRow) -> Result<(), StoreError> {
    let mut writes = super::inserts::Writes::new();
    writes
        .clash_means("outbox row")
        .insert(statement(sealed(row)?));
    writes.write_on(conn)
}

/// A row as stored: payload and last error sealed.
pub fn sealed(row: &OutboxRow) -> Result<Sealed, StoreError> {
    Ok(Sealed(OutboxRow {
        payload: fields::seal(PAYLOAD, &row.id, &row.payload)?,
        last_error: fields::seal_opt(LAST_ERROR, &row.id, row.last_error.as_deref())?,
        ..row.clone()
    }))
}

/// An outbox row sealed ahead of its write, so that a submission seals outside the SQLite
/// writer's turn (`write_gate`), where every other writer would wait for it.
#[derive(Debug, Clone)]
pub struct Sealed(OutboxRow);

/// The insert of a sealed row, to be written with others (`inserts::Writes`).
pub fn statement(row: Sealed) -> impl super::inserts::Insert {
    diesel::insert_into(outbox::table).values(row.0)
}

/// The outbox rows one request produced, oldest first.
pub fn for_request(
    conn: &mut DbConnection,
    request_id: &str,
) -> Result<Vec<OutboxRow>, StoreError> {
    all_opened(
        outbox::table
            .filter(outbox::request_id.eq(request_id))
            .order((outbox::created_at.asc(), outbox::id.asc()))
            .select(OutboxRow::as_select())
            .load(conn)?,
    )
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<OutboxRow, StoreError> {
    opened(
        outbox::table
            .filter(outbox::id.eq(id))
            .select(OutboxRow::as_select())
            .first(conn)
            .optional()?
            .ok_or(StoreError::NotFound)?,
    )
}

const CLAIM_RETURNING: &str =
    "RETURNING id, request_id, event_seq, kind, payload, status, attempts, run_after, \
     created_at, last_error, parent_id, claimed_by, claimed_until, done_at";

/// Claims up to `limit` due rows for `worker` until `lease_until`: pending rows whose time has
/// come, and rows whose previous claimant's lease ran out (it crashed or hung). Each claim
/// counts as an attempt. PostgreSQL skips rows other workers hold (`FOR UPDATE SKIP LOCKED`);
/// SQLite has one writer at a time, so the update itself is the claim.
pub fn claim(
    conn: &mut DbConnection,
    worker: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let lock = match conn {
        DbConnection::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        DbConnection::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE outbox SET status = '{PROCESSING}', claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM outbox WHERE kind IN ('{NOTIFY}', '{EMAIL}', '{SMS}', '{START_FULFILMENT}', '{FULFIL}', '{CONSENT_WEBHOOK}', '{BUILD_RESULT}', '{TRANSFER}', '{DRP_CALLBACK}', '{OPENDSR_CALLBACK}') \
           AND ((status = '{PENDING}' AND run_after <= $3) OR (status = '{PROCESSING}' AND claimed_until < $3)) \
           ORDER BY run_after, id LIMIT $4 {lock}) {CLAIM_RETURNING}"
    );
    let rows = diesel::sql_query(sql)
        .bind::<Text, _>(worker)
        .bind::<Timestamp, _>(to_db_time(lease_until))
        .bind::<Timestamp, _>(to_db_time(now))
        .bind::<BigInt, _>(limit)
        .load::<OutboxRow>(conn)?;
    // RETURNING gives no order: work oldest first, as the queue promises.
    let mut rows = all_opened(rows)?;
    rows.sort_by(|a, b| (a.run_after, &a.id).cmp(&(b.run_after, &b.id)));
    Ok(rows)
}

/// Marks a row done, if `worker` still holds it. When its lease ran out and another worker
/// took the row, nothing changes here: that worker sends it again (the same message, with the
/// same Message-ID) and records the outcome itself.
pub fn mark_done(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::claimed_by.eq(worker))
            .filter(outbox::status.eq(PROCESSING)),
    )
    .set((
        outbox::status.eq(DONE),
        outbox::done_at.eq(Some(to_db_time(now))),
        outbox::claimed_by.eq(None::<String>),
        outbox::claimed_until.eq(None::<NaiveDateTime>),
        outbox::last_error.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Replaces a row's payload once it is no longer needed (a delivered verification code must
/// not stay readable in the queue).
pub fn scrub_payload(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    diesel::update(outbox::table.filter(outbox::id.eq(id)))
        // Sealed like every payload, so every stored payload is under a key (rotation and its
        // checks need not know of this marker).
        .set(outbox::payload.eq(fields::seal(PAYLOAD, id, r#"{"scrubbed":true}"#)?))
        .execute(conn)?;
    Ok(())
}

/// After a failed attempt by `worker`: back to pending at `retry_at`, or parked as failed when `retry_at`
/// is None (attempts exhausted or the error is permanent). The last error is kept for staff.
pub fn mark_attempt_failed(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let error: String = error.chars().take(1000).collect();
    let error = fields::seal(LAST_ERROR, id, &error)?;
    let (status, run_after) = match retry_at {
        Some(at) => (PENDING, Some(to_db_time(at))),
        None => (FAILED, None),
    };
    // Only while this worker holds the row: a late failure must not reopen a row another
    // worker has since delivered.
    let target = outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::claimed_by.eq(worker))
        .filter(outbox::status.eq(PROCESSING));
    let cleared = (
        outbox::claimed_by.eq(None::<String>),
        outbox::claimed_until.eq(None::<NaiveDateTime>),
    );
    match run_after {
        Some(at) => diesel::update(target)
            .set((
                outbox::status.eq(status),
                outbox::last_error.eq(Some(error)),
                outbox::run_after.eq(at),
                cleared,
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                outbox::status.eq(status),
                outbox::last_error.eq(Some(error)),
                cleared,
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Gives back rows a worker claimed but did not start (graceful shutdown): not an attempt.
pub fn release(conn: &mut DbConnection, ids: &[String], worker: &str) -> Result<usize, StoreError> {
    Ok(diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(ids))
            .filter(outbox::claimed_by.eq(worker))
            .filter(outbox::status.eq(PROCESSING)),
    )
    .set((
        outbox::status.eq(PENDING),
        outbox::attempts.eq(outbox::attempts - 1),
        outbox::claimed_by.eq(None::<String>),
        outbox::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?)
}

/// Parked rows, newest first, for the staff view.
pub fn failed(conn: &mut DbConnection, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    all_opened(
        outbox::table
            .filter(outbox::status.eq(FAILED))
            .order(outbox::created_at.desc())
            .limit(limit)
            .select(OutboxRow::as_select())
            .load(conn)?,
    )
}

/// An admin's retry of a failed row: pending again now, with a fresh count of attempts.
pub fn retry_failed(
    conn: &mut DbConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let changed = diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::status.eq(FAILED)),
    )
    .set((
        outbox::status.eq(PENDING),
        outbox::attempts.eq(0),
        outbox::run_after.eq(to_db_time(now)),
    ))
    .execute(conn)?;
    match changed {
        1 => Ok(()),
        _ => match find(conn, id) {
            Ok(_) => Err(StoreError::Conflict),
            Err(e) => Err(e),
        },
    }
}

/// How many rows of each status there are (for tests and the operator).
pub fn count_by_status(conn: &mut DbConnection, status: &str) -> Result<i64, StoreError> {
    Ok(outbox::table
        .filter(outbox::status.eq(status))
        .count()
        .get_result(conn)?)
}

//! Requests and their event log. Writes go through `insert` and `save_outcome`, which put the
//! state change, its event and its outbox rows in one transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::db::MultiBackend;
use super::inserts::{Insert, Writes};
use super::rows::{EventRow, RequestRow, StateChanges, StoredRequest, EVENT_DETAILS};
use super::schema::{request_events, requests, subject_lookups};
use super::tallies::Tally;
use super::{fields, outbox, to_db_time, DbConnection, StoreError};
use crate::auth::vault::Blind;
use crate::domain::{Event, Jurisdiction, Outcome, Reference, RequestKind, Status};

/// Stores a new request with its first event and outbox rows, and what `also` writes, in one
/// transaction: on PostgreSQL one statement when `also` is only inserts (`inserts`).
///
/// The rows are made first (sealed, hashed, blind-indexed) and only then written: on SQLite
/// every other write of the process waits while this one writes (`write_gate`), so the
/// writer's turn holds nothing but the statements.
///
/// A unique key clash is `Duplicate`: the fresh reference's (or, about once in 2^74, a fresh
/// id's), which the caller tries again with new ones.
pub fn insert(
    db: &super::Database,
    request: &StoredRequest,
    outcome: &Outcome,
    also: Writes<'_>,
) -> Result<(), StoreError> {
    let row = request.to_row()?;
    let lookups = lookups_of(request)?;
    let mut event = EventRow::new(&request.id, outcome.state.version, &outcome.event);
    super::audit::chain_first(&mut event);
    seal_event(&mut event)?;
    let effects = outbox::effect_rows(
        &request.id,
        outcome.state.version,
        &outcome.effects,
        request.locale,
        outcome.event.at,
    )
    .iter()
    .map(outbox::sealed)
    .collect::<Result<Vec<_>, _>>()?;
    let mut writes = Writes::new();
    writes
        .clash_means("reference")
        .lock_order(tally_key(&row))
        .insert(request_statement(row));
    for (kind, digest) in lookups {
        writes.insert(lookup_statement(&request.id, kind, digest));
    }
    writes.insert(event_statement(event));
    for effect in effects {
        writes.insert(outbox::statement(effect));
    }
    // A request logged with a past receipt time changes that day's counts.
    let (received_at, now) = (request.state.received_at, chrono::Utc::now());
    if super::report_days::is_final(received_at, now) {
        writes.then(move |c| super::report_days::forget_received(c, received_at, now));
    }
    writes.append(also);
    writes.write(db)
}

/// Stores the outcome of a command applied to `before`. Fails with `Conflict` when the request
/// changed since `before` was read; the caller may read it again and retry.
pub fn save_outcome(
    conn: &mut DbConnection,
    before: &StoredRequest,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    super::db::write(&mut *conn, |c| {
        let changed = diesel::update(
            requests::table
                .filter(requests::id.eq(&before.id))
                .filter(requests::version.eq(before.state.version)),
        )
        .set(StateChanges::from_state(&outcome.state, now))
        .execute(c)?;
        if changed != 1 {
            return Err(StoreError::Conflict);
        }
        append(c, before, outcome)?;
        // An agent that sent the request through DRP, or a controller through OpenDSR, is
        // told of the change.
        super::drp::queue_callback(c, &before.id, &before.state, &outcome.state, now)?;
        super::opendsr::queue_callbacks(c, &before.id, &before.state, &outcome.state, now)
    })
}

fn append(
    c: &mut DbConnection,
    request: &StoredRequest,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    let seq = outcome.state.version;
    let mut row = EventRow::new(&request.id, seq, &outcome.event);
    super::audit::chain(c, &mut row)?;
    seal_event(&mut row)?;
    insert_event(c, &row)?;
    outbox::enqueue(
        c,
        &request.id,
        seq,
        &outcome.effects,
        request.locale,
        outcome.event.at,
    )
}

/// Hashed as written, then sealed: the chain holds whatever key the details are under.
fn seal_event(row: &mut EventRow) -> Result<(), StoreError> {
    row.details = fields::seal(EVENT_DETAILS, &row.place(), &row.details)?;
    Ok(())
}

fn insert_event(c: &mut DbConnection, row: &EventRow) -> Result<(), StoreError> {
    super::db::on_backend!(c, |c| diesel::insert_into(request_events::table)
        .values(row)
        .execute(c))
    .map_err(|e| match duplicate_as(e, "event") {
        StoreError::Duplicate(_) => StoreError::Conflict,
        other => other,
    })?;
    Ok(())
}

pub(crate) fn duplicate_as(e: DieselError, what: &'static str) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            StoreError::Duplicate(what)
        }
        other => StoreError::Query(other),
    }
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<StoredRequest, StoreError> {
    let row = requests::table
        .filter(requests::id.eq(id))
        .select(RequestRow::as_select())
        .first(conn)
        .optional()?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

pub fn find_by_reference(
    conn: &mut DbConnection,
    reference: &Reference,
) -> Result<StoredRequest, StoreError> {
    let row = requests::table
        .filter(requests::reference.eq(reference.as_str()))
        .select(RequestRow::as_select())
        .first(conn)
        .optional()?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// The event log of one request, oldest first, with each event's sequence number.
pub fn events(conn: &mut DbConnection, request_id: &str) -> Result<Vec<(i64, Event)>, StoreError> {
    request_events::table
        .filter(request_events::request_id.eq(request_id))
        .order(request_events::seq.asc())
        .select(EventRow::as_select())
        .load(conn)?
        .into_iter()
        .map(EventRow::into_event)
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Soonest due first; requests whose clock has not started come last.
    #[default]
    DueAsc,
    DueDesc,
    ReceivedAsc,
    ReceivedDesc,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub kind: Option<RequestKind>,
    pub jurisdiction: Option<Jurisdiction>,
    pub assignee: Option<String>,
    /// Due at or before this instant.
    pub due_before: Option<DateTime<Utc>>,
    /// Due at or after this instant (with `due_before`: "due within N days", not overdue).
    pub due_after: Option<DateTime<Utc>>,
    /// Open and past due at `now`.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only requests flagged as duplicating another open request.
    pub duplicates_only: bool,
    /// Only requests that have not ended (the console's default queue).
    pub open_only: bool,
    /// Only requests made by a guardian for a child under 14.
    pub minors_only: bool,
    /// Prepared (first approval given) by someone other than this staff member and waiting for
    /// the second approval: what this staff member may release.
    pub second_approval_for: Option<String>,
    /// Exact search: a reference, an email address or a phone number (normalised by the caller).
    pub reference: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub sort: Sort,
    pub limit: i64,
    pub offset: i64,
}

/// The ids of requests whose email (or phone) is `value`, through the blind index: a
/// subselect. (A macro, not a function: a boxed subselect is not a query fragment of the
/// multi-backend connection, and the unboxed type is unwieldy to name.)
macro_rules! looked_up {
    ($kind:expr, $value:expr) => {
        subject_lookups::table
            .filter(subject_lookups::kind.eq(lookup_kind($kind)))
            .filter(subject_lookups::digest.eq(fields::blind($kind, $value)?))
            .select(subject_lookups::request_id)
    };
}

fn filtered(f: &ListFilter) -> Result<requests::BoxedQuery<'static, MultiBackend>, StoreError> {
    let mut q = requests::table.into_boxed();
    if let Some(s) = f.status {
        q = q.filter(requests::status.eq(s.as_str()));
    }
    if let Some(k) = f.kind {
        q = q.filter(requests::kind.eq(k.as_str()));
    }
    if let Some(j) = f.jurisdiction {
        q = q.filter(requests::jurisdiction.eq(j.as_str()));
    }
    if let Some(a) = &f.assignee {
        q = q.filter(requests::assignee_id.eq(a.clone()));
    }
    if let Some(t) = f.due_before {
        q = q.filter(requests::due_at.le(to_db_time(t)));
    }
    if let Some(t) = f.due_after {
        q = q.filter(requests::due_at.ge(to_db_time(t)));
    }
    if f.duplicates_only {
        q = q.filter(requests::duplicate_of.is_not_null());
    }
    if let Some(now) = f.overdue_at {
        q = q
            .filter(requests::closed_at.is_null())
            .filter(requests::due_at.lt(to_db_time(now)));
    }
    if f.open_only {
        q = q.filter(open_condition());
    }
    if f.minors_only {
        q = q.filter(requests::representative.eq("guardian"));
    }
    if let Some(me) = &f.second_approval_for {
        q = q
            .filter(requests::status.eq(Status::InReview.as_str()))
            .filter(requests::first_approval_by.is_not_null())
            .filter(requests::first_approval_by.ne(me.clone()));
    }
    if let Some(r) = &f.reference {
        q = q.filter(requests::reference.eq(r.clone()));
    }
    // Through the blind indexes: the columns themselves are sealed.
    if let Some(e) = &f.email {
        q = q.filter(requests::id.eq_any(looked_up!(Blind::Email, e)));
    }
    if let Some(p) = &f.phone {
        q = q.filter(requests::id.eq_any(looked_up!(Blind::Phone, p)));
    }
    Ok(q)
}

fn lookup_kind(kind: Blind) -> &'static str {
    match kind {
        Blind::Email => "email",
        Blind::Phone => "phone",
    }
}

/// The blind indexes of a request's email address and phone number, by kind.
fn lookups_of(request: &StoredRequest) -> Result<Vec<(&'static str, String)>, StoreError> {
    let values = [
        (
            Blind::Email,
            request.contact.email.as_ref().map(|e| e.as_str()),
        ),
        (
            Blind::Phone,
            request.contact.phone.as_ref().map(|p| p.as_str()),
        ),
    ];
    values
        .into_iter()
        .filter_map(|(kind, value)| Some((kind, value?)))
        .map(|(kind, value)| Ok((lookup_kind(kind), fields::blind(kind, value)?)))
        .collect()
}

/// The key of the tally row a new request's trigger updates at commit (`request_tallies_add`,
/// migration 000019: status, kind, whether it has a due time, the id's last character), as
/// the order its rows are inserted in among others committed with them (`insert_batches`):
/// batches that take those rows in one order cannot deadlock on them.
fn tally_key(row: &RequestRow) -> String {
    let dated = u8::from(row.due_at.is_some());
    let shard = row.id.chars().last().unwrap_or_default();
    format!("{}\0{}\0{dated}\0{shard}", row.status, row.kind)
}

fn request_statement(row: RequestRow) -> impl Insert {
    diesel::insert_into(requests::table).values(row)
}

fn event_statement(row: EventRow) -> impl Insert {
    diesel::insert_into(request_events::table).values(row)
}

fn lookup_statement(request_id: &str, kind: &'static str, digest: String) -> impl Insert {
    diesel::insert_into(subject_lookups::table).values((
        subject_lookups::request_id.eq(request_id.to_owned()),
        subject_lookups::kind.eq(kind),
        subject_lookups::digest.eq(digest),
    ))
}

/// Writes the blind indexes of a stored request (when rotation seals an older request).
pub fn write_lookups(c: &mut DbConnection, request: &StoredRequest) -> Result<(), StoreError> {
    for (kind, digest) in lookups_of(request)? {
        // Plain INSERT: a second write of the same lookup (rotation run twice) is skipped.
        let exists = subject_lookups::table
            .filter(subject_lookups::request_id.eq(&request.id))
            .filter(subject_lookups::kind.eq(kind))
            .count()
            .get_result::<i64>(c)?
            > 0;
        if !exists {
            let mut writes = Writes::new();
            writes.insert(lookup_statement(&request.id, kind, digest));
            writes.write_on(c)?;
        }
    }
    Ok(())
}

/// The statuses of requests that have not ended, as the partial indexes of migration
/// 000006 name them (a query must say `status IN (these)` for the index to serve it).
pub const OPEN_STATUSES: [&str; 4] = [
    "awaiting_verification",
    "in_review",
    "awaiting_subject",
    "in_progress",
];

/// `status IN (…open…)` as literal SQL. A partial index is used only when the query states
/// its condition with constants: with bound parameters (`eq_any`) SQLite cannot tell that
/// the query's rows are the index's rows. The text is a constant, never input.
pub fn open_condition() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>(
        "status IN ('awaiting_verification', 'in_review', 'awaiting_subject', 'in_progress')",
    )
}

/// The open tallies added up by status (the console's tabs; ended requests are not shown
/// there).
pub fn open_by_status(open: &[Tally]) -> Vec<(String, i64)> {
    let mut by_status = std::collections::BTreeMap::<String, i64>::new();
    for t in open {
        *by_status.entry(t.status.clone()).or_default() += t.n;
    }
    by_status.into_iter().collect()
}

/// One page of requests matching the filter, and how many match in all.
///
/// Sorting by due date puts requests without one (their clock has not started) last, in both
/// directions. That is done as two ordered reads, those with a due date and then those
/// without, rather than one `ORDER BY due_at IS NULL, …`, so that an index in due-date order
/// can serve the page without sorting the whole table.
pub fn list(
    conn: &mut DbConnection,
    f: &ListFilter,
) -> Result<(Vec<StoredRequest>, i64), StoreError> {
    list_with(conn, f, None)
}

/// As [`list`], with the open tallies already read (the console's queue reads them once for
/// its counts and its page).
pub fn list_with(
    conn: &mut DbConnection,
    f: &ListFilter,
    open: Option<&[Tally]>,
) -> Result<(Vec<StoredRequest>, i64), StoreError> {
    match f.sort {
        Sort::ReceivedAsc | Sort::ReceivedDesc => {
            let total: i64 = match tallied(conn, f, open)? {
                Some((dated, undated)) => dated + undated,
                None => filtered(f)?.count().get_result(conn)?,
            };
            let q = filtered(f)?.select(RequestRow::as_select());
            let q = if f.sort == Sort::ReceivedAsc {
                q.order((requests::received_at.asc(), requests::id.asc()))
            } else {
                q.order((requests::received_at.desc(), requests::id.asc()))
            };
            let rows = q.limit(f.limit).offset(f.offset).load(conn)?;
            finish(rows, total)
        }
        Sort::DueAsc | Sort::DueDesc => {
            let (dated, undated) = match tallied(conn, f, open)? {
                Some(counts) => counts,
                None => (
                    filtered(f)?
                        .filter(requests::due_at.is_not_null())
                        .count()
                        .get_result(conn)?,
                    filtered(f)?
                        .filter(requests::due_at.is_null())
                        .count()
                        .get_result(conn)?,
                ),
            };
            let mut rows = vec![];
            if f.offset < dated {
                let q = filtered(f)?
                    .filter(requests::due_at.is_not_null())
                    .select(RequestRow::as_select());
                let q = if f.sort == Sort::DueAsc {
                    q.order((
                        requests::due_at.asc(),
                        requests::received_at.asc(),
                        requests::id.asc(),
                    ))
                } else {
                    q.order((
                        requests::due_at.desc(),
                        requests::received_at.desc(),
                        requests::id.asc(),
                    ))
                };
                rows = q.limit(f.limit).offset(f.offset).load(conn)?;
            }
            let missing = f.limit - rows.len() as i64;
            if missing > 0 && undated > 0 {
                let q = filtered(f)?
                    .filter(requests::due_at.is_null())
                    .select(RequestRow::as_select());
                let q = if f.sort == Sort::DueAsc {
                    q.order((requests::received_at.asc(), requests::id.asc()))
                } else {
                    q.order((requests::received_at.desc(), requests::id.asc()))
                };
                let more = q
                    .limit(missing)
                    .offset((f.offset - dated).max(0))
                    .load(conn)?;
                rows.extend(more);
            }
            finish(rows, dated + undated)
        }
    }
}

/// How many requests match (with a due date, without), read from the kept tallies when the
/// filter asks only for what they keep (a status or the open ones, a kind); None otherwise.
/// Counting the open requests of a large table takes tens of milliseconds; this, well under one.
fn tallied(
    conn: &mut DbConnection,
    f: &ListFilter,
    open: Option<&[Tally]>,
) -> Result<Option<(i64, i64)>, StoreError> {
    // Named field by field, so that a new filter cannot be forgotten here.
    let ListFilter {
        status,
        kind,
        open_only,
        jurisdiction,
        assignee,
        due_before,
        due_after,
        overdue_at,
        duplicates_only,
        minors_only,
        second_approval_for,
        reference,
        email,
        phone,
        sort: _,
        limit: _,
        offset: _,
    } = f;
    let narrower = jurisdiction.is_some()
        || assignee.is_some()
        || due_before.is_some()
        || due_after.is_some()
        || overdue_at.is_some()
        || *duplicates_only
        || *minors_only
        || second_approval_for.is_some()
        || reference.is_some()
        || email.is_some()
        || phone.is_some();
    if narrower {
        return Ok(None);
    }
    let read;
    let tallies: &[Tally] = match (open_only, open) {
        (true, Some(given)) => given,
        (true, None) => {
            read = super::tallies::open(conn)?;
            &read
        }
        (false, _) => {
            read = super::tallies::all(conn)?;
            &read
        }
    };
    let mut counts = (0, 0);
    for t in tallies {
        let wanted = status.is_none_or(|s| s.as_str() == t.status)
            && kind.is_none_or(|k| k.as_str() == t.kind);
        if wanted {
            if t.dated {
                counts.0 += t.n;
            } else {
                counts.1 += t.n;
            }
        }
    }
    Ok(Some(counts))
}

fn finish(rows: Vec<RequestRow>, total: i64) -> Result<(Vec<StoredRequest>, i64), StoreError> {
    let page = rows
        .into_iter()
        .map(StoredRequest::try_from)
        .collect::<Result<_, _>>()?;
    Ok((page, total))
}

/// Ids of requests still awaiting verification that were received before `received_before`.
pub fn awaiting_verification_since(
    conn: &mut DbConnection,
    received_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(requests::table
        .filter(requests::status.eq(Status::AwaitingVerification.as_str()))
        // Partly proved requests wait for staff; they never expire, so they are not scanned.
        .filter(requests::verified_methods.eq(""))
        .filter(requests::received_at.le(to_db_time(received_before)))
        .order(requests::received_at.asc())
        .select(requests::id)
        .limit(limit)
        .load(conn)?)
}

/// Another open, verified request of the same kind by the same subject (same email, phone or
/// platform account), oldest first: the one `request` duplicates, if any.
pub fn open_duplicate_of(
    conn: &mut DbConnection,
    request: &StoredRequest,
) -> Result<Option<String>, StoreError> {
    let email = request
        .contact
        .email
        .as_ref()
        .map(|e| e.as_str().to_owned());
    let phone = request
        .contact
        .phone
        .as_ref()
        .map(|p| p.as_str().to_owned());
    let platform = request.platform_user_id.clone();
    if email.is_none() && phone.is_none() && platform.is_none() {
        return Ok(None);
    }
    let mut same_subject: Box<
        dyn BoxableExpression<requests::table, MultiBackend, SqlType = diesel::sql_types::Bool>,
    > = Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
    if let Some(e) = email {
        same_subject = Box::new(same_subject.or(requests::id.eq_any(looked_up!(Blind::Email, &e))));
    }
    if let Some(p) = phone {
        same_subject = Box::new(same_subject.or(requests::id.eq_any(looked_up!(Blind::Phone, &p))));
    }
    if let Some(p) = platform {
        same_subject =
            Box::new(same_subject.or(requests::platform_user_id.eq(p).assume_not_null()));
    }
    Ok(requests::table
        .filter(requests::id.ne(&request.id))
        .filter(requests::kind.eq(request.state.kind.as_str()))
        .filter(requests::closed_at.is_null())
        .filter(requests::verified_at.is_not_null())
        .filter(same_subject)
        .order(requests::received_at.asc())
        .select(requests::reference)
        .first(conn)
        .optional()?)
}

/// The references of the requests with these ids (id → reference).
pub fn references_of(
    conn: &mut DbConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    Ok(requests::table
        .filter(requests::id.eq_any(ids))
        .select((requests::id, requests::reference))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

pub fn set_duplicate_of(
    conn: &mut DbConnection,
    id: &str,
    reference: &str,
) -> Result<(), StoreError> {
    diesel::update(requests::table.filter(requests::id.eq(id)))
        .set(requests::duplicate_of.eq(Some(reference)))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::verification::{challenge_statement, SubjectSession};

    /// Whether diesel keys the statement `make` builds by its type in the connection's
    /// statement cache. One that is not is written out as SQL text on every execution to look
    /// it up: for a submission's inserts that was ~8% of the SQLite writer's turn, because
    /// `treat_none_as_null` (which these rows once had) means nothing to `Insertable`, and a
    /// field that may be `DEFAULT` makes the statement's text depend on the values.
    fn keyed_by_type<A, Q: Insert>(_make: fn(A) -> Q) -> bool {
        Q::cached_by_type()
    }

    /// The statements a submission writes (`insert`, and the first code's).
    #[test]
    fn a_submissions_inserts_are_cached_by_their_type() {
        assert!(keyed_by_type(request_statement));
        assert!(keyed_by_type(event_statement));
        assert!(keyed_by_type(outbox::statement));
        assert!(keyed_by_type(challenge_statement));
        assert!(keyed_by_type(
            |(id, kind, digest): (&str, &'static str, String)| {
                lookup_statement(id, kind, digest)
            }
        ));
        // And the check can fail: a row whose `None` means the column's default makes the
        // SQL depend on the values.
        assert!(!keyed_by_type(|s: SubjectSession| {
            diesel::insert_into(super::super::schema::subject_sessions::table).values(s)
        }));
    }
}

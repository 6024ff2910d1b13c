//! Fulfilment tasks: one per approved request and data system, each run by an outbox row.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::outbox::{self, OutboxRow};
use super::schema::{fulfilment_tasks, outbox as outbox_table};
use super::{fields, to_db_time, DbConnection, StoreError};

/// The outbox kind of a task's row.
pub const FULFIL: &str = "fulfil";

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
/// The request ended (withdrawn, say) before the task ran: nothing was done.
pub const CANCELLED: &str = "cancelled";
/// A reviewer recorded why it could not be done (a legal retention period, a system gone).
pub const WAIVED: &str = "waived";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = fulfilment_tasks)]
pub struct TaskRow {
    pub id: String,
    pub request_id: String,
    pub system: String,
    pub action: String,
    pub status: String,
    pub outbox_id: String,
    pub result: Option<String>,
    pub created_at: NaiveDateTime,
    pub done_at: Option<NaiveDateTime>,
}

/// A task with how its outbox row stands (`failed` when retries ran out, with the error).
#[derive(Debug, Clone)]
pub struct TaskView {
    pub task: TaskRow,
    pub run_status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// When its outbox row may run (a lifted restriction's: the day the notice names).
    pub run_after: NaiveDateTime,
}

/// Creates a task and the outbox row that runs it (not before `run_after`), in one
/// transaction. A second plan of the same request, system and action (the planning row run
/// twice) changes nothing: false.
pub fn create(
    conn: &mut DbConnection,
    request_id: &str,
    system: &str,
    action: &str,
    at: DateTime<Utc>,
    run_after: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut run = OutboxRow::new(
        uuid::Uuid::new_v4().to_string(),
        Some(request_id),
        FULFIL,
        serde_json::json!({ "task": id }).to_string(),
        at,
    );
    run.run_after = to_db_time(run_after);
    let row = TaskRow {
        id,
        request_id: request_id.to_owned(),
        system: system.to_owned(),
        action: action.to_owned(),
        status: PENDING.into(),
        outbox_id: run.id.clone(),
        result: None,
        created_at: to_db_time(at),
        done_at: None,
    };
    let inserted = super::db::write::<_, StoreError, _>(&mut *conn, |c| {
        diesel::insert_into(fulfilment_tasks::table)
            .values(&row)
            .execute(c)
            .map_err(|e| super::requests::duplicate_as(e, "fulfilment task"))?;
        outbox::insert(c, &run)
    });
    match inserted {
        Ok(()) => Ok(true),
        Err(StoreError::Duplicate(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A task's result is sealed at rest: it may hold what a system answered about the subject.
const RESULT: &str = "fulfilment_tasks.result";

fn opened(row: TaskRow) -> Result<TaskRow, StoreError> {
    Ok(TaskRow {
        result: fields::open_opt(RESULT, &row.id, row.result.as_deref())?,
        ..row
    })
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<TaskRow>, StoreError> {
    fulfilment_tasks::table
        .filter(fulfilment_tasks::id.eq(id))
        .select(TaskRow::as_select())
        .first(conn)
        .optional()?
        .map(opened)
        .transpose()
}

/// Records the end of a pending task (done with its result, or cancelled): false when it had
/// ended already (run twice).
pub fn finish(
    conn: &mut DbConnection,
    id: &str,
    status: &str,
    result: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(diesel::update(
        fulfilment_tasks::table
            .filter(fulfilment_tasks::id.eq(id))
            .filter(fulfilment_tasks::status.eq(PENDING)),
    )
    .set((
        fulfilment_tasks::status.eq(status),
        fulfilment_tasks::result.eq(Some(fields::seal(RESULT, id, &result.to_string())?)),
        fulfilment_tasks::done_at.eq(Some(to_db_time(at))),
    ))
    .execute(conn)?
        == 1)
}

/// A request's tasks, oldest first, with their outbox rows' state.
pub fn for_request(conn: &mut DbConnection, request_id: &str) -> Result<Vec<TaskView>, StoreError> {
    let rows: Vec<(TaskRow, String, i32, Option<String>, NaiveDateTime)> = fulfilment_tasks::table
        .inner_join(outbox_table::table.on(outbox_table::id.eq(fulfilment_tasks::outbox_id)))
        .filter(fulfilment_tasks::request_id.eq(request_id))
        .order((
            fulfilment_tasks::created_at.asc(),
            fulfilment_tasks::system.asc(),
        ))
        .select((
            TaskRow::as_select(),
            outbox_table::status,
            outbox_table::attempts,
            outbox_table::last_error,
            outbox_table::run_after,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(task, run_status, attempts, last_error, run_after)| {
            Ok(TaskView {
                last_error: outbox::open_error(&task.outbox_id, last_error)?,
                task: opened(task)?,
                run_status,
                attempts,
                run_after,
            })
        })
        .collect()
}

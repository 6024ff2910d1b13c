//! In-site messages (站内信): every message sent to a subject, kept for the portal.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::inbox_messages;
use super::{fields, DbConnection, StoreError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = inbox_messages)]
pub struct InboxMessage {
    pub id: String,
    pub request_id: String,
    pub message: String,
    pub locale: String,
    pub subject: String,
    pub body: String,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
}

/// A message's text names the subject: sealed at rest.
pub const SUBJECT: &str = "inbox_messages.subject";
pub const BODY: &str = "inbox_messages.body";

pub fn insert(conn: &mut DbConnection, message: &InboxMessage) -> Result<(), StoreError> {
    let sealed = InboxMessage {
        subject: fields::seal(SUBJECT, &message.id, &message.subject)?,
        body: fields::seal(BODY, &message.id, &message.body)?,
        ..message.clone()
    };
    diesel::insert_into(inbox_messages::table)
        .values(sealed)
        .execute(conn)
        .map_err(|e| super::requests::duplicate_as(e, "in-site message"))?;
    Ok(())
}

/// A request's in-site messages, oldest first.
pub fn for_request(
    conn: &mut DbConnection,
    request_id: &str,
) -> Result<Vec<InboxMessage>, StoreError> {
    inbox_messages::table
        .filter(inbox_messages::request_id.eq(request_id))
        .order((inbox_messages::created_at.asc(), inbox_messages::id.asc()))
        .select(InboxMessage::as_select())
        .load(conn)?
        .into_iter()
        .map(|m: InboxMessage| {
            Ok(InboxMessage {
                subject: fields::open(SUBJECT, &m.id, &m.subject)?,
                body: fields::open(BODY, &m.id, &m.body)?,
                ..m
            })
        })
        .collect()
}

//! The evidence package of one request (`rightsflow audit export --request REF`): what an
//! auditor or a regulator asks to see — the request as received, its timeline with each
//! event's place in the hash chain and the chain's check, every message sent about it (email,
//! SMS, in-site), its fulfilment tasks and their outcomes, and its results (sizes and checksums,
//! never their content) — in one JSON document, personal data opened (the export is itself
//! personal data: handle it as such).

use serde_json::{json, Value};

use super::{ServiceError, Services};
use crate::domain::Reference;
use crate::storage::{self, from_db_time, outbox};

/// One delivery as evidence: who it went to, which message, in which language, what it said.
fn delivery(row: &outbox::OutboxRow) -> Value {
    let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
    json!({
        "channel": row.kind,
        "status": row.status,
        "to": payload["to"],
        "message": payload["message"],
        "locale": payload["locale"],
        "subject": payload["subject"],
        "text": if row.kind == outbox::SMS { &payload["body"] } else { &payload["text"] },
        "queued_at": from_db_time(row.created_at),
        "sent_at": row.done_at.map(from_db_time),
        "attempts": row.attempts,
        "last_error": row.last_error,
    })
}

pub fn export(s: &Services, reference: &Reference) -> Result<Value, ServiceError> {
    let mut conn = s.db().conn()?;
    let c = &mut *conn;
    let request = storage::requests::find_by_reference(c, reference)?;
    let id = request.id.as_str();
    let hashes = storage::audit::hashes(c, id)?;
    let timeline: Vec<Value> = storage::requests::events(c, id)?
        .into_iter()
        .map(|(seq, e)| {
            let (prev, hash) = hashes.get(&seq).cloned().unwrap_or_default();
            json!({
                "seq": seq,
                "at": e.at,
                "actor": e.actor,
                "command": e.command,
                "from": e.from,
                "to": e.to,
                "details": e.details,
                "prev_hash": prev,
                "hash": hash,
            })
        })
        .collect();
    let chain = match storage::audit::verify_request(c, id)? {
        Ok(checked) => json!({ "intact": true, "events": checked.events }),
        Err(broken) => json!({ "intact": false, "event": broken.seq, "why": broken.why }),
    };
    let messages: Vec<Value> = outbox::for_request(c, id)?
        .iter()
        .filter(|r| r.kind == outbox::EMAIL || r.kind == outbox::SMS)
        .map(delivery)
        .collect();
    let in_site: Vec<Value> = storage::inbox::for_request(c, id)?
        .into_iter()
        .map(|m| {
            json!({ "message": m.message, "locale": m.locale, "subject": m.subject,
                    "body": m.body, "at": from_db_time(m.created_at),
                    "read_at": m.read_at.map(from_db_time) })
        })
        .collect();
    let tasks: Vec<Value> = storage::tasks::for_request(c, id)?
        .into_iter()
        .map(|t| {
            json!({
                "system": t.task.system,
                "action": t.task.action,
                "status": t.task.status,
                "result": t.task.result.as_deref().map(|r| serde_json::from_str::<Value>(r).unwrap_or(Value::String(r.to_owned()))),
                "created_at": from_db_time(t.task.created_at),
                "done_at": t.task.done_at.map(from_db_time),
                "run": { "status": t.run_status, "attempts": t.attempts, "last_error": t.last_error },
            })
        })
        .collect();
    let results: Vec<Value> = storage::results::all_for_request(c, id)?
        .into_iter()
        .map(|r| {
            json!({
                "file_name": r.file_name, "content_type": r.content_type, "size": r.size,
                "sha256": r.sha256, "created_by": r.created_by,
                "created_at": from_db_time(r.created_at), "expires_at": from_db_time(r.expires_at),
                "downloads": r.downloads, "last_downloaded_at": r.last_downloaded_at.map(from_db_time),
                "purged_at": r.purged_at.map(from_db_time),
            })
        })
        .collect();
    // Exporting is itself a look at personal data: logged, by the operator at the machine.
    storage::audit_log::append(
        c,
        &storage::audit_log::Entry {
            actor: &crate::domain::Actor::System,
            action: storage::audit_log::action::EVIDENCE_EXPORTED,
            request_id: Some(id),
            details: json!({ "reference": request.reference.as_str(), "via": "cli" }),
            at: super::now(),
        },
    )?;
    let st = &request.state;
    Ok(json!({
        "format": "rightsflow-evidence/1",
        "exported_at": super::now(),
        "request": {
            "reference": request.reference.as_str(),
            "id": id,
            "kind": st.kind,
            "jurisdiction": st.jurisdiction,
            "status": st.status,
            "channel": request.channel,
            "locale": request.locale,
            "subject": {
                "name": request.contact.name,
                "email": request.contact.email.as_ref().map(|e| e.as_str()),
                "phone": request.contact.phone.as_ref().map(|p| p.as_str()),
                "platform_user_id": request.platform_user_id,
                "representative": st.representative,
            },
            "details": request.details,
            "received_at": st.received_at,
            "verified_at": st.verified_at,
            "verified_methods": st.verified_methods,
            "due": st.due.as_ref().map(|d| json!({ "date": d.date, "ends_at": d.ends_at })),
            "extended_at": st.extended_at,
            "approved_at": st.approved_at,
            "closed_at": st.closed_at,
            "rejection": st.rejection,
        },
        "chain": chain,
        "timeline": timeline,
        "messages": messages,
        "in_site_messages": in_site,
        "tasks": tasks,
        "results": results,
    }))
}

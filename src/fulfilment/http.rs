//! The HTTP connector: a data system that is reached through its own endpoint. Each task is a
//! signed JSON POST (`auth::signing`: timestamp + HMAC-SHA256 over the body, the system's first
//! secret; the task id as `Idempotency-Key`). The system answers, signed the same way with any
//! of its secrets, either at once (`done` with its result, or `refused` with why) or
//! `accepted`, and later POSTs the outcome to the task's callback URL. An answer or callback
//! whose signature does not check is refused and changes nothing.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::registry::{HttpSystem, System};
use super::run::FulfilError;
use super::sql::TableRows;
use crate::auth::signing::{self, SignatureError};

/// The largest answer or callback body read (an access result with its rows).
pub const MAX_ANSWER_BYTES: u64 = 20 * 1024 * 1024;

/// What a system says of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Done: its result (for access and portability, `{"tables": [...]}`).
    Done(Value),
    /// It cannot do it, and why (a legal retention period, say): recorded like a reviewer's
    /// waiver, and the subject is told.
    Refused(String),
    /// It will answer through the callback.
    Accepted,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    status: String,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    reason: Option<String>,
}

/// Reads an answer's body: `{"status": "done", "result": {...}}`, `{"status": "refused",
/// "reason": "..."}` or `{"status": "accepted"}`. An access result must hold `tables` in the
/// package's shape (each with `table`, `categories` and `rows`).
pub fn parse_answer(body: &str, action: &str) -> Result<Answer, String> {
    let wire: Wire = serde_json::from_str(body).map_err(|e| format!("not an answer: {e}"))?;
    match wire.status.as_str() {
        "done" => {
            let result = wire.result.unwrap_or(Value::Object(Default::default()));
            if action == "access" {
                serde_json::from_value::<Vec<TableRows>>(result["tables"].clone())
                    .map_err(|e| format!("an access result needs tables: {e}"))?;
            }
            Ok(Answer::Done(result))
        }
        "refused" => wire
            .reason
            .filter(|r| !r.trim().is_empty())
            .map(Answer::Refused)
            .ok_or_else(|| "a refusal needs a reason".into()),
        "accepted" => Ok(Answer::Accepted),
        other => Err(format!("status {other:?} is not done, refused or accepted")),
    }
}

/// Checks a signed message from the system (an answer or a callback).
pub fn check(
    system: &HttpSystem,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    signing::verify(&system.secrets, timestamp, signature, body, now.timestamp())
}

/// Sends one task and reads the answer.
pub fn call(
    system: &System,
    http: &HttpSystem,
    task_id: &str,
    action: &str,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<Answer, FulfilError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(system.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let body = body.to_string();
    let timestamp = now.timestamp();
    let secret = http.secrets.first().map(String::as_str).unwrap_or_default();
    let mut response = agent
        .post(&http.url)
        .header("Content-Type", "application/json")
        .header("X-Rightsflow-Timestamp", &timestamp.to_string())
        .header(
            "X-Rightsflow-Signature",
            &signing::signature(secret, timestamp, &body),
        )
        .header("X-Rightsflow-Event", "fulfilment_task")
        .header("Idempotency-Key", task_id)
        .send(&body)
        .map_err(|e| FulfilError::Transient(format!("cannot reach the data system: {e}")))?;
    let status = response.status().as_u16();
    if !(200..=299).contains(&status) {
        return Err(FulfilError::Transient(format!(
            "the data system answered HTTP {status}"
        )));
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (ts, sig) = (
        header("X-Rightsflow-Timestamp"),
        header("X-Rightsflow-Signature"),
    );
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| FulfilError::Transient(format!("reading the data system's answer: {e}")))?;
    // An answer that is not signed by the system is not believed: it could come from anyone
    // on the way.
    check(http, ts.as_deref(), sig.as_deref(), &text, Utc::now()).map_err(|e| {
        FulfilError::Transient(format!("the data system's answer was refused: {e}"))
    })?;
    if status == 202 && text.trim().is_empty() {
        return Ok(Answer::Accepted);
    }
    parse_answer(&text, action)
        .map_err(|e| FulfilError::Transient(format!("the data system's answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(
            parse_answer(r#"{"status":"accepted"}"#, "deletion"),
            Ok(Answer::Accepted)
        );
        assert_eq!(
            parse_answer(
                r#"{"status":"refused","reason":"税务留存 / tax records"}"#,
                "deletion"
            ),
            Ok(Answer::Refused("税务留存 / tax records".into()))
        );
        assert!(parse_answer(r#"{"status":"refused"}"#, "deletion").is_err());
        assert!(parse_answer(r#"{"status":"ok"}"#, "deletion").is_err());
        assert!(parse_answer(r#"{"status":"done","extra":1}"#, "deletion").is_err());
        // Access results carry tables of rows.
        assert!(parse_answer(r#"{"status":"done","result":{}}"#, "access").is_err());
        let ok = json!({ "status": "done", "result": { "tables": [
            { "table": "members", "categories": { "level": "account" }, "rows": [ { "level": "gold" } ] }
        ] } });
        assert!(matches!(
            parse_answer(&ok.to_string(), "access"),
            Ok(Answer::Done(_))
        ));
    }
}

//! The variables a message template sees. Every template gets every key (null where it does not
//! apply), so strict mode catches a misspelt name in a template, not a missing optional value.

use serde_json::{json, Map, Value};

use crate::clock::Due;
use crate::domain::{Event, Locale, Message, Policy, RejectionReason};
use crate::storage::rows::StoredRequest;

/// The names every template may use. Every template is rendered in strict mode with all of them
/// (null and filled) in `templates::tests`, which catches any other name outside a condition;
/// strict mode does not check names used only inside `{{#if}}`.
pub const VARIABLES: [&str; 23] = [
    "app_name",
    "base_url",
    "reference",
    "kind",
    "kind_label",
    "jurisdiction",
    "subject_name",
    "request_url",
    "console_url",
    "due_date",
    "due_ends_at",
    "question",
    "reason",
    "previous_due_date",
    "reason_code",
    "reason_label",
    "explanation",
    "summary",
    "code",
    "minutes_valid",
    "working_days_left",
    "lift_date",
    "magic_link",
];

/// Where links point and how the product names itself.
#[derive(Debug, Clone)]
pub struct Site {
    pub app_name: String,
    pub base_url: String,
}

fn text(details: &Value, key: &str) -> Value {
    details
        .get(key)
        .and_then(Value::as_str)
        .map_or(Value::Null, |s| json!(s))
}

/// The context for `message` about `request`, in `locale`, using the event that caused it
/// (for the question, reason, explanation or summary it carried) and `extra` values such as a
/// reminder's `working_days_left`.
pub fn build(
    site: &Site,
    policy: &Policy,
    request: &StoredRequest,
    locale: Locale,
    message: Message,
    event: Option<&Event>,
    extra: &Map<String, Value>,
) -> Value {
    let state = &request.state;
    let tz = policy.rules(state.jurisdiction).time_zone;
    let details = event.map_or(Value::Null, |e| e.details.clone());
    let ends = |d: &Due| {
        format!(
            "{} ({})",
            d.ends_at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S"),
            tz.name()
        )
    };
    let reason_code = (message == Message::Rejected)
        .then(|| details.get("reason").and_then(Value::as_str))
        .flatten();
    let reason_label = reason_code
        .and_then(|c| c.parse::<RejectionReason>().ok())
        .map(|r| match locale {
            Locale::ZhCn => r.label_zh(),
            Locale::En => r.label_en(),
        });
    let base = site.base_url.trim_end_matches('/');
    let mut ctx = json!({
        "app_name": site.app_name,
        "base_url": base,
        "reference": request.reference.as_str(),
        "kind": state.kind.as_str(),
        "kind_label": match locale { Locale::ZhCn => state.kind.label_zh(), Locale::En => state.kind.label_en() },
        "jurisdiction": state.jurisdiction.as_str(),
        "subject_name": request.contact.name,
        "request_url": format!("{base}/requests/{}", request.reference),
        "console_url": format!("{base}/console/requests/{}", request.id),
        "due_date": state.due.as_ref().map(|d| d.date.to_string()),
        "due_ends_at": state.due.as_ref().map(ends),
        "question": text(&details, "question"),
        "reason": if message == Message::Extended { text(&details, "reason") } else { Value::Null },
        "previous_due_date": details.pointer("/previous_due/date").cloned().unwrap_or(Value::Null),
        "reason_code": reason_code,
        "reason_label": reason_label,
        "explanation": text(&details, "explanation"),
        "summary": text(&details, "summary"),
        "code": null,
        "minutes_valid": null,
        "working_days_left": null,
        "lift_date": null,
        "magic_link": null,
    });
    if let Some(map) = ctx.as_object_mut() {
        for (k, v) in extra {
            if VARIABLES.contains(&k.as_str()) {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    ctx
}

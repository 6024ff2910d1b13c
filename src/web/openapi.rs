//! The OpenAPI 3.1 document of the JSON API, served at `/api/openapi.json`. Written by hand
//! next to the routes; a test checks that every route is documented and nothing else is.

use actix_web::HttpResponse;
use serde_json::{json, Value};

use crate::domain::{Jurisdiction, RejectionReason, RequestKind, Role, Status};

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(spec())
}

fn names<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Value {
    json!(all.iter().map(|v| f(*v)).collect::<Vec<_>>())
}

fn error_responses(codes: &[u16]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            code.to_string(),
            json!({ "$ref": "#/components/responses/Error" }),
        );
    }
    Value::Object(map)
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn ok(status: u16, description: &str, schema: Value, errors: &[u16]) -> Value {
    let success = json!({ status.to_string(): { "description": description, "content": { "application/json": { "schema": schema } } } });
    merge(success, error_responses(errors))
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" }, "description": description })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

const COMMAND_NAMES: [&str; 12] = [
    "verify",
    "expire",
    "request_info",
    "subject_reply",
    "assign",
    "approve",
    "reject",
    "extend",
    "start_fulfilment",
    "complete",
    "withdraw",
    "note",
];

/// The document itself.
pub fn spec() -> Value {
    let subject_session = json!([{ "subjectSession": [] }]);
    let reference = path_param("reference", "The request reference, e.g. DSR-7K2Q-9XPM");
    let id = path_param("id", "The request id (staff side)");
    let staff_auth = json!([{ "staffBearer": [] }]);
    let fulfilment_paths = fulfilment_paths(&staff_auth, &id);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Rightsflow API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Data-subject rights requests: submission and follow-up for subjects, the queue and actions for staff. Errors always have the shape {\"error\": {\"code\", \"message\"}}; the message follows Accept-Language (Chinese by default, English when preferred)."
        },
        "paths": {
            "/healthz": { "get": { "summary": "The process is up", "responses": { "200": { "description": "up" } } } },
            "/readyz": { "get": { "summary": "The database is reachable", "responses": { "200": { "description": "ready" }, "503": { "description": "database unreachable" } } } },
            "/api/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1" } } } },
            "/api/v1/requests": { "post": {
                "summary": "Submit a request (subject)",
                "requestBody": body(json!({ "$ref": "#/components/schemas/Submission" })),
                "parameters": [{ "name": "X-Platform-Token", "in": "header", "required": false, "schema": { "type": "string" }, "description": "A token the platform signed for a signed-in user: verifies at once and returns a session" }],
                "responses": ok(201, "Created; a code was sent (verification.status = code_sent), or, with a platform token, verified with a session", json!({ "$ref": "#/components/schemas/Submitted" }), &[400, 401, 413, 415, 422])
            }},
            "/api/v1/requests/{reference}": { "get": {
                "summary": "Follow a request (subject)",
                "security": subject_session, "parameters": [reference],
                "responses": ok(200, "The request as the subject sees it", json!({ "$ref": "#/components/schemas/SubjectRequest" }), &[401])
            }},
            "/api/v1/requests/{reference}/withdraw": { "post": {
                "summary": "Withdraw a request (subject), allowed until fulfilment starts changing data",
                "security": subject_session, "parameters": [reference],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "reason": { "type": "string" } }, "additionalProperties": false } } } },
                "responses": ok(200, "Withdrawn", json!({ "$ref": "#/components/schemas/SubjectRequest" }), &[401, 409, 422])
            }},
            "/api/v1/requests/{reference}/reply": { "post": {
                "summary": "Answer staff's question (subject)",
                "security": subject_session, "parameters": [reference],
                "requestBody": body(json!({ "type": "object", "required": ["message"], "properties": { "message": { "type": "string" } }, "additionalProperties": false })),
                "responses": ok(200, "Reply recorded; the request is back in review", json!({ "$ref": "#/components/schemas/SubjectRequest" }), &[401, 409, 422])
            }},
            "/api/v1/requests/{reference}/messages": { "get": {
                "summary": "The in-site messages (站内信) sent to the subject about this request, oldest first",
                "security": subject_session, "parameters": [reference],
                "responses": ok(200, "Messages", json!({ "type": "object", "properties": { "items": { "type": "array", "items": { "type": "object", "properties": { "id": { "type": "string" }, "message": { "type": "string" }, "locale": { "type": "string" }, "subject": { "type": "string" }, "body": { "type": "string" }, "created_at": { "type": "string", "format": "date-time" } } } } } }), &[401])
            }},
            "/api/v1/requests/{reference}/results": { "get": {
                "summary": "The results ready for the subject (access report, portability export), newest first; only live ones",
                "security": subject_session, "parameters": [reference],
                "responses": ok(200, "Results", json!({ "type": "object", "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Result" } } } }), &[401])
            }},
            "/api/v1/requests/{reference}/results/{result_id}": { "get": {
                "summary": "Download one result (counted); 404 once its link has expired",
                "security": subject_session,
                "parameters": [reference, path_param("result_id", "The result id from the list")],
                "responses": merge(json!({ "200": { "description": "The file, as an attachment", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } } }), error_responses(&[401, 404]))
            }},
            "/api/v1/staff/requests/{id}/results": { "post": {
                "summary": "Attach a result (the raw file as the body) to an approved access or portability request in progress; recorded in the event log with its SHA-256",
                "security": staff_auth,
                "parameters": [id, { "name": "file_name", "in": "query", "required": true, "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$" }, "description": "The name the subject's download gets" }],
                "requestBody": { "required": true, "content": {
                    "text/html": { "schema": { "type": "string" } },
                    "text/csv": { "schema": { "type": "string" } },
                    "application/json": { "schema": {} },
                    "application/zip": { "schema": { "type": "string", "format": "binary" } },
                    "text/plain": { "schema": { "type": "string" } }
                } },
                "responses": ok(201, "Attached; downloadable for 7 days", json!({ "$ref": "#/components/schemas/Result" }), &[400, 401, 403, 404, 409, 413, 415, 422])
            }},
            "/api/v1/subjects/{platform_user_id}/consents": {
                "get": {
                    "summary": "The platform reads an account's current consents per purpose, and the history of grants and withdrawals",
                    "description": "Authorization: Bearer <consents.api_key>. 404 `not_enabled` when no key is configured.",
                    "parameters": [path_param("platform_user_id", "The platform's account id")],
                    "responses": ok(200, "Current consents and history", json!({ "type": "object", "properties": { "platform_user_id": { "type": "string" }, "consents": { "type": "array", "items": { "type": "object", "properties": { "purpose": { "type": "string" }, "granted": { "type": ["boolean", "null"] }, "at": { "type": ["string", "null"] }, "source": { "type": ["string", "null"] } } } }, "history": { "type": "array" } } }), &[401, 404, 422])
                },
                "post": {
                    "summary": "The platform records a grant or withdrawal made in its own pages",
                    "description": "Authorization: Bearer <consents.api_key>. `source` defaults to `platform` (e.g. `gpc` for a Global Privacy Control signal).",
                    "parameters": [path_param("platform_user_id", "The platform's account id")],
                    "requestBody": body(json!({ "type": "object", "required": ["purpose", "granted"], "properties": { "purpose": { "type": "string" }, "granted": { "type": "boolean" }, "source": { "type": "string", "pattern": "^[a-z0-9_:.-]{1,64}$" } }, "additionalProperties": false })),
                    "responses": ok(201, "Recorded", json!({ "type": "object" }), &[400, 401, 404, 422])
                }
            },
            "/api/v1/platform/gpc": { "post": {
                "summary": "The platform forwards a signed-in user's Global Privacy Control signal",
                "description": "X-Platform-Token: the JWT the platform signed for the user (as for a platform sign-in); Sec-GPC: the user's header as it came. `Sec-GPC: 1` withdraws partner_sharing and personalised_recommendations in the consent ledger (source `gpc`); a repeated signal records nothing new; any other value or none changes nothing (`gpc: false`). 401 `invalid_platform_token` for a bad token; 422 `platform_not_configured` without a platform key.",
                "parameters": [
                    { "name": "X-Platform-Token", "in": "header", "required": true, "schema": { "type": "string" } },
                    { "name": "Sec-GPC", "in": "header", "required": false, "schema": { "type": "string" } }
                ],
                "responses": ok(200, "What the signal changed", json!({ "type": "object", "required": ["platform_user_id", "gpc", "withdrawn", "already_withdrawn", "kept"], "properties": { "platform_user_id": { "type": "string" }, "gpc": { "type": "boolean" }, "withdrawn": { "type": "array", "items": { "type": "string" } }, "already_withdrawn": { "type": "array", "items": { "type": "string" } }, "kept": { "type": "array", "items": { "type": "string" } } } }), &[401, 422])
            }},
            "/api/v1/staff/outbox/failed": { "get": {
                "summary": "Deliveries parked after their last attempt, with the last error (no message content)",
                "security": staff_auth,
                "responses": ok(200, "Failed deliveries", json!({ "type": "object", "properties": { "items": { "type": "array" } } }), &[401])
            }},
            "/api/v1/staff/outbox/{id}/retry": { "post": {
                "summary": "Put a failed delivery back in the queue (admins)",
                "security": staff_auth,
                "parameters": [path_param("id", "The outbox row id")],
                "responses": ok(200, "Queued again", json!({ "type": "object", "properties": { "status": { "const": "pending" } } }), &[401, 403, 404, 409])
            }},
            "/api/v1/requests/{reference}/verification": { "post": {
                "summary": "Enter the one-time code: verifies the request (if it waits) and opens a session",
                "parameters": [path_param("reference", "The request reference")],
                "requestBody": body(json!({ "type": "object", "required": ["code"], "properties": { "code": { "type": "string" } }, "additionalProperties": false })),
                "responses": ok(200, "A session and the request", json!({ "$ref": "#/components/schemas/SessionOpened" }), &[401, 422, 423])
            }},
            "/api/v1/requests/{reference}/verification/resend": { "post": {
                "summary": "Send a new code (at most one a minute); always 202, known reference or not",
                "parameters": [path_param("reference", "The request reference")],
                "responses": { "202": { "description": "Sent if the reference is known and the last code is older than the resend interval" } }
            }},
            "/api/v1/verification/magic-link": { "post": {
                "summary": "Use the magic link from the code email (once): verifies and opens a session",
                "requestBody": body(json!({ "type": "object", "required": ["token"], "properties": { "token": { "type": "string" } }, "additionalProperties": false })),
                "responses": ok(200, "A session and the request", json!({ "$ref": "#/components/schemas/SessionOpened" }), &[401, 422])
            }},
            "/api/v1/session": { "delete": {
                "summary": "Sign out: end the subject session",
                "security": subject_session,
                "responses": { "204": { "description": "Ended" }, "401": { "$ref": "#/components/responses/Error" } }
            }},
            "/api/v1/staff/login": { "post": {
                "summary": "Staff sign-in",
                "description": "An account with a second factor sends `totp_code` (401 `totp_required` without it, 401 `invalid_totp` for a wrong or reused one); an account an admin requires to set one up gets 403 `totp_enrolment_required` until it has done so in the console.",
                "requestBody": body(json!({ "type": "object", "required": ["email", "password"], "properties": { "email": { "type": "string" }, "password": { "type": "string" }, "totp_code": { "type": "string", "pattern": "^[0-9 ]{6,7}$" } }, "additionalProperties": false })),
                "responses": ok(200, "A bearer token", json!({ "type": "object", "properties": { "token": { "type": "string" }, "token_type": { "const": "Bearer" }, "expires_in": { "type": "integer" }, "staff": { "type": "object" } } }), &[400, 401, 403, 422, 429])
            }},
            "/api/v1/staff/requests": {
                "get": {
                    "summary": "The queue, filtered and sorted by due date",
                    "security": staff_auth,
                    "parameters": [
                        query("status", json!({ "enum": names(Status::ALL, Status::as_str) }), "Only this status"),
                        query("kind", json!({ "enum": names(RequestKind::ALL, RequestKind::as_str) }), "Only this kind"),
                        query("jurisdiction", json!({ "enum": names(Jurisdiction::ALL, Jurisdiction::as_str) }), "Only this jurisdiction"),
                        query("assignee", json!({ "type": "string" }), "A staff id, or `me`"),
                        query("due_before", json!({ "type": "string" }), "A date (YYYY-MM-DD) or an RFC 3339 instant"),
                        query("overdue", json!({ "type": "boolean" }), "Only open requests past their due date"),
                        query("duplicate", json!({ "type": "boolean" }), "Only requests flagged as duplicating another open request of the same kind by the same subject"),
                        query("sort", json!({ "enum": ["due", "-due", "received", "-received"] }), "Default: due (soonest first)"),
                        query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 200 }), "Page size (default 50)"),
                        query("offset", json!({ "type": "integer", "minimum": 0 }), "Page start")
                    ],
                    "responses": ok(200, "A page of requests and the total count", json!({ "type": "object", "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/StaffRequest" } }, "total": { "type": "integer" }, "limit": { "type": "integer" }, "offset": { "type": "integer" } } }), &[401, 422])
                },
                "post": {
                    "summary": "Log a request received by phone, letter, email or in person, with its real receipt time",
                    "security": staff_auth,
                    "requestBody": body(json!({ "allOf": [{ "$ref": "#/components/schemas/Submission" }], "required": ["received_at", "channel"] })),
                    "responses": ok(201, "Created", json!({ "$ref": "#/components/schemas/StaffRequest" }), &[400, 401, 403, 413, 422])
                }
            },
            "/api/v1/staff/requests/{id}": { "get": {
                "summary": "One request with its full timeline",
                "security": staff_auth,
                "parameters": [id],
                "responses": ok(200, "The request", json!({ "$ref": "#/components/schemas/StaffRequest" }), &[401, 404])
            }},
            "/api/v1/staff/requests/{id}/actions": { "post": {
                "summary": "Apply one command; 409 when the request's state does not allow it now (nothing changes)",
                "security": staff_auth,
                "parameters": [id],
                "requestBody": body(json!({ "$ref": "#/components/schemas/Command" })),
                "responses": ok(200, "The request after the command", json!({ "$ref": "#/components/schemas/StaffRequest" }), &[400, 401, 403, 404, 409, 422])
            }}
        },
        "components": {
            "securitySchemes": {
                "staffBearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                "subjectSession": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A subject session from /verification, /verification/magic-link or a platform sign-in" },
                "drpBearer": { "type": "http", "scheme": "bearer", "description": "The token a DRP agent got from its pair-wise key set-up (POST /drp/v1/agent/{agent_id})" },
                "opendsrBearer": { "type": "http", "scheme": "bearer", "description": "The token an admin gave an OpenDSR controller (rightsflow opendsr controller-add)" }
            },
            "responses": { "Error": { "description": "An error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Submission": {
                    "type": "object", "required": ["kind", "subject"],
                    "properties": {
                        "kind": { "enum": names(RequestKind::ALL, RequestKind::as_str) },
                        "jurisdiction": { "enum": names(Jurisdiction::ALL, Jurisdiction::as_str), "default": "cn" },
                        "locale": { "enum": ["zh-CN", "en"] },
                        "subject": { "type": "object", "properties": { "name": { "type": "string" }, "email": { "type": "string" }, "phone": { "type": "string" }, "birth_date": { "type": "string", "format": "date", "description": "Only to tell whether the subject is under 14 (then a guardian must act); not stored" } }, "description": "At least an email or a phone number" },
                        "representative": { "enum": ["guardian", "relative", "agent"], "description": "Someone acting for the subject; always needs a staff check" },
                        "details": { "type": "object", "description": "Per kind: access {categories, format}; correction {fields: [{field, current_value?, corrected_value}]}; deletion {scope: account|categories, categories?}; restriction {processing, ground, explanation?}; portability {categories, format: json|csv, recipient?, destination?}; consent_withdrawal {consents}; complaint {subject, account, related_reference?}" },
                        "received_at": { "type": "string", "format": "date-time", "description": "Staff only" },
                        "channel": { "enum": ["phone", "letter", "email", "in_person"], "description": "Staff only" }
                    }
                },
                "Result": { "type": "object", "properties": {
                    "id": { "type": "string" }, "file_name": { "type": "string" }, "content_type": { "type": "string" },
                    "size": { "type": "integer" }, "sha256": { "type": "string" },
                    "created_at": { "type": "string", "format": "date-time" }, "expires_at": { "type": "string", "format": "date-time" },
                    "downloads": { "type": "integer" }
                } },
                "Command": {
                    "type": "object", "required": ["command"],
                    "properties": {
                        "command": { "enum": COMMAND_NAMES },
                        "expected_version": { "type": "integer", "description": "Fail with 409 stale_version if the request changed since" },
                        "method": { "enum": ["staff_check"], "description": "verify: staff record a check of identity evidence (codes, links and platform tokens are recorded by the system)" },
                        "evidence": { "type": "string", "description": "verify: what evidence was checked (required)" },
                        "question": { "type": "string", "description": "request_info" },
                        "message": { "type": "string", "description": "subject_reply" },
                        "assignee": { "type": ["string", "null"], "description": "assign" },
                        "comment": { "type": "string", "description": "approve" },
                        "reason": { "description": "reject: a reason code; extend, withdraw: free text", "oneOf": [{ "enum": names(RejectionReason::ALL, RejectionReason::as_str) }, { "type": "string" }] },
                        "explanation": { "type": "string", "description": "reject" },
                        "summary": { "type": "string", "description": "complete" },
                        "text": { "type": "string", "description": "note" }
                    }
                },
                "Role": { "enum": names(Role::ALL, Role::as_str) }
            }
        }
    });
    for more in [
        fulfilment_paths,
        audit_paths(&staff_auth),
        super::drp::openapi_paths(),
        super::opendsr::openapi_paths(),
    ] {
        if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), more) {
            paths.extend(more);
        }
    }
    for more in [
        view_schemas(),
        super::drp::openapi_schemas(),
        super::opendsr::openapi_schemas(),
    ] {
        if let (Some(schemas), Value::Object(more)) =
            (doc["components"]["schemas"].as_object_mut(), more)
        {
            schemas.extend(more);
        }
    }
    complete_error_responses(&mut doc);
    doc
}

/// A string or null.
fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

/// An object with exactly these properties, all present (nullable ones say so).
fn exactly(properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
}

/// The views the API answers with (`web::views`), field for field, so schemathesis's
/// response check holds every answer to them. Kept apart: inside `spec`'s one `json!` they
/// would exceed the macro's recursion limit.
fn view_schemas() -> Value {
    let instant = json!({ "type": "string", "format": "date-time" });
    let text = json!({ "type": "string" });
    let labelled = |codes: Value| exactly(json!({ "code": codes, "label": { "type": "string" } }));
    let status = labelled(json!({ "enum": names(Status::ALL, Status::as_str) }));
    let kind = labelled(json!({ "enum": names(RequestKind::ALL, RequestKind::as_str) }));
    let jurisdiction = json!({ "enum": names(Jurisdiction::ALL, Jurisdiction::as_str) });
    let reason = nullable(labelled(
        json!({ "enum": names(RejectionReason::ALL, RejectionReason::as_str) }),
    ));
    let due = json!({ "$ref": "#/components/schemas/Due" });
    let actions = json!({ "type": "array", "items": { "enum": COMMAND_NAMES } });
    let subject_event = exactly(
        json!({ "at": instant, "event": text, "status": status, "message": nullable(text.clone()) }),
    );
    let staff_event = exactly(json!({
        "seq": { "type": "integer" }, "at": instant, "command": text,
        "actor": { "type": "object", "required": ["type"], "properties": { "type": { "enum": ["subject", "staff", "system"] } } },
        "from": nullable(status.clone()), "to": status, "details": {}
    }));
    let mut staff_request = exactly(json!({
        "id": text, "reference": text, "kind": kind, "jurisdiction": jurisdiction, "status": status,
        "locale": { "enum": ["zh-CN", "en"] }, "channel": { "enum": ["online", "phone", "letter", "email", "in_person"] },
        "subject": exactly(json!({ "name": nullable(text.clone()), "email": nullable(text.clone()), "phone": nullable(text.clone()) })),
        "details": { "type": "object" }, "received_at": instant, "verified_at": nullable(instant.clone()),
        "due": due, "acknowledge_by": due, "overdue": { "type": "boolean" }, "extended_at": nullable(instant.clone()),
        "assignee_id": nullable(text.clone()), "first_approval_by": nullable(text.clone()),
        "approved_at": nullable(instant.clone()), "fulfilment_started_at": nullable(instant.clone()),
        "closed_at": nullable(instant.clone()), "rejection_reason": reason, "duplicate_of": nullable(text.clone()),
        "verified_methods": { "type": "array", "items": { "enum": ["email_code", "sms_code", "magic_link", "platform_token", "staff_check"] } },
        "representative": nullable(json!({ "enum": ["guardian", "relative", "agent"] })),
        "platform_user_id": nullable(text.clone()), "version": { "type": "integer", "minimum": 1 },
        "allowed_actions": actions, "timeline": { "type": "array", "items": staff_event }
    }));
    // The queue's items leave the timeline out; one request's view has it.
    if let Some(required) = staff_request["required"].as_array_mut() {
        required.retain(|r| r != "timeline");
    }
    json!({
        "Due": nullable(exactly(json!({ "date": { "type": "string", "format": "date" }, "ends_at": instant, "warnings": { "type": "array", "items": exactly(json!({ "code": text, "message": text })) } }))),
        "SubjectRequest": exactly(json!({
            "reference": text, "kind": kind, "jurisdiction": jurisdiction, "status": status, "received_at": instant,
            "due": due, "rejection_reason": reason, "timeline": { "type": "array", "items": subject_event }, "allowed_actions": actions
        })),
        "StaffRequest": staff_request,
        "SessionOpened": exactly(json!({
            "session": exactly(json!({ "token": text, "expires_at": instant })),
            "request": { "$ref": "#/components/schemas/SubjectRequest" }
        })),
        "Submitted": exactly(json!({
            "reference": text, "status": status, "kind": kind, "jurisdiction": jurisdiction, "received_at": instant,
            "due": due, "acknowledge_by": due,
            "verification": { "type": "object", "required": ["status"], "properties": { "status": { "enum": ["code_sent", "code_not_sent", "verified", "staff_check_needed"] } } },
            "session": nullable(exactly(json!({ "token": text, "expires_at": instant }))),
            "links": exactly(json!({ "self": text }))
        })),
    })
}

/// The routes limited per client address (`web::limits`): over the limit, 429 `rate_limited`.
const RATE_LIMITED: [(&str, &str); 6] = [
    ("/api/v1/requests", "post"),
    ("/api/v1/requests/{reference}/verification", "post"),
    ("/api/v1/requests/{reference}/verification/resend", "post"),
    ("/api/v1/verification/magic-link", "post"),
    ("/api/v1/staff/login", "post"),
    ("/api/v1/fulfilment/tasks/{task}/callback", "post"),
];

/// Adds the errors that follow from an operation's shape rather than from its handler, so no
/// operation can forget one (schemathesis checks every answer against the document):
/// a JSON body can be malformed (400), too large (413), of another type (415) or the wrong
/// shape (422); a path parameter can name nothing or hold a NUL (404, `web::nul`); query
/// parameters can be invalid (422); the limited routes answer 429.
fn complete_error_responses(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in operations.iter_mut() {
            let mut codes = vec![];
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                codes.extend([400, 413, 415, 422]);
            }
            if path.contains('{') {
                codes.push(404);
            }
            let parameters = op["parameters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if parameters.iter().any(|p| p["in"] == "query") {
                codes.push(422);
            }
            if RATE_LIMITED.contains(&(path.as_str(), method.as_str())) {
                codes.push(429);
            }
            if let Some(responses) = op["responses"].as_object_mut() {
                for code in codes {
                    responses
                        .entry(code.to_string())
                        .or_insert_with(|| json!({ "$ref": "#/components/responses/Error" }));
                }
            }
        }
    }
}

/// Keeps COMMAND_NAMES honest: each name must parse as a command with a sample body.
/// The fulfilment routes (kept apart: one `json!` holding every path exceeds the macro's
/// recursion limit).
fn fulfilment_paths(staff_auth: &Value, id: &Value) -> Value {
    let (staff_auth, id) = (staff_auth.clone(), id.clone());
    json!({
            "/api/v1/fulfilment/tasks/{task}/callback": { "post": {
                "summary": "An HTTP data system reports the outcome of a task it accepted",
                "description": "Signed by the system: X-Rightsflow-Timestamp (Unix seconds, within 5 minutes) and X-Rightsflow-Signature (hex HMAC-SHA256 over \"{timestamp}.{body}\" with one of the system's secrets). Body: {\"status\":\"done\",\"result\":{…}} or {\"status\":\"refused\",\"reason\":\"…\"}. 401 `invalid_signature` / `stale_signature`, 409 `task_ended` (a replay), 422 `invalid_answer`.",
                "parameters": [path_param("task", "The task id (from the task's callback_url)")],
                "requestBody": body(json!({ "type": "object", "required": ["status"], "properties": { "status": { "enum": ["done", "refused"] }, "result": { "type": "object" }, "reason": { "type": "string" } }, "additionalProperties": false })),
                "responses": ok(200, "Recorded", json!({ "type": "object" }), &[401, 404, 409, 422, 503])
            }},
            "/api/v1/staff/tasks/{task}/done": { "post": {
                "summary": "Mark a manual (checklist) task done, saying what was done and, optionally, where the evidence is; not for auditors",
                "security": staff_auth,
                "parameters": [path_param("task", "The task id")],
                "requestBody": body(json!({ "type": "object", "required": ["what"], "properties": { "what": { "type": "string" }, "evidence": { "type": "string" } }, "additionalProperties": false })),
                "responses": ok(200, "Done", json!({ "type": "object" }), &[400, 401, 403, 404, 409, 422])
            }},
            "/api/v1/staff/requests/{id}/restriction/lift": { "post": {
                "summary": "Lift the restriction of a completed restriction request (reviewers and admins), saying why: the subject is told now, the systems act after fulfilment.restriction_notice_days (GDPR Art. 18(3))",
                "security": staff_auth,
                "parameters": [id],
                "requestBody": body(json!({ "type": "object", "required": ["reason"], "properties": { "reason": { "type": "string" } }, "additionalProperties": false })),
                "responses": ok(202, "Scheduled", json!({ "type": "object", "properties": { "lifts_at": { "type": "string", "format": "date-time" } } }), &[400, 401, 403, 404, 409, 422])
            }},
            "/api/v1/staff/tasks/{task}/waive": { "post": {
                "summary": "Record why an open task cannot be done (reviewers and admins); the subject is told when the request completes",
                "security": staff_auth,
                "parameters": [path_param("task", "The task id")],
                "requestBody": body(json!({ "type": "object", "required": ["reason"], "properties": { "reason": { "type": "string" } }, "additionalProperties": false })),
                "responses": ok(200, "Recorded", json!({ "type": "object" }), &[400, 401, 403, 404, 409, 422])
            }},
    })
}

/// The audit log, for auditors.
fn audit_paths(staff_auth: &Value) -> Value {
    let entry = json!({
        "type": "object",
        "required": ["seq", "at", "actor", "action", "request", "details", "hash"],
        "properties": {
            "seq": { "type": "integer" },
            "at": { "type": "string", "format": "date-time" },
            "actor": { "type": "object", "required": ["type", "id", "role", "email"], "properties": {
                "type": { "enum": ["staff", "subject", "system"] },
                "id": nullable(json!({ "type": "string" })),
                "role": nullable(json!({ "type": "string" })),
                "email": nullable(json!({ "type": "string" }))
            }},
            "action": { "type": "string" },
            "request": { "oneOf": [{ "type": "null" }, { "type": "object", "required": ["id", "reference"], "properties": {
                "id": { "type": "string" }, "reference": nullable(json!({ "type": "string" }))
            }}]},
            "details": {},
            "hash": { "type": "string" }
        }
    });
    json!({
        "/api/v1/audit/log": { "get": {
            "summary": "The audit log, newest first (auditors only): sign-ins, account and role changes, who looked at which request, exports, downloads, configuration changes",
            "security": staff_auth,
            "parameters": [
                query("request", json!({ "type": "string" }), "A request's reference (DSR-…)"),
                query("staff", json!({ "type": "string" }), "A staff account's id"),
                query("action", json!({ "type": "string" }), "An action, e.g. request.viewed"),
                query("page", json!({ "type": "integer", "minimum": 1, "maximum": crate::web::MAX_PAGE }), "Page (50 entries each)")
            ],
            "responses": ok(200, "Entries", json!({
                "type": "object",
                "required": ["items", "total", "page", "page_size"],
                "properties": {
                    "items": { "type": "array", "items": entry },
                    "total": { "type": "integer" },
                    "page": { "type": "integer" },
                    "page_size": { "type": "integer" }
                }
            }), &[401, 403])
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Command;

    #[test]
    fn every_operation_documents_the_errors_its_shape_allows() {
        let doc = spec();
        for (path, method) in RATE_LIMITED {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is not documented");
            assert!(op["responses"].get("429").is_some(), "{method} {path}");
        }
        let mut bodies = 0;
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let documented = |code: &str| op["responses"].get(code).is_some();
                if op["requestBody"]["content"]
                    .get("application/json")
                    .is_some()
                {
                    bodies += 1;
                    for code in ["400", "413", "415", "422"] {
                        assert!(documented(code), "{method} {path} lacks {code}");
                    }
                }
                if path.contains('{') {
                    assert!(documented("404"), "{method} {path} lacks 404");
                }
            }
        }
        assert!(bodies >= 10, "only {bodies} operations with a JSON body");
    }

    #[test]
    fn every_documented_command_is_a_real_command() {
        for name in COMMAND_NAMES {
            let fields = match name {
                "verify" => json!({ "method": "staff_check", "evidence": "核对了身份证原件" }),
                "request_info" => json!({ "question": "q" }),
                "subject_reply" => json!({ "message": "m" }),
                "assign" => json!({ "assignee": null }),
                "reject" => json!({ "reason": "no_data_held", "explanation": "e" }),
                "extend" => json!({ "reason": "r" }),
                "complete" => json!({ "summary": "s" }),
                "note" => json!({ "text": "t" }),
                _ => json!({}),
            };
            let mut sample = fields;
            sample["command"] = json!(name);
            let parsed: Result<Command, _> = serde_json::from_value(sample);
            assert_eq!(parsed.map(|c| c.name()).ok(), Some(name));
        }
    }
}

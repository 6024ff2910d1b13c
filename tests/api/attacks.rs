//! The attack battery (#8): hostile input, forged and misused credentials, traversal and CSRF.
//! Every attack must be answered with the right 4xx in the one error shape and must change
//! nothing: the rows of every table an attack could reach are read before and after it and
//! compared whole.

use std::collections::BTreeMap;

use base64::Engine;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use reqwest::{RequestBuilder, Response, StatusCode};
use rightsflow::config::Config;
use rightsflow::domain::Role;
use serde_json::{json, Value};

use crate::console::{cookie_of, Console};
use crate::helpers::{error_code, Backend, Submitted, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::on_both_backends;

/// The tables an attack could change: the requests and their history, what was queued to be
/// sent, identity challenges and sessions (subject and staff), consents and fulfilment tasks.
const TABLES: [&str; 8] = [
    "requests",
    "request_events",
    "outbox",
    "verification_challenges",
    "subject_sessions",
    "staff_sessions",
    "consent_events",
    "fulfilment_tasks",
];

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// Every row of every table in `TABLES`, as text, sorted: two snapshots are equal only if no
/// row was added, removed or changed in any column.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot(BTreeMap<&'static str, Vec<String>>);

fn lines(rows: Vec<Line>) -> Vec<String> {
    let mut rows: Vec<String> = rows.into_iter().map(|l| l.line).collect();
    rows.sort();
    rows
}

fn read_snapshot(backend: Backend, url: &str) -> Snapshot {
    let mut tables = BTreeMap::new();
    match backend {
        Backend::Postgres => {
            let mut conn = PgConnection::establish(url).unwrap();
            for table in TABLES {
                let rows = diesel::sql_query(format!("SELECT t::text AS line FROM {table} t"))
                    .load::<Line>(&mut conn)
                    .unwrap();
                tables.insert(table, lines(rows));
            }
        }
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let mut conn = SqliteConnection::establish(path).unwrap();
            for table in TABLES {
                // SQLite has no row-to-text; quote() renders any value (BLOBs included).
                let columns = diesel::sql_query(format!(
                    "SELECT name AS line FROM pragma_table_info('{table}')"
                ))
                .load::<Line>(&mut conn)
                .unwrap();
                let row = columns
                    .iter()
                    .map(|c| format!("quote(\"{}\")", c.line))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                let rows = diesel::sql_query(format!("SELECT {row} AS line FROM {table}"))
                    .load::<Line>(&mut conn)
                    .unwrap();
                tables.insert(table, lines(rows));
            }
        }
    }
    Snapshot(tables)
}

/// Outbox rows the worker has still to deliver (their state changes under our feet).
fn in_flight(snapshot: &Snapshot) -> usize {
    snapshot.0["outbox"]
        .iter()
        .filter(|row| row.contains("pending") || row.contains("processing"))
        .count()
}

/// A snapshot once the outbox worker has delivered what earlier steps queued: two reads in a
/// row agree and nothing is in flight.
async fn settled(app: &TestApp) -> Snapshot {
    let read = || {
        let (backend, url) = (app.backend, app.database_url());
        tokio::task::spawn_blocking(move || read_snapshot(backend, &url))
    };
    let mut last = read().await.unwrap();
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = read().await.unwrap();
        if now == last && in_flight(&now) == 0 {
            return now;
        }
        last = now;
    }
    panic!(
        "the outbox did not settle: {} rows in flight",
        in_flight(&last)
    );
}

/// Fails naming each table whose rows differ, with the first differing row.
async fn assert_unchanged(app: &TestApp, before: &Snapshot, attack: &str) {
    let after = settled(app).await;
    let changed: Vec<String> = TABLES
        .iter()
        .filter(|t| before.0[*t] != after.0[*t])
        .map(|t| {
            let (b, a) = (&before.0[*t], &after.0[*t]);
            let first = a.iter().find(|row| !b.contains(row));
            format!("{t}: {} rows → {}, e.g. {first:?}", b.len(), a.len())
        })
        .collect();
    assert!(
        changed.is_empty(),
        "{attack} changed the database: {changed:?}"
    );
}

/// The answer must be `status` with error `code` and a message in the language asked for.
async fn refused(res: Response, status: StatusCode, code: &str, what: &str) {
    let got_status = res.status();
    let body = res.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!("{what}: {got_status} with a body that is not JSON ({e}): {body}")
    });
    assert_eq!(
        (got_status, parsed["error"]["code"].as_str()),
        (status, Some(code)),
        "{what}: {body}"
    );
    // The battery sends no Accept-Language: the message is in Chinese, the default.
    let message = parsed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{what}: the message is not in the caller's language: {message}"
    );
}

/// Well-known SQL injection payloads: quote breaking, comments, stacked statements, UNION,
/// tautologies, time-based probes, and PostgreSQL / SQLite specifics.
const INJECTIONS: [&str; 10] = [
    "' OR '1'='1",
    "'; DROP TABLE requests; --",
    "\" OR \"\"=\"",
    "1; DELETE FROM request_events",
    "' UNION SELECT id, email, password_hash FROM staff_users --",
    "admin@rightsflow.test'--",
    "' OR 1=1; UPDATE requests SET status='completed' --",
    "'||(SELECT sqlite_version())||'",
    "1' AND pg_sleep(5) IS NULL --",
    "%' OR 'x' LIKE '%",
];

/// An access request its subject has verified, with what the attacks need of it.
struct Verified {
    admin: String,
    sub: Submitted,
    session: String,
    id: String,
}

async fn verified_access(app: &TestApp) -> Verified {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    Verified {
        admin,
        sub,
        session,
        id,
    }
}

fn raise_limits(config: &mut Config) {
    // The battery submits far more than a person would; the limits have tests of their own.
    config.rate_limits.requests_per_ip = 1_000_000;
    config.rate_limits.submissions_per_ip = 10_000;
    config.rate_limits.code_checks_per_ip = 10_000;
    config.rate_limits.code_checks_per_reference = 10_000;
    config.rate_limits.staff_logins_per_ip = 10_000;
}

/// A valid access submission with `pointer` (a JSON pointer) replaced by `value`.
fn submission_with(pointer: &str, value: &str) -> Value {
    let mut body = json!({
        "kind": "access",
        "jurisdiction": "cn",
        "locale": "zh-CN",
        "representative": "guardian",
        "subject": { "name": "李雷", "email": "li.lei@example.com", "phone": "+8613800138000", "birth_date": "2015-05-01" },
        "details": { "categories": ["orders"], "format": "json" },
    });
    *body.pointer_mut(pointer).unwrap() = json!(value);
    body
}

async fn sql_injection_in_every_field_and_query_parameter_is_inert(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let before = settled(&app).await;

    // Fields with a closed set of values or a format: every payload is refused by its check.
    let checked = [
        ("/kind", "unknown_kind"),
        ("/jurisdiction", "unknown_jurisdiction"),
        ("/locale", "unknown_locale"),
        ("/representative", "invalid_representative"),
        ("/subject/email", "invalid_contact"),
        ("/subject/phone", "invalid_contact"),
        ("/subject/birth_date", "invalid_body"),
        ("/details/categories/0", "invalid_details"),
        ("/details/format", "invalid_details"),
    ];
    for (pointer, code) in checked {
        for payload in INJECTIONS {
            let res = app
                .post_json("/api/v1/requests", &submission_with(pointer, payload), None)
                .await;
            let what = format!("{pointer} = {payload}");
            refused(res, StatusCode::UNPROCESSABLE_ENTITY, code, &what).await;
        }
    }
    // Staff logging a request: the same fields plus channel and receipt time.
    for (pointer, code) in [
        ("/channel", "invalid_channel"),
        ("/received_at", "invalid_body"),
    ] {
        let mut body = submission_with("/kind", "access");
        body["channel"] = json!("phone");
        body["received_at"] = json!("2026-11-01T08:00:00Z");
        *body.pointer_mut(pointer).unwrap() = json!(INJECTIONS[0]);
        let res = app
            .post_json("/api/v1/staff/requests", &body, Some(&admin))
            .await;
        refused(res, StatusCode::UNPROCESSABLE_ENTITY, code, pointer).await;
    }
    // Queue filters: each refused by name; the staff id filter matches nobody.
    for param in [
        "status",
        "kind",
        "jurisdiction",
        "due_before",
        "sort",
        "limit",
        "offset",
        "overdue",
    ] {
        for payload in INJECTIONS {
            let query = format!("{param}={}", urlencode(payload));
            let res = app
                .get_with(&format!("/api/v1/staff/requests?{query}"), &admin)
                .await;
            refused(
                res,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_query",
                &query,
            )
            .await;
        }
    }
    for payload in INJECTIONS {
        let list = app
            .list(&admin, &format!("assignee={}", urlencode(payload)))
            .await;
        assert_eq!(list["total"], 0, "assignee={payload} matched {list}");
    }
    // Ids and references in paths; credentials at sign-in.
    for payload in INJECTIONS {
        let path = urlencode(payload);
        let res = app
            .get_with(&format!("/api/v1/staff/requests/{path}"), &admin)
            .await;
        refused(res, StatusCode::NOT_FOUND, "not_found", payload).await;
        let res = app
            .act(&admin, &path, json!({ "command": "note", "text": "x" }))
            .await;
        refused(res, StatusCode::NOT_FOUND, "not_found", payload).await;
        let res = app.subject_get(&path, "session").await;
        refused(res, StatusCode::UNAUTHORIZED, "unauthorized", payload).await;
        let res = app.login(payload, payload).await;
        refused(
            res,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            payload,
        )
        .await;
        let res = app.login(ADMIN_EMAIL, payload).await;
        refused(
            res,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            payload,
        )
        .await;
        let res = app
            .post_json(
                &format!("/api/v1/requests/{path}/verification"),
                &json!({ "code": payload }),
                None,
            )
            .await;
        refused(res, StatusCode::UNAUTHORIZED, "invalid_code", payload).await;
    }
    // The console's free-text search finds nothing for any payload (and does not fail).
    let console = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for payload in INJECTIONS {
        let res = console
            .get(&format!("/console/queue?q={}", urlencode(payload)))
            .await;
        // The search takes a reference, an email address or a phone number, exactly.
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "console search {payload}"
        );
        let html = res.text().await.unwrap();
        assert!(
            !html.contains(&sub.reference),
            "console search {payload} matched"
        );
    }
    // The console's sign-in was the one write; it is not an attack, so it is taken out.
    let before = Snapshot(before.0);
    let mut after = settled(&app).await;
    after
        .0
        .insert("staff_sessions", before.0["staff_sessions"].clone());
    assert_eq!(before, after, "an injection changed the database");

    // Free-text fields take any text: each payload is stored as sent, as one new request, and
    // nothing else changes.
    let payload = INJECTIONS[6];
    let free_text = [
        ("access", "/subject/name"),
        ("complaint", "/details/subject"),
        ("complaint", "/details/account"),
        ("correction", "/details/fields/0/field"),
        ("correction", "/details/fields/0/current_value"),
        ("correction", "/details/fields/0/corrected_value"),
        ("restriction", "/details/processing"),
    ];
    for (kind, pointer) in free_text {
        let mut body = json!({
            "kind": kind,
            "subject": { "name": "李雷", "email": "li.lei@example.com" },
            "details": crate::helpers::details_for(kind),
        });
        *body.pointer_mut(pointer).unwrap() = json!(payload);
        let res = app.post_json("/api/v1/requests", &body, None).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{kind} {pointer}");
        let stored: Value = res.json().await.unwrap();
        let view = app
            .find(&admin, stored["reference"].as_str().unwrap())
            .await;
        assert_eq!(view.pointer(pointer).unwrap(), payload, "{kind} {pointer}");
        assert_eq!(view["status"]["code"], "awaiting_verification");
    }
    let first = app.find(&admin, &sub.reference).await;
    assert_eq!(
        first["status"]["code"], "in_review",
        "the earlier request kept its state"
    );
    let total = app.list(&admin, "limit=200").await["total"].clone();
    assert_eq!(total, 1 + free_text.len());
}
on_both_backends!(
    sql_injection_in_every_field_and_query_parameter_is_inert,
    super::raise_limits
);

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A hostile body: what it is, its Content-Type, its bytes, and the answer it must get.
type Hostile<'a> = (&'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str);

/// A raw POST with the given Content-Type (or none) and body.
fn raw(app: &TestApp, path: &str, content_type: Option<&str>, body: Vec<u8>) -> RequestBuilder {
    let mut req = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    req
}

async fn oversize_nested_invalid_utf8_and_mistyped_bodies_are_refused(app: TestApp) {
    let Verified {
        admin,
        sub,
        session,
        id,
    } = verified_access(&app).await;
    let before = settled(&app).await;
    let reference = &sub.reference;
    // Every JSON route, with the credential it needs.
    let routes: Vec<(String, Option<&str>)> = vec![
        ("/api/v1/requests".into(), None),
        (format!("/api/v1/requests/{reference}/verification"), None),
        ("/api/v1/verification/magic-link".into(), None),
        ("/api/v1/staff/login".into(), None),
        (
            format!("/api/v1/requests/{reference}/reply"),
            Some(&session),
        ),
        (format!("/api/v1/staff/requests/{id}/actions"), Some(&admin)),
        ("/api/v1/staff/requests".into(), Some(&admin)),
        (
            format!("/api/v1/staff/requests/{id}/restriction/lift"),
            Some(&admin),
        ),
    ];
    let limit = 65_536;
    let oversize = {
        let mut b = b"{\"kind\":\"access\",\"pad\":\"".to_vec();
        b.resize(limit + 1, b'a');
        b.extend_from_slice(b"\"}");
        b
    };
    let nested_arrays = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)).into_bytes();
    let nested_objects = format!(
        "{{\"kind\":\"access\",\"details\":{}1{}}}",
        "{\"a\":".repeat(5_000),
        "}".repeat(5_000)
    )
    .into_bytes();
    // First in the body, so no route refuses the body for its shape before reading it.
    let invalid_utf8 = b"{\"\xff\xfe\xc3\x28\":1}".to_vec();
    let json = Some("application/json");
    // Nesting deeper than the parser goes is not JSON we read (400), unless the route's body
    // is refused for its shape first (422).
    let cases: [Hostile; 7] = [
        (
            "oversize",
            json,
            oversize,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "nested arrays",
            json,
            nested_arrays,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "nested objects",
            json,
            nested_objects,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "invalid UTF-8",
            json,
            invalid_utf8,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "text/plain",
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "form",
            Some("application/x-www-form-urlencoded"),
            b"kind=access".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "no type",
            None,
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (path, token) in &routes {
        for (what, ct, body, status, code) in &cases {
            let mut req = raw(&app, path, *ct, body.clone());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            refused_hostile(res, what, *status, code, path).await;
        }
    }
    // The withdraw body is optional, but one that is sent is checked the same way.
    for (what, ct, body, status, code) in &cases[..4] {
        let res = raw(
            &app,
            &format!("/api/v1/requests/{reference}/withdraw"),
            *ct,
            body.clone(),
        )
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
        refused_hostile(res, what, *status, code, "withdraw").await;
    }
    // The fulfilment callback reads raw bytes: not UTF-8 is refused before anything else.
    let res = raw(
        &app,
        "/api/v1/fulfilment/tasks/t/callback",
        json,
        vec![0xff, 0xfe],
    )
    .send()
    .await
    .unwrap();
    refused(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_answer",
        "callback not UTF-8",
    )
    .await;
    assert_unchanged(&app, &before, "hostile bodies").await;
}
on_both_backends!(
    oversize_nested_invalid_utf8_and_mistyped_bodies_are_refused,
    super::raise_limits
);

/// `refused`, except that nesting deeper than the parser goes may also be refused for its
/// shape (422) by a route whose body is not an arbitrary JSON value: both are right, as long
/// as it is one of them.
async fn refused_hostile(res: Response, what: &str, status: StatusCode, code: &str, path: &str) {
    let (status, code) = match res.status() {
        StatusCode::UNPROCESSABLE_ENTITY if what.starts_with("nested") => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        }
        _ => (status, code),
    };
    refused(res, status, code, &format!("{what} to {path}")).await;
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT with any header and claims, signed with HS256 under `key` (or unsigned when `None`).
fn jwt(header: &Value, claims: &Value, key: Option<&[u8]>) -> String {
    use hmac::{Hmac, Mac};
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match key {
        Some(key) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            mac.update(signing_input.as_bytes());
            b64(&mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// The claims of a token, read without checking it (to build altered copies).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

const TEST_SECRET: &[u8] = crate::helpers::JWT_SECRET.as_bytes();

/// Copies of a real token that must all be refused: another key's signature, `alg: none`,
/// expired (properly signed), altered claims under the old signature, HS512, and garbage.
fn forgeries(token: &str, escalate: impl Fn(&mut Value)) -> Vec<(&'static str, String)> {
    let hs256 = json!({ "typ": "JWT", "alg": "HS256" });
    let claims = claims_of(token);
    let mut escalated = claims.clone();
    escalate(&mut escalated);
    let mut expired = claims.clone();
    expired["iat"] = json!(1_700_000_000);
    expired["exp"] = json!(1_700_000_600);
    let signature = token.rsplit('.').next().unwrap();
    let altered = jwt(&hs256, &escalated, None) + signature;
    vec![
        (
            "another key",
            jwt(
                &hs256,
                &escalated,
                Some(b"not the server's secret, but 32+ bytes long"),
            ),
        ),
        (
            "alg none",
            jwt(&json!({ "typ": "JWT", "alg": "none" }), &escalated, None),
        ),
        (
            "alg none, no dot",
            jwt(&json!({ "alg": "none" }), &escalated, None)
                .trim_end_matches('.')
                .to_owned(),
        ),
        ("expired", jwt(&hs256, &expired, Some(TEST_SECRET))),
        ("altered claims", altered),
        ("HS512", {
            let h = json!({ "typ": "JWT", "alg": "HS512" });
            jwt(&h, &escalated, Some(TEST_SECRET))
        }),
        ("garbage", "eyJhbGciOiJIUzI1NiJ9.e30".into()),
    ]
}

async fn forged_expired_and_unsigned_tokens_are_refused(app: TestApp) {
    let Verified {
        admin,
        sub,
        session,
        id,
    } = verified_access(&app).await;
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let before = settled(&app).await;

    // Staff: an agent's token made into an admin's, or re-signed, never acts.
    let note = json!({ "command": "note", "text": "forged" });
    for (what, token) in forgeries(&agent, |c| c["role"] = json!("admin")) {
        let res = app.act(&token, &id, note.clone()).await;
        refused(res, StatusCode::UNAUTHORIZED, "unauthorized", what).await;
        let res = app.get_with("/api/v1/staff/requests", &token).await;
        refused(res, StatusCode::UNAUTHORIZED, "unauthorized", what).await;
    }
    // Subjects: a session pointed at the request by a forged token never opens it.
    for (what, token) in forgeries(&session, |c| c["sid"] = json!("another-session")) {
        let res = app.subject_get(&sub.reference, &token).await;
        refused(res, StatusCode::UNAUTHORIZED, "unauthorized", what).await;
        let res = app
            .subject_post(&sub.reference, "withdraw", &token, &json!({}))
            .await;
        refused(res, StatusCode::UNAUTHORIZED, "unauthorized", what).await;
        let res = app
            .post_json(
                "/api/v1/verification/magic-link",
                &json!({ "token": token }),
                None,
            )
            .await;
        refused(res, StatusCode::UNAUTHORIZED, "invalid_link", what).await;
    }
    // In the caller's language when it asks for English.
    let res = app
        .client
        .get(app.url("/api/v1/staff/requests"))
        .bearer_auth(&forgeries(&agent, |_| {})[1].1)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({ "code": "unauthorized", "message": "Authentication required" })
    );
    // One kind of token never passes for another: audiences are checked.
    let res = app.get_with("/api/v1/staff/requests", &session).await;
    refused(
        res,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a session as a staff token",
    )
    .await;
    let res = app.subject_get(&sub.reference, &admin).await;
    refused(
        res,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a staff token as a session",
    )
    .await;
    assert_unchanged(&app, &before, "forged tokens").await;

    // Replayed: a session after its sign-out (a used magic link has a test of its own).
    let res = app
        .client
        .delete(app.url("/api/v1/session"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let before = settled(&app).await;
    let res = app.subject_get(&sub.reference, &session).await;
    refused(
        res,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a session after sign-out",
    )
    .await;
    let res = app
        .subject_post(&sub.reference, "withdraw", &session, &json!({}))
        .await;
    refused(
        res,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a withdrawal after sign-out",
    )
    .await;
    assert_unchanged(&app, &before, "a replayed session").await;
}
on_both_backends!(forged_expired_and_unsigned_tokens_are_refused);

async fn a_used_magic_link_is_refused_when_replayed(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    let link = app
        .wait_mail(&sub.reference, |text| {
            text.split("token=").nth(1).map(|t| {
                t.split(|c: char| c.is_whitespace() || c == '"' || c == '&')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .await;
    let body = json!({ "token": link });
    let res = app
        .post_json("/api/v1/verification/magic-link", &body, None)
        .await;
    assert_eq!(res.status(), StatusCode::OK, "the link works once");
    let before = settled(&app).await;
    let res = app
        .post_json("/api/v1/verification/magic-link", &body, None)
        .await;
    refused(
        res,
        StatusCode::UNAUTHORIZED,
        "invalid_link",
        "a replayed link",
    )
    .await;
    assert_unchanged(&app, &before, "a replayed magic link").await;
}
on_both_backends!(a_used_magic_link_is_refused_when_replayed);

async fn one_subjects_session_never_opens_another_subjects_request(app: TestApp) {
    let admin = app.admin_token().await;
    let mine = app.submit("access", "cn").await;
    let my_session = app.verify_by_code(&mine.reference).await;
    let theirs = app.submit("access", "cn").await;
    app.verify_by_code(&theirs.reference).await;
    let their_id = app.id_of(&admin, &theirs.reference).await;
    app.act_ok(
        &admin,
        &their_id,
        json!({ "command": "request_info", "question": "订单号？" }),
    )
    .await;
    let before = settled(&app).await;

    let r = &theirs.reference;
    for path in [
        format!("/api/v1/requests/{r}"),
        format!("/api/v1/requests/{r}/messages"),
        format!("/api/v1/requests/{r}/results"),
        format!("/api/v1/requests/{r}/results/{their_id}"),
    ] {
        let res = app.get_with(&path, &my_session).await;
        refused(res, StatusCode::UNAUTHORIZED, "unauthorized", &path).await;
    }
    for (action, body) in [
        ("withdraw", json!({ "reason": "not mine" })),
        ("reply", json!({ "message": "not mine" })),
    ] {
        let res = app.subject_post(r, action, &my_session, &body).await;
        refused(res, StatusCode::UNAUTHORIZED, "unauthorized", action).await;
    }
    // The portal, with the session as its cookie: the page and its forms are closed too.
    let res = app
        .client
        .get(app.url(&format!("/requests/{r}")))
        .header("Cookie", format!("rf_session={my_session}"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let html = res.text().await.unwrap();
    // It offers to find the request (a new code to its own contact), nothing of it.
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>查找我的请求</h1>"), "{html}");
    assert!(
        !html.contains("订单号？"),
        "the portal showed another subject's request"
    );
    assert_unchanged(&app, &before, "another subject's session").await;
}
on_both_backends!(one_subjects_session_never_opens_another_subjects_request);

async fn staff_routes_refuse_subject_sessions_and_lower_roles(app: TestApp) {
    let Verified {
        sub: _,
        session,
        id,
        ..
    } = verified_access(&app).await;
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let (_, auditor) = app.staff("auditor", Role::Auditor).await;
    let outbox_id = {
        let (db, id) = (app.services.db().clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            rightsflow::storage::outbox::for_request(&mut db.conn().unwrap(), &id).unwrap()[0]
                .id
                .clone()
        })
        .await
        .unwrap()
    };
    let before = settled(&app).await;

    let logged = {
        let mut b = submission_with("/kind", "access");
        b["channel"] = json!("phone");
        b["received_at"] = json!("2026-11-01T08:00:00Z");
        b.as_object_mut().unwrap().remove("representative");
        b["subject"].as_object_mut().unwrap().remove("birth_date");
        b
    };
    let staff_calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/v1/staff/requests".into(), None),
        ("GET", format!("/api/v1/staff/requests/{id}"), None),
        ("GET", "/api/v1/staff/outbox/failed".into(), None),
        (
            "POST",
            "/api/v1/staff/requests".into(),
            Some(logged.clone()),
        ),
        (
            "POST",
            format!("/api/v1/staff/requests/{id}/actions"),
            Some(json!({ "command": "note", "text": "x" })),
        ),
        (
            "POST",
            format!("/api/v1/staff/outbox/{outbox_id}/retry"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/api/v1/staff/requests/{id}/restriction/lift"),
            Some(json!({ "reason": "x" })),
        ),
        (
            "POST",
            "/api/v1/staff/tasks/t/waive".into(),
            Some(json!({ "reason": "x" })),
        ),
        (
            "POST",
            "/api/v1/staff/tasks/t/done".into(),
            Some(json!({ "what": "x" })),
        ),
    ];
    for (method, path, body) in &staff_calls {
        let req = match (method, body) {
            (&"GET", _) => app.client.get(app.url(path)),
            (_, Some(b)) => app.client.post(app.url(path)).json(b),
            (_, None) => app.client.post(app.url(path)),
        };
        let res = req.bearer_auth(&session).send().await.unwrap();
        refused(
            res,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &format!("subject on {path}"),
        )
        .await;
    }

    // Each lower role, on what only a higher one may do.
    let forbidden: Vec<(&str, &str, String, Value)> = vec![
        (
            "agent",
            &agent,
            format!("/api/v1/staff/requests/{id}/actions"),
            json!({ "command": "reject", "reason": "no_data_held", "explanation": "x" }),
        ),
        (
            "agent",
            &agent,
            format!("/api/v1/staff/requests/{id}/actions"),
            json!({ "command": "approve" }),
        ),
        (
            "auditor",
            &auditor,
            format!("/api/v1/staff/requests/{id}/actions"),
            json!({ "command": "note", "text": "x" }),
        ),
        (
            "auditor",
            &auditor,
            format!("/api/v1/staff/requests/{id}/actions"),
            json!({ "command": "assign", "assignee": null }),
        ),
        ("auditor", &auditor, "/api/v1/staff/requests".into(), logged),
        (
            "agent",
            &agent,
            format!("/api/v1/staff/outbox/{outbox_id}/retry"),
            json!({}),
        ),
        (
            "reviewer",
            &reviewer,
            format!("/api/v1/staff/outbox/{outbox_id}/retry"),
            json!({}),
        ),
        (
            "auditor",
            &auditor,
            format!("/api/v1/staff/outbox/{outbox_id}/retry"),
            json!({}),
        ),
        (
            "agent",
            &agent,
            format!("/api/v1/staff/requests/{id}/restriction/lift"),
            json!({ "reason": "x" }),
        ),
        (
            "auditor",
            &auditor,
            format!("/api/v1/staff/requests/{id}/restriction/lift"),
            json!({ "reason": "x" }),
        ),
        (
            "agent",
            &agent,
            "/api/v1/staff/tasks/t/waive".into(),
            json!({ "reason": "x" }),
        ),
        (
            "auditor",
            &auditor,
            "/api/v1/staff/tasks/t/waive".into(),
            json!({ "reason": "x" }),
        ),
    ];
    for (role, token, path, body) in &forbidden {
        let res = app.post_json(path, body, Some(token)).await;
        let what = format!("{role} on {path} with {body}");
        refused(res, StatusCode::FORBIDDEN, "not_permitted", &what).await;
    }
    // The console: staff accounts are for admins; agents do not decide; auditors change
    // nothing.
    for role in ["agent", "reviewer", "auditor"] {
        let email = format!("{role}@rightsflow.test");
        let console = Console::sign_in(&app, &email, crate::helpers::STAFF_PASSWORD).await;
        let res = console
            .post(
                "/console/staff",
                &[("email", "new@rightsflow.test"), ("role", "admin")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{role} added an admin");
        let (command, text) = match role {
            "agent" => ("approve", ""),
            _ => ("note", "x"),
        };
        if role != "reviewer" {
            let fields = [("command", command), ("text", text)];
            let res = console
                .post(&format!("/console/requests/{id}/actions"), &fields)
                .await;
            assert_eq!(
                res.status(),
                StatusCode::FORBIDDEN,
                "{role}: {command} in the console"
            );
        }
    }
    // The console sign-ins are the only writes; they are not what is tested here.
    let mut after = settled(&app).await;
    after
        .0
        .insert("staff_sessions", before.0["staff_sessions"].clone());
    assert_eq!(before, after, "a refused call changed the database");
}
on_both_backends!(staff_routes_refuse_subject_sessions_and_lower_roles);

/// Staff attach a small CSV result named `name` (as it stands in the query string).
async fn attach_csv(app: &TestApp, token: &str, id: &str, name: &str) -> Response {
    app.client
        .post(app.url(&format!(
            "/api/v1/staff/requests/{id}/results?file_name={name}"
        )))
        .bearer_auth(token)
        .header("Content-Type", "text/csv")
        .body("a,b\n")
        .send()
        .await
        .unwrap()
}

async fn path_traversal_in_result_names_and_ids_is_refused(app: TestApp) {
    let Verified {
        admin,
        sub,
        session,
        id,
    } = verified_access(&app).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    let before = settled(&app).await;

    for name in [
        "..%2F..%2Fjwt-secret",
        "../../jwt-secret",
        "..",
        ".htaccess",
        "a%2Fb.csv",
        "a%5Cb.csv",
        "C%3A%5Cwindows%5Cwin.ini",
        "x%22%3B%20filename%3D%22evil.html",
        "report.csv%0D%0ASet-Cookie%3A%20a%3Db",
        "%E2%80%AEfdp.exe",
    ] {
        let res = attach_csv(&app, &admin, &id, name).await;
        refused(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_file_name",
            name,
        )
        .await;
    }
    // A NUL is refused before the name is looked at (see `nul_characters_are_refused…`).
    let res = attach_csv(&app, &admin, &id, "a.csv%00.html").await;
    refused(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        "a NUL in the name",
    )
    .await;
    let r = &sub.reference;
    for result in [
        "..%2F..%2Fjwt-secret",
        "%2E%2E%2F%2E%2E%2Fdata-key",
        "..%5C..%5Cjwt-secret",
        "%2Fetc%2Fpasswd",
        "x%00",
    ] {
        let path = format!("/api/v1/requests/{r}/results/{result}");
        let res = app.get_with(&path, &session).await;
        refused(res, StatusCode::NOT_FOUND, "not_found", &path).await;
        let path = format!("/requests/{r}/results/{result}");
        let res = app
            .client
            .get(app.url(&path))
            .header("Cookie", format!("rf_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for file in [
        "..%2Fjwt-secret.html",
        "..%2F..%2Frightsflow.db",
        "%2E%2E%2Fdata-key",
    ] {
        let res = app
            .client
            .get(app.url(&format!("/dev/mail/{file}")))
            .send()
            .await
            .unwrap();
        refused(res, StatusCode::NOT_FOUND, "not_found", file).await;
    }
    let res = app
        .client
        .get(app.url("/static/..%2F..%2FCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_unchanged(&app, &before, "path traversal").await;
}
on_both_backends!(path_traversal_in_result_names_and_ids_is_refused);

/// The portal's and the console's form POSTs, each sent without its token, with a wrong one,
/// and with a token but no cookie to match.
async fn forms_without_a_matching_csrf_token_are_refused(app: TestApp) {
    let Verified {
        admin,
        sub,
        session,
        id,
    } = verified_access(&app).await;
    app.act_ok(
        &admin,
        &id,
        json!({ "command": "request_info", "question": "订单号？" }),
    )
    .await;
    let signed_in = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let before = settled(&app).await;
    let r = &sub.reference;

    let page = app.client.get(app.url("/")).send().await.unwrap();
    let csrf = cookie_of(&page, "rf_csrf").unwrap();
    let portal: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/rights/access".into(),
            vec![
                ("categories", "orders"),
                ("email", "csrf@subjects.test"),
                ("jurisdiction", "cn"),
            ],
        ),
        (
            "/find".into(),
            vec![("reference", r), ("contact", "li.lei@example.com")],
        ),
        (format!("/requests/{r}/verify"), vec![("code", "123456")]),
        (format!("/requests/{r}/resend"), vec![]),
        (format!("/requests/{r}/reply"), vec![("message", "forged")]),
        (
            format!("/requests/{r}/withdraw"),
            vec![("reason", "forged")],
        ),
        ("/sign-out".into(), vec![]),
        ("/verify".into(), vec![("token", "x")]),
    ];
    let forged = "A".repeat(43);
    for (path, fields) in &portal {
        for (what, cookie, token) in [
            ("no token", Some(csrf.as_str()), None),
            ("a wrong token", Some(csrf.as_str()), Some(forged.as_str())),
            ("no cookie", None, Some(csrf.as_str())),
        ] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            let mut cookies = format!("rf_session={session}");
            if let Some(c) = cookie {
                cookies.push_str(&format!("; rf_csrf={c}"));
            }
            let res = app
                .client
                .post(app.url(path))
                .header("Cookie", cookies)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} with {what}");
            // The magic-link page answers with its own "expired link" page instead.
            if path != "/verify" {
                let html = res.text().await.unwrap();
                assert!(html.contains("csrf_failed"), "{path} with {what}: {html}");
            }
        }
    }

    let console: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/console/requests/{id}/actions"),
            vec![("command", "note"), ("text", "forged")],
        ),
        (
            "/console/queue/bulk".into(),
            vec![("bulk", "assign"), ("ids", &id), ("assignee", "")],
        ),
        (
            "/console/staff".into(),
            vec![("email", "forged@rightsflow.test"), ("role", "admin")],
        ),
        ("/console/sign-out".into(), vec![]),
        ("/console/account/totp".into(), vec![("action", "enable")]),
        (
            format!("/console/requests/{id}/restriction/lift"),
            vec![("reason", "forged")],
        ),
    ];
    for (path, fields) in &console {
        for (what, token) in [("no token", None), ("a wrong token", Some(forged.as_str()))] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            let res = signed_in
                .http
                .post(app.url(path))
                .header("Cookie", &signed_in.cookies)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} with {what}");
        }
    }
    // Signing in without the form's token opens no session.
    let res = signed_in
        .http
        .post(app.url("/console/sign-in"))
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "sign-in without a token"
    );
    assert!(cookie_of(&res, "rf_staff").is_none());
    assert_unchanged(&app, &before, "forms without their token").await;
    // The session still works: the refusals did not sign anyone out.
    assert_eq!(
        signed_in.get("/console/queue").await.status(),
        StatusCode::OK
    );
}
on_both_backends!(forms_without_a_matching_csrf_token_are_refused);

/// Every kind of answer carries the security headers: JSON, errors, pages, the mailbox,
/// the probes.
async fn every_answer_carries_the_security_headers(app: TestApp) {
    let admin = app.admin_token().await;
    let paths = [
        ("/healthz", None),
        ("/readyz", None),
        ("/api/openapi.json", None),
        ("/api/v1/staff/requests", Some(admin.as_str())),
        ("/api/v1/staff/requests", None),
        ("/api/v1/nowhere", None),
        ("/", None),
        ("/console/sign-in", None),
        ("/dev/mail", None),
    ];
    for (path, token) in paths {
        let mut req = app.client.get(app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("script-src 'unsafe"), "{path}: {csp}");
        assert!(
            header("strict-transport-security").is_empty(),
            "{path}: HSTS over plain HTTP"
        );
    }
    // Behind a TLS-terminating proxy, HSTS is added.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert!(res.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .starts_with("max-age="));
}
on_both_backends!(every_answer_carries_the_security_headers);

fn few_callbacks(config: &mut Config) {
    config.rate_limits.callbacks_per_ip = 3;
}

/// The fulfilment callback is limited per address like the other public routes.
async fn fulfilment_callbacks_are_rate_limited(app: TestApp) {
    let before = settled(&app).await;
    let call = || {
        raw(
            &app,
            "/api/v1/fulfilment/tasks/no-such-task/callback",
            Some("application/json"),
            b"{\"status\":\"done\"}".to_vec(),
        )
        .header("X-Rightsflow-Timestamp", "1")
        .header("X-Rightsflow-Signature", "00")
        .send()
    };
    for _ in 0..3 {
        let res = call().await.unwrap();
        refused(res, StatusCode::NOT_FOUND, "not_found", "an unknown task").await;
    }
    let res = call().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    refused(
        res,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "the fourth callback",
    )
    .await;
    assert_unchanged(&app, &before, "callbacks").await;
    let (status, _) = error_code(call().await.unwrap()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the limit holds");
}
on_both_backends!(fulfilment_callbacks_are_rate_limited, super::few_callbacks);

fn small_budget(config: &mut Config) {
    config.rate_limits.requests_per_ip = 4;
}

/// Every route but the health probes and static files counts against one per-address budget:
/// past it, the API answers 429 in JSON and the portal shows its error page, in the visitor's
/// language, both with `Retry-After`.
async fn every_route_shares_one_per_address_budget(app: TestApp) {
    let before = settled(&app).await;
    for _ in 0..10 {
        let res = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "probes are not counted");
    }
    // Four counted requests: a portal page, the consent API (not enabled in this app, but
    // counted), the OpenAPI document, the page to find a request.
    let page = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let consents = app
        .client
        .get(app.url("/api/v1/subjects/u-1/consents"))
        .send()
        .await
        .unwrap();
    assert_eq!(consents.status(), StatusCode::NOT_FOUND, "not enabled here");
    for path in ["/api/openapi.json", "/find"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }

    let res = app
        .client
        .get(app.url("/api/v1/subjects/u-1/consents"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    refused(
        res,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "the consent API",
    )
    .await;
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&wait),
        "the limiter's own seconds: {wait}"
    );
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("请求过于频繁"));
    let res = app
        .client
        .get(app.url("/find?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().await.unwrap().contains("Too many requests"));
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "probes still answer");
    assert_unchanged(&app, &before, "the budget").await;
}
on_both_backends!(
    every_route_shares_one_per_address_budget,
    super::small_budget
);

/// PostgreSQL cannot store U+0000 in text: a NUL anywhere — path, query, JSON, form — is
/// refused before it reaches a query (it used to come back as a 500).
async fn nul_characters_are_refused_before_any_query(app: TestApp) {
    let Verified {
        admin,
        sub,
        session,
        id,
    } = verified_access(&app).await;
    let before = settled(&app).await;
    let r = &sub.reference;

    for path in [
        format!("/api/v1/staff/requests/{id}%00"),
        "/api/v1/staff/requests/%00".into(),
        format!("/api/v1/requests/{r}/results/x%00"),
        "/api/v1/staff/outbox/%00/retry".into(),
        "/console/requests/%00".into(),
    ] {
        let res = app.get_with(&path, &admin).await;
        refused(res, StatusCode::NOT_FOUND, "not_found", &path).await;
    }
    let res = app
        .get_with("/api/v1/staff/requests?assignee=%00", &admin)
        .await;
    refused(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        "assignee=%00",
    )
    .await;
    let posts: Vec<(String, Value, Option<&str>)> = vec![
        (
            "/api/v1/requests".into(),
            submission_with("/subject/name", "李\u{0}雷"),
            None,
        ),
        (
            "/api/v1/staff/login".into(),
            json!({ "email": "a\u{0}@x.cn", "password": "p" }),
            None,
        ),
        (
            format!("/api/v1/requests/{r}/withdraw"),
            json!({ "reason": "\u{0}" }),
            Some(&session),
        ),
        (
            format!("/api/v1/staff/requests/{id}/actions"),
            json!({ "command": "note", "text": "a\u{0}" }),
            Some(&admin),
        ),
        (
            format!("/api/v1/staff/requests/{id}/actions"),
            json!({ "command": "assign", "assignee": "\u{0}" }),
            Some(&admin),
        ),
    ];
    for (path, body, token) in &posts {
        // serde_json writes U+0000 as the escape `\u0000`.
        let body = body.to_string();
        assert!(body.contains("\\u0000"), "{body}");
        let mut req = raw(&app, path, Some("application/json"), body.into_bytes());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        refused(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", path).await;
    }
    // The portal's form, with its token: refused for the NUL, not for the token.
    let page = app
        .client
        .get(app.url("/rights/complaint"))
        .send()
        .await
        .unwrap();
    let csrf = cookie_of(&page, "rf_csrf").unwrap();
    let res = app
        .client
        .post(app.url("/rights/complaint"))
        .header("Cookie", format!("rf_csrf={csrf}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&email=a%40example.com&subject=x%00&account=y"
        ))
        .send()
        .await
        .unwrap();
    refused(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        "a form",
    )
    .await;
    assert_unchanged(&app, &before, "NUL characters").await;
}
on_both_backends!(nul_characters_are_refused_before_any_query);

/// The comparison the battery rests on sees an accepted change, in the tables it touched.
async fn the_snapshot_sees_a_change(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    let id = app.id_of(&admin, &sub.reference).await;
    let before = settled(&app).await;
    app.act_ok(
        &admin,
        &id,
        json!({ "command": "note", "text": "一条备注" }),
    )
    .await;
    let after = settled(&app).await;
    let changed: Vec<&str> = TABLES
        .into_iter()
        .filter(|t| before.0[t] != after.0[t])
        .collect();
    assert_eq!(changed, ["requests", "request_events"]);
}
on_both_backends!(the_snapshot_sees_a_change);

/// An email domain whose capitals lower-case to more than one character (`İ` becomes `i` and a
/// combining dot) was accepted, stored lower-cased, and then failed its own check whenever the
/// request was read ("stored data is corrupt": the worker could not send its notifications).
/// It is refused at submission now.
async fn an_address_that_changes_when_lower_cased_is_refused(app: TestApp) {
    let admin = app.admin_token().await;
    app.submit("access", "cn").await;
    let before = settled(&app).await;
    for email in ["li@İ.cn", "li@EXAMPLE.İO"] {
        let body = json!({
            "kind": "access",
            "subject": { "email": email },
            "details": crate::helpers::details_for("access"),
        });
        let res = app.post_json("/api/v1/requests", &body, None).await;
        refused(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_contact",
            email,
        )
        .await;
    }
    assert_unchanged(&app, &before, "a capital İ in the domain").await;
    assert_eq!(app.list(&admin, "limit=200").await["total"], 1);
}
on_both_backends!(an_address_that_changes_when_lower_cased_is_refused);

//! The hash-chained event log, on SQLite and PostgreSQL: `rightsflow audit verify` passes after
//! a full scenario, and fails naming the event when one byte of one stored event is changed, or
//! when events are cut off the end of a request.

use diesel::prelude::*;
use rightsflow::storage::fields;
use rightsflow::storage::rows::EVENT_DETAILS;
use rightsflow::storage::schema::request_events;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::on_both_backends;

/// `rightsflow audit verify` on the app's database: (passed, what it printed).
pub(crate) fn verify(app: &TestApp) -> (bool, String) {
    let (ok, out, _) = app.cli(&["audit", "verify"], &[]);
    (ok, out)
}

/// `rightsflow audit export --request REF --out FILE`, read back.
fn export(app: &TestApp, reference: &str) -> Value {
    let file = app.data_dir().join(format!("evidence-{reference}.json"));
    let path = file.to_str().unwrap();
    let (ok, _, err) = app.cli(
        &["audit", "export", "--request", reference, "--out", path],
        &[],
    );
    assert!(ok, "{err}");
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// Replaces `from` with `to` in one stored event's details, straight in the database.
async fn edit_details(app: &TestApp, request_id: &str, seq: i64, from: &str, to: &str) {
    let (s, id, from, to) = (
        app.services.clone(),
        request_id.to_owned(),
        from.to_owned(),
        to.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let mut c = s.db().conn().unwrap();
        let event = request_events::table
            .filter(request_events::request_id.eq(&id))
            .filter(request_events::seq.eq(seq));
        let sealed: String = event
            .select(request_events::details)
            .first(&mut *c)
            .unwrap();
        // Stored sealed: the edit is made as someone holding the data key would make it, so
        // the value opens and only the chain can tell.
        let place = format!("{id}:{seq}");
        let details = fields::open(EVENT_DETAILS, &place, &sealed).unwrap();
        assert!(details.contains(&from), "{details}");
        let edited = fields::seal(EVENT_DETAILS, &place, &details.replacen(&from, &to, 1)).unwrap();
        diesel::update(event)
            .set(request_events::details.eq(edited))
            .execute(&mut *c)
            .unwrap();
    })
    .await
    .unwrap();
}

/// Sets one stored event's sealed details as they are in the database (no key involved);
/// returns what was there.
async fn set_raw_details(
    app: &TestApp,
    request_id: &str,
    seq: i64,
    edit: impl FnOnce(&str) -> String + Send + 'static,
) -> String {
    let (s, id) = (app.services.clone(), request_id.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut c = s.db().conn().unwrap();
        let event = request_events::table
            .filter(request_events::request_id.eq(&id))
            .filter(request_events::seq.eq(seq));
        let raw: String = event
            .select(request_events::details)
            .first(&mut *c)
            .unwrap();
        diesel::update(event)
            .set(request_events::details.eq(edit(&raw)))
            .execute(&mut *c)
            .unwrap();
        raw
    })
    .await
    .unwrap()
}

async fn audit_verify_finds_one_changed_byte(app: TestApp) {
    let admin = app.admin_token().await;
    // A full scenario: two requests through submission, verification, approval, completion,
    // notes; a third withdrawn.
    let mut ids = vec![];
    for kind in ["access", "correction"] {
        let sub = app.submit(kind, "cn").await;
        app.verify_by_code(&sub.reference).await;
        let id = app.id_of(&admin, &sub.reference).await;
        app.act_ok(
            &admin,
            &id,
            json!({ "command": "note", "text": "核对完毕" }),
        )
        .await;
        app.act_ok(&admin, &id, json!({ "command": "approve" }))
            .await;
        app.act_ok(
            &admin,
            &id,
            json!({ "command": "complete", "summary": "已办理" }),
        )
        .await;
        ids.push((id, sub.reference));
    }
    let sub = app.submit("deletion", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;
    app.subject_post(&sub.reference, "withdraw", &session, &json!({}))
        .await;
    // Events from before the chain existed (hashes empty) are sealed, in order, at start-up.
    let s = app.services.clone();
    tokio::task::spawn_blocking(move || {
        diesel::update(request_events::table)
            .set((
                request_events::prev_hash.eq(None::<String>),
                request_events::hash.eq(None::<String>),
            ))
            .execute(&mut *s.db().conn().unwrap())
            .unwrap();
    })
    .await
    .unwrap();
    let (ok, out) = verify(&app);
    assert!(ok, "{out}");
    assert!(out.starts_with("audit chain intact: "), "{out}");
    let events: usize = out.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(events >= 12, "{out}");

    // The second request's evidence package: the request as received, its timeline chained
    // hash to hash with the note in it, the chain's check, the messages sent.
    let (target, reference) = ids[1].clone();
    let evidence = export(&app, &reference);
    assert_eq!(evidence["request"]["reference"], reference.as_str());
    assert_eq!(
        evidence["request"]["subject"]["email"],
        "li.lei@example.com"
    );
    assert_eq!(evidence["chain"]["intact"], true, "{evidence}");
    let timeline = evidence["timeline"].as_array().unwrap();
    assert_eq!(evidence["chain"]["events"], timeline.len());
    assert_eq!(timeline[2]["details"]["text"], "核对完毕", "{evidence}");
    assert_eq!(timeline[0]["prev_hash"].as_str().unwrap(), "0".repeat(64));
    for pair in timeline.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    let messages = evidence["messages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| m["to"] == "li.lei@example.com"
            && m["subject"].as_str().unwrap().contains(&reference)
            && m["status"] == "done"),
        "{messages:?}"
    );

    // An unknown reference is named, not exported.
    let (ok, _, err) = app.cli(&["audit", "export", "--request", "DSR-AAAA-BBBB"], &[]);
    assert!(!ok);
    assert!(
        err.contains("no request has the reference DSR-AAAA-BBBB"),
        "{err}"
    );

    // One byte of the second request's third event (the note), changed in the database.
    edit_details(&app, &target, 3, "核对完毕", "核对完币").await;
    let (ok, out) = verify(&app);
    assert!(!ok, "a changed event must fail the check");
    assert!(
        out.contains(&format!("request {reference} (id {target}), event 3")),
        "{out}"
    );
    assert!(out.contains("was changed"), "{out}");
    let evidence = export(&app, &reference);
    assert_eq!(evidence["chain"]["intact"], false);
    assert_eq!(evidence["chain"]["event"], 3);

    // Put it back: intact again.
    edit_details(&app, &target, 3, "核对完币", "核对完毕").await;
    assert!(verify(&app).0, "restored");

    // One character of the sealed form changed (by someone without the key): it no longer
    // opens, and the check names the event.
    let raw = set_raw_details(&app, &target, 3, |raw| {
        let last = raw.chars().last().unwrap();
        let other = if last == 'A' { 'B' } else { 'A' };
        format!("{}{other}", &raw[..raw.len() - last.len_utf8()])
    })
    .await;
    assert!(raw.starts_with("enc1:"), "stored sealed: {raw}");
    let (ok, out) = verify(&app);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "request {reference} (id {target}), event 3: its sealed details do not open"
        )),
        "{out}"
    );
    set_raw_details(&app, &target, 3, move |_| raw).await;
    assert!(verify(&app).0, "restored");

    // Then cut the last event off the first request.
    let (first, first_ref) = ids[0].clone();
    let (s, id) = (app.services.clone(), first.clone());
    tokio::task::spawn_blocking(move || {
        let mut c = s.db().conn().unwrap();
        let last: i64 = request_events::table
            .filter(request_events::request_id.eq(&id))
            .select(diesel::dsl::max(request_events::seq))
            .first::<Option<i64>>(&mut *c)
            .unwrap()
            .unwrap();
        diesel::delete(
            request_events::table
                .filter(request_events::request_id.eq(&id))
                .filter(request_events::seq.eq(last)),
        )
        .execute(&mut *c)
        .unwrap();
    })
    .await
    .unwrap();
    let (ok, out) = verify(&app);
    assert!(!ok);
    assert!(
        out.contains(&first_ref) && out.contains("events were removed"),
        "{out}"
    );
}
on_both_backends!(audit_verify_finds_one_changed_byte);

/// `rightsflow audit verify --anchor FILE` on the app's database: (passed, what it printed).
fn verify_anchor(app: &TestApp, anchor: &std::path::Path) -> (bool, String) {
    let (ok, out, _) = app.cli(
        &["audit", "verify", "--anchor", anchor.to_str().unwrap()],
        &[],
    );
    (ok, out)
}

/// What the chains alone cannot show, an anchor kept outside the database does: a chain
/// rewritten consistently by someone who knows the scheme, and entries cut off the audit log's
/// end.
async fn an_anchor_catches_rewritten_and_truncated_chains(app: TestApp) {
    let admin = app.admin_token().await;
    let mut ids = vec![];
    for kind in ["access", "deletion"] {
        let sub = app.submit(kind, "cn").await;
        app.verify_by_code(&sub.reference).await;
        let id = app.id_of(&admin, &sub.reference).await;
        app.act_ok(
            &admin,
            &id,
            json!({ "command": "note", "text": "核对完毕" }),
        )
        .await;
        ids.push((id, sub.reference));
    }
    let anchor = app.data_dir().join("anchor.json");
    let (ok, _, err) = app.cli(&["audit", "anchor", "--out", anchor.to_str().unwrap()], &[]);
    assert!(ok, "{err}");
    assert!(err.contains("anchored 2 request chains"), "{err}");
    let text = std::fs::read_to_string(&anchor).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["format"], "rightsflow-anchor/1");
    let log_head = file["audit_log"][0].as_i64().unwrap();
    assert!(log_head >= 1, "the admin's sign-in at least: {file}");
    assert!(!text.contains("example.com"), "no personal data: {text}");

    // The service goes on: chains grow past their anchored heads, and the anchor still holds.
    let (first, first_ref) = ids[0].clone();
    app.act_ok(&admin, &first, json!({ "command": "approve" }))
        .await;
    let (ok, out) = verify_anchor(&app, &anchor);
    assert!(ok, "{out}");
    assert!(out.contains("anchor of "), "{out}");
    assert!(out.contains("3 chain heads still in place"), "{out}");

    // An edited anchor file is refused (its signature is the index key's).
    let edited = anchor.with_file_name("edited.json");
    std::fs::write(
        &edited,
        text.replacen(
            &format!("\"taken_at\": {}", file["taken_at"]),
            "\"taken_at\": \"2026-01-01T00:00:00Z\"",
            1,
        ),
    )
    .unwrap();
    assert_ne!(std::fs::read_to_string(&edited).unwrap(), text);
    let (ok, out) = verify_anchor(&app, &edited);
    assert!(!ok);
    assert!(out.contains("signature does not match"), "{out}");

    // The first request's note rewritten, and its chain re-hashed from there as someone who
    // knows the scheme would: the chains alone verify, the anchor does not.
    edit_details(&app, &first, 3, "核对完毕", "未核对").await;
    let (s, id) = (app.services.clone(), first.clone());
    tokio::task::spawn_blocking(move || {
        let mut c = s.db().conn().unwrap();
        diesel::update(
            request_events::table
                .filter(request_events::request_id.eq(&id))
                .filter(request_events::seq.ge(3)),
        )
        .set((
            request_events::prev_hash.eq(None::<String>),
            request_events::hash.eq(None::<String>),
        ))
        .execute(&mut *c)
        .unwrap();
        rightsflow::storage::audit::seal_unsealed(&mut c).unwrap();
    })
    .await
    .unwrap();
    let (ok, out) = verify(&app);
    assert!(ok, "the rewrite is consistent: {out}");
    let (ok, out) = verify_anchor(&app, &anchor);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("request {first_ref} (id {first}): event 3"))
            && out.contains("the chain was rewritten"),
        "{out}"
    );

    // Audit-log entries from the anchored head on, cut off its end: the log's own chain still
    // verifies, the anchor names the missing entry.
    let s = app.services.clone();
    tokio::task::spawn_blocking(move || {
        use rightsflow::storage::schema::audit_log;
        diesel::delete(audit_log::table.filter(audit_log::seq.ge(log_head)))
            .execute(&mut *s.db().conn().unwrap())
            .unwrap();
    })
    .await
    .unwrap();
    let (ok, out) = verify(&app);
    assert!(ok, "a shorter log still chains: {out}");
    let (ok, out) = verify_anchor(&app, &anchor);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("audit log entry {log_head}"))
            && out.contains("entries were removed"),
        "{out}"
    );
}
on_both_backends!(an_anchor_catches_rewritten_and_truncated_chains);

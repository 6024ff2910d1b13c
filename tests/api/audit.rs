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

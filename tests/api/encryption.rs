//! Personal data sealed at rest: after a full scenario the SQLite file holds no subject's
//! email, phone, name or free text in clear; exact search still finds a request by email in
//! any case (blind index); `rightsflow keys rotate` moves everything to a new key in batches,
//! resumably, while the service runs, and the audit chain stays intact.

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::console::Console;
use crate::helpers::{
    skip, spawn_app, spawn_app_with, Backend, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD,
};
use rightsflow::auth::sealing::DataKey;

const NAME: &str = "韩梅梅";
const EMAIL: &str = "Han.MeiMei@Example.com";
const PHONE: &str = "+86 138 0013 8000";
const STORY: &str = "我的收货地址写错了，应为北京市海淀区中关村大街27号";
const NOTE: &str = "已电话核实身份证尾号4321";

/// Submits a correction with every contact field and free text, verifies it, notes, approves
/// and completes it (messages sent, events written, in-site messages kept).
async fn scenario(app: &TestApp) -> (String, String) {
    let body = json!({
        "kind": "correction",
        "jurisdiction": "cn",
        "subject": { "name": NAME, "email": EMAIL, "phone": PHONE },
        "details": { "fields": [{ "field": "收货地址", "current_value": "北京市海淀区", "corrected_value": STORY }] },
    });
    let res = app.post_json("/api/v1/requests", &body, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let reference = created["reference"].as_str().unwrap().to_owned();
    app.verify_by_code(&reference).await;
    let admin = app.admin_token().await;
    let id = app.id_of(&admin, &reference).await;
    for command in [
        json!({ "command": "note", "text": NOTE }),
        json!({ "command": "approve" }),
        json!({ "command": "complete", "summary": format!("已更正为{STORY}") }),
    ] {
        app.act_ok(&admin, &id, command).await;
    }
    settled(app, &id).await;
    (id, reference)
}

/// Waits until every outbox row of the request has been worked (messages sent).
async fn settled(app: &TestApp, id: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (s, id) = (app.services.clone(), id.to_owned());
        let open = tokio::task::spawn_blocking(move || {
            rightsflow::storage::outbox::for_request(&mut s.db().conn().unwrap(), &id)
                .unwrap()
                .iter()
                .filter(|r| r.status != "done")
                .count()
        })
        .await
        .unwrap();
        if open == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} outbox rows still open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn needles() -> Vec<String> {
    vec![
        EMAIL.to_owned(),
        EMAIL.to_lowercase(),
        "MeiMei".to_owned(),
        "13800138000".to_owned(),
        "138 0013 8000".to_owned(),
        NAME.to_owned(),
        "中关村大街".to_owned(),
        "身份证尾号".to_owned(),
    ]
}

/// The needles found in `bytes`.
fn found_in(bytes: &[u8]) -> Vec<String> {
    needles()
        .into_iter()
        .filter(|n| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
        .collect()
}

/// The database file and its write-ahead log, as a copy taken off the disk would have them.
fn file_bytes(path: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    bytes
}

#[tokio::test]
async fn the_database_file_holds_no_contact_data_in_clear() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let (_, reference) = scenario(&app).await;

    // Exact search by email, in another case than typed, finds it through the blind index;
    // by phone too.
    let console = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for q in [
        "han.meimei%40example.com",
        "HAN.MEIMEI%40EXAMPLE.COM",
        "13800138000",
    ] {
        let page = console.page(&format!("/console/queue?q={q}")).await;
        assert!(page.contains(&reference), "search {q}");
    }
    let page = console
        .page("/console/queue?q=someone.else%40example.com")
        .await;
    assert!(!page.contains(&reference));

    let url = app.database_url();
    let path = url.strip_prefix("sqlite://").unwrap_or(&url);
    let leaked = found_in(&file_bytes(path));
    assert!(
        leaked.is_empty(),
        "in clear in the database file: {leaked:?}"
    );

    // The search is able to find them: the same values written in clear into another SQLite
    // file are all found there.
    let control = app.data_dir().join("control.db");
    let mut c = diesel::SqliteConnection::establish(control.to_str().unwrap()).unwrap();
    diesel::sql_query("CREATE TABLE t (v TEXT)")
        .execute(&mut c)
        .unwrap();
    for n in needles() {
        diesel::sql_query("INSERT INTO t (v) VALUES ($1)")
            .bind::<diesel::sql_types::Text, _>(format!("<{n}>"))
            .execute(&mut c)
            .unwrap();
    }
    drop(c);
    assert_eq!(
        found_in(&file_bytes(control.to_str().unwrap())),
        needles(),
        "the control file holds every value in clear"
    );
}

/// The binary on the app's database; stdout and stderr together.
fn cli(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let (ok, out, err) = app.cli(args, env);
    (ok, out + &err)
}

/// Stored values of the sealed columns that are not under `key` (`enc1:<id>:`), by column.
async fn outside(app: &TestApp, key: &str) -> Vec<String> {
    let (s, prefix) = (app.services.clone(), format!("enc1:{key}:%"));
    tokio::task::spawn_blocking(move || {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = s.db().conn().unwrap();
        let mut out = vec![];
        for (table, column) in [
            ("requests", "subject_email"),
            ("requests", "subject_name"),
            ("requests", "details"),
            ("request_events", "details"),
            ("outbox", "payload"),
            ("inbox_messages", "body"),
        ] {
            let n: N = diesel::sql_query(format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {column} IS NOT NULL AND {column} NOT LIKE $1"
            ))
            .bind::<diesel::sql_types::Text, _>(&prefix)
            .get_result(&mut *c)
            .unwrap();
            if n.n > 0 {
                out.push(format!("{table}.{column}: {}", n.n));
            }
        }
        out
    })
    .await
    .unwrap()
}

async fn rotation_moves_everything_to_the_new_key(backend: Backend) {
    let old = DataKey::generate_hex();
    let old_id = DataKey::from_hex(&old).unwrap().id().to_owned();
    let Some(app) = spawn_app_with(backend, |c| {
        c.data_key = Some(rightsflow::config::Secret::new(old.clone()))
    })
    .await
    else {
        return skip("rotation_moves_everything_to_the_new_key_on_postgres");
    };
    let (id, _) = scenario(&app).await;
    let (second_id, _) = scenario(&app).await;
    // A result sealed under the first key: an access report staff attached.
    let admin = app.admin_token().await;
    let access = app.submit("access", "cn").await;
    app.verify_by_code(&access.reference).await;
    let access_id = app.id_of(&admin, &access.reference).await;
    app.act_ok(&admin, &access_id, json!({ "command": "approve" }))
        .await;
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/staff/requests/{access_id}/results?file_name=report.json"
        )))
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .body(format!("{{\"email\":\"{EMAIL}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let unsealed = outside(&app, &old_id).await;
    assert!(unsealed.is_empty(), "not under the first key: {unsealed:?}");
    // One request as an older version left it: contact in clear, no blind index.
    let (s, legacy) = (app.services.clone(), second_id.clone());
    tokio::task::spawn_blocking(move || {
        use rightsflow::storage::schema::{requests, subject_lookups};
        let mut c = s.db().conn().unwrap();
        diesel::update(requests::table.filter(requests::id.eq(&legacy)))
            .set(requests::subject_email.eq(Some("han.meimei@example.com")))
            .execute(&mut *c)
            .unwrap();
        diesel::delete(subject_lookups::table.filter(subject_lookups::request_id.eq(&legacy)))
            .execute(&mut *c)
            .unwrap();
    })
    .await
    .unwrap();

    let new = DataKey::generate_hex();
    let new_id = DataKey::from_hex(&new).unwrap().id().to_owned();
    let env = [
        ("RIGHTSFLOW_DATA_KEY", new.as_str()),
        ("RIGHTSFLOW_PREVIOUS_DATA_KEYS", old.as_str()),
    ];
    // A first run stopped after two small batches: some done, some left.
    let (ok, out) = cli(
        &app,
        &["keys", "rotate", "--batch", "3", "--max-batches", "2"],
        &env,
    );
    assert!(ok, "{out}");
    let left: i64 = out
        .lines()
        .find_map(|l| l.strip_suffix(" remaining"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(left > 0, "{out}");
    assert!(out.contains("sealed under key"), "{out}");
    // The service goes on meanwhile (it still writes under the old key).
    let during = app.submit("access", "cn").await;
    app.code_for(&during.reference).await;
    // Resumed: to the end.
    let (ok, out) = cli(&app, &["keys", "rotate", "--batch", "3"], &env);
    assert!(ok, "{out}");
    assert!(out.contains("; 0 remaining\n"), "{out}");
    let unsealed = outside(&app, &new_id).await;
    assert!(unsealed.is_empty(), "not under the new key: {unsealed:?}");
    let (ok, out) = cli(&app, &["keys", "status"], &env);
    assert!(ok && out.contains(": 0 values"), "{out}");

    // The new key alone now opens everything: the audit chain verifies (every event opened
    // and hashed) ...
    let (ok, out) = cli(
        &app,
        &["audit", "verify"],
        &[("RIGHTSFLOW_DATA_KEY", new.as_str())],
    );
    assert!(ok, "{out}");
    // ... while the old key alone opens nothing any more.
    let (ok, out) = cli(
        &app,
        &["audit", "verify"],
        &[("RIGHTSFLOW_DATA_KEY", old.as_str())],
    );
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("sealed with key {new_id}")), "{out}");

    // The older request was sealed and indexed: found by its email again, in the database.
    let (s, legacy) = (app.services.clone(), second_id.clone());
    let lookups: i64 = tokio::task::spawn_blocking(move || {
        use rightsflow::storage::schema::subject_lookups;
        subject_lookups::table
            .filter(subject_lookups::request_id.eq(&legacy))
            .count()
            .get_result(&mut *s.db().conn().unwrap())
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(lookups, 2, "email and phone indexed again");
    // The result's chunks were sealed again, under the new key.
    let s = app.services.clone();
    let keys: Vec<Option<String>> = tokio::task::spawn_blocking(move || {
        use rightsflow::storage::schema::request_results;
        request_results::table
            .filter(request_results::request_id.eq(&access_id))
            .select(request_results::key_id)
            .load(&mut *s.db().conn().unwrap())
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(keys, vec![Some(new_id.clone())]);
    assert_ne!(id, second_id);
}

#[tokio::test]
async fn rotation_moves_everything_to_the_new_key_on_sqlite() {
    rotation_moves_everything_to_the_new_key(Backend::Sqlite).await;
}

#[tokio::test]
async fn rotation_moves_everything_to_the_new_key_on_postgres() {
    rotation_moves_everything_to_the_new_key(Backend::Postgres).await;
}

//! The SQL connector against real databases (a SQLite file and a PostgreSQL database of their
//! own), loaded with the demo platform: access returns exactly the subject's rows and nobody
//! else's; deletion deletes or masks them and leaves other people's untouched; correction
//! changes only the named fields; restriction sets and clears the flag.

use rightsflow::domain::details::DataCategory;
use rightsflow::fulfilment::dataset::Dataset;
use rightsflow::fulfilment::sql::{self, SubjectKeys, Target};
use rightsflow::fulfilment::{DEMO_PLATFORM_DATASET, DEMO_PLATFORM_SQL};
use serde_json::{json, Value};

use crate::helpers::{scratch_postgres, skip, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::on_both_backends;
use rightsflow::domain::Role;

fn li_lei_by_email() -> SubjectKeys {
    SubjectKeys {
        email: Some("li.lei@example.com".into()),
        ..SubjectKeys::default()
    }
}

fn han_meimei_by_id() -> SubjectKeys {
    SubjectKeys {
        platform_user_id: Some("1002".into()),
        ..SubjectKeys::default()
    }
}

/// Everything in the platform, table by table, read straight from the database.
fn snapshot(t: &mut Target, d: &Dataset) -> Vec<(String, Vec<Value>)> {
    let everyone = ["1001", "1002", "1003"].map(|id| SubjectKeys {
        platform_user_id: Some(id.into()),
        ..SubjectKeys::default()
    });
    everyone
        .iter()
        .flat_map(|k| sql::access(t, d, k, &[]).unwrap())
        .map(|r| (r.table, r.rows))
        .collect()
}

fn rows_of<'a>(found: &'a [sql::TableRows], table: &str) -> &'a [Value] {
    &found.iter().find(|r| r.table == table).unwrap().rows
}

fn the_connector_acts_on_one_subject_only(url: &str) {
    let d = Dataset::parse(DEMO_PLATFORM_DATASET).unwrap();
    let mut t = Target::open(url).unwrap();
    t.run_script(DEMO_PLATFORM_SQL).unwrap();

    // Access by email: Li Lei's rows in every table, nobody else's.
    let found = sql::access(&mut t, &d, &li_lei_by_email(), &[]).unwrap();
    assert_eq!(rows_of(&found, "users").len(), 1);
    assert_eq!(rows_of(&found, "users")[0]["name"], "李雷");
    let orders: Vec<&str> = rows_of(&found, "orders")
        .iter()
        .map(|o| o["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(orders.len(), 2);
    assert!(orders
        .iter()
        .all(|o| *o == "WM20260301001" || *o == "WM20260512002"));
    assert_eq!(rows_of(&found, "browsing_history").len(), 2);
    assert_eq!(rows_of(&found, "devices")[0]["ip_address"], "203.0.113.7");
    let text = serde_json::to_string(&found).unwrap();
    for other in [
        "韩梅梅",
        "han.meimei",
        "王芳",
        "WM20260420003",
        "198.51.100.23",
    ] {
        assert!(!text.contains(other), "{other} leaked into Li Lei's access");
    }
    // Only described columns: no link columns, no flags.
    assert!(rows_of(&found, "orders")[0].get("user_id").is_none());
    // Only the categories asked for.
    let orders_only = sql::access(&mut t, &d, &li_lei_by_email(), &[DataCategory::Orders]).unwrap();
    assert_eq!(
        orders_only
            .iter()
            .map(|r| r.table.as_str())
            .collect::<Vec<_>>(),
        ["orders"]
    );
    // A subject the system does not know: nothing; a key it cannot use: an error.
    let nobody = SubjectKeys {
        email: Some("nobody@example.com".into()),
        ..SubjectKeys::default()
    };
    assert!(sql::access(&mut t, &d, &nobody, &[])
        .unwrap()
        .iter()
        .all(|r| r.rows.is_empty()));
    let bad = SubjectKeys {
        platform_user_id: Some("1001 OR 1=1".into()),
        ..SubjectKeys::default()
    };
    assert!(sql::access(&mut t, &d, &bad, &[]).is_err());

    let before = snapshot(&mut t, &d);
    let others_before: Vec<_> = before.iter().skip(d.tables.len()).cloned().collect();

    // Correction: the named fields only; an unknown field is reported, not guessed.
    let fixed = sql::correct(
        &mut t,
        &d,
        &han_meimei_by_id(),
        &[
            ("姓名".into(), "韩梅".into()),
            ("favourite colour".into(), "blue".into()),
        ],
    )
    .unwrap();
    assert_eq!(fixed[0].column.as_deref(), Some("users.name"));
    assert_eq!(fixed[0].rows, 1);
    assert_eq!(fixed[1].column, None);
    let after = snapshot(&mut t, &d);
    let changed: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| (b.0.clone(), b.1.clone(), a.1.clone()))
        .collect();
    assert_eq!(changed.len(), 1, "one table changed: {changed:?}");
    let (table, was, now) = &changed[0];
    assert_eq!(table, "users");
    assert_eq!(was[0]["name"], "韩梅梅");
    let mut expected = was[0].clone();
    expected["name"] = json!("韩梅");
    assert_eq!(now[0], expected, "nothing but the name changed");

    // Restriction: the flag set on Li Lei's rows only, then cleared.
    let flagged = sql::restrict(&mut t, &d, &li_lei_by_email(), true).unwrap();
    assert_eq!(
        flagged
            .iter()
            .map(|o| (o.table.as_str(), o.rows))
            .collect::<Vec<_>>(),
        [("orders", 2), ("users", 1)]
    );
    assert_eq!(flag_count(&mut t), 3);
    sql::restrict(&mut t, &d, &li_lei_by_email(), false).unwrap();
    assert_eq!(flag_count(&mut t), 0);

    // Deletion of the account: histories gone, orders and the user masked; others untouched.
    let before = snapshot(&mut t, &d);
    let done = sql::delete(&mut t, &d, &li_lei_by_email(), None).unwrap();
    let action = |table: &str| {
        done.iter()
            .find(|o| o.table == table)
            .map(|o| (o.action.as_str(), o.rows))
    };
    assert_eq!(action("browsing_history"), Some(("deleted", 2)));
    assert_eq!(action("orders"), Some(("anonymised", 2)));
    assert_eq!(action("users"), Some(("anonymised", 1)));
    let id_view = SubjectKeys {
        platform_user_id: Some("1001".into()),
        ..SubjectKeys::default()
    };
    let left = sql::access(&mut t, &d, &id_view, &[]).unwrap();
    assert!(rows_of(&left, "browsing_history").is_empty());
    assert!(rows_of(&left, "locations").is_empty());
    let user = &rows_of(&left, "users")[0];
    assert_eq!(user["name"], "已注销用户");
    assert!(user["phone"].is_null());
    assert_eq!(user["id_card"], "1101");
    let hashed = user["email"].as_str().unwrap();
    assert_eq!(hashed.len(), 16);
    assert!(!hashed.contains('@'));
    for o in rows_of(&left, "orders") {
        assert!(o["address"].is_null());
        assert_eq!(o["order_no"].as_str().unwrap().len(), 16);
        assert!(
            o["amount_cents"].as_i64().unwrap() > 0,
            "the accounts keep the amount"
        );
    }
    // The email no longer finds anyone.
    assert!(sql::access(&mut t, &d, &li_lei_by_email(), &[])
        .unwrap()
        .iter()
        .all(|r| r.rows.is_empty()));
    let after = snapshot(&mut t, &d);
    let n = d.tables.len();
    assert_eq!(after[n..], before[n..], "other people's rows untouched");
    assert_ne!(others_before, vec![], "the comparison covers rows");
}

/// Restricted rows of everyone, counted with plain SQL.
pub(crate) fn flag_count(t: &mut Target) -> usize {
    let sql = "SELECT (SELECT COUNT(*) FROM users WHERE processing_restricted) + (SELECT COUNT(*) FROM orders WHERE processing_restricted) AS n";
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl;
    let n: N = match t {
        Target::Sqlite(c) => diesel::sql_query(sql).get_result(c).unwrap(),
        Target::Postgres(c) => diesel::sql_query(sql).get_result(c).unwrap(),
        Target::Mysql(c) => diesel::sql_query(sql).get_result(c).unwrap(),
    };
    n.n as usize
}

#[test]
fn the_sql_connector_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("platform.db").display());
    the_connector_acts_on_one_subject_only(&url);
}

#[test]
fn the_sql_connector_on_postgres() {
    let Some((url, _guard)) = scratch_postgres() else {
        return skip("fulfilment::the_sql_connector_on_postgres");
    };
    the_connector_acts_on_one_subject_only(&url);
}

#[test]
fn the_sql_connector_on_mysql() {
    let Some((url, _guard)) = crate::helpers::scratch_mysql() else {
        eprintln!("SKIPPED fulfilment::the_sql_connector_on_mysql: set RIGHTSFLOW_TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/test) to run it");
        return;
    };
    the_connector_acts_on_one_subject_only(&url);
}

/// Waits (up to 20 s) for the worker to take a request to `status`; returns the staff view.
pub(crate) async fn wait_for_status(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let view = app.staff_get(token, id).await;
        if view["status"]["code"] == status {
            return view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "request {id} never reached {status}: {}",
        app.staff_get(token, id).await
    );
}

pub(crate) fn notes(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["command"] == "note")
        .map(|e| e["details"]["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn approved_requests_are_fulfilled_in_the_demo_platform(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;

    // Access: approved, found in the platform, completed by the system, the report ready.
    let sub = app.submit("access", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    let done = wait_for_status(&app, &admin, &id, "completed").await;
    assert!(
        notes(&done)
            .iter()
            .any(|n| n.starts_with("fulfilment:") && n.contains("rows found")),
        "{done}"
    );
    let results = format!("/api/v1/requests/{}/results", sub.reference);
    let list: Value = app.get_with(&results, &session).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let rid = list["items"][0]["id"].as_str().unwrap();
    let file = format!("{results}/{rid}");
    let report = app.get_with(&file, &session).await.text().await.unwrap();
    // The categories asked for (account, orders), Li Lei's and nobody else's.
    for mine in [
        "个人信息查阅报告",
        "李雷",
        "WM20260301001",
        "WM20260512002",
        "订单与交易记录",
        // Columns by the names the description gives them.
        "订单号 / Order number",
    ] {
        assert!(report.contains(mine), "{mine} missing from the report");
    }
    for other in ["韩梅梅", "WM20260420003", "/products/earphones"] {
        assert!(!report.contains(other), "{other} in Li Lei's report");
    }
    // In the portal the report can also be read in the browser, sandboxed, to print.
    let portal = |path: String| {
        let (client, url, cookie) = (
            app.client.clone(),
            app.url(&path),
            format!("rf_session={session}"),
        );
        async move {
            client
                .get(url)
                .header("Cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let page = portal(format!("/requests/{}", sub.reference))
        .await
        .text()
        .await
        .unwrap();
    let view = format!("/requests/{}/results/{rid}?view=1", sub.reference);
    assert!(page.contains(&view.replace('&', "&amp;")), "{page}");
    let shown = portal(view).await;
    assert!(shown.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline"));
    let csp = shown.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("sandbox; default-src 'none'"), "{csp}");
    assert!(shown.text().await.unwrap().contains("李雷"));

    // Deletion: staff check, two approvers; then the platform no longer knows him.
    let sub = app.submit("deletion", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    approve_deletion(&app, &admin, &reviewer, &id).await;
    let done = wait_for_status(&app, &admin, &id, "completed").await;
    assert!(done["fulfilment_started_at"].is_string(), "{done}");
    assert!(
        notes(&done)
            .iter()
            .any(|n| n.contains("browsing_history deleted 2")),
        "{done}"
    );
    // Staff see the task and its state on the request page.
    let console = crate::console::Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = console.page(&format!("/console/requests/{id}")).await;
    assert!(page.contains("id=\"tasks\""), "{page}");
    assert!(
        page.contains("<tr data-state=\"done\"><td>WEIMACMS 演示平台"),
        "{page}"
    );
    assert!(page.contains("删除或匿名化"));
    let d = Dataset::parse(DEMO_PLATFORM_DATASET).unwrap();
    let mut t = Target::open(
        &app.data_dir()
            .join("demo-platform.db")
            .display()
            .to_string(),
    )
    .unwrap();
    assert!(sql::access(&mut t, &d, &li_lei_by_email(), &[])
        .unwrap()
        .iter()
        .all(|r| r.rows.is_empty()));
    let others = sql::access(&mut t, &d, &han_meimei_by_id(), &[]).unwrap();
    assert_eq!(rows_of(&others, "users")[0]["name"], "韩梅梅");
}
on_both_backends!(approved_requests_are_fulfilled_in_the_demo_platform, |c| {
    c.fulfilment.demo_platform = true
});

async fn a_failing_system_is_retried_then_shown_to_staff(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    let console = crate::console::Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut page = String::new();
    for _ in 0..200 {
        page = console.page(&format!("/console/requests/{id}")).await;
        if page.contains("data-state=\"failed\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("<tr data-state=\"failed\"><td>会员中心"),
        "{page}"
    );
    assert!(
        page.contains("cannot connect to the data system"),
        "the error is shown"
    );
    // Two attempts, as configured; the request waits for staff.
    assert!(page.contains("<td>2</td>"), "{page}");
    assert_eq!(
        app.staff_get(&admin, &id).await["status"]["code"],
        "in_progress"
    );
}
/// A data system 会员中心 (`crm`) whose database can never be opened: a SQLite file in a
/// folder that does not exist, so every attempt fails to connect.
fn unreachable_crm(c: &mut rightsflow::config::Config) {
    let dataset = c.data_dir.join("crm.toml");
    std::fs::write(&dataset, rightsflow::fulfilment::DEMO_PLATFORM_DATASET).unwrap();
    c.fulfilment.systems = vec![rightsflow::config::SystemConfig {
        label: Some("会员中心".into()),
        ..rightsflow::config::SystemConfig::sql("crm", "/nonexistent-folder/crm.db", dataset)
    }];
}

on_both_backends!(a_failing_system_is_retried_then_shown_to_staff, |c| {
    crate::fulfilment::unreachable_crm(c);
    c.worker.max_attempts = 2;
    c.worker.retry_base_seconds = 1;
});

/// A staff identity check and the two approvals a deletion needs.
pub(crate) async fn approve_deletion(app: &TestApp, admin: &str, reviewer: &str, id: &str) {
    app.staff_check(admin, id).await;
    app.act_ok(admin, id, json!({ "command": "approve" })).await;
    app.act_ok(reviewer, id, json!({ "command": "approve" }))
        .await;
}

/// Runs the worker by hand until the queue has nothing due.
pub(crate) async fn drain(app: &TestApp) {
    let worker = std::sync::Arc::new(rightsflow::notifications::Worker::new(
        app.services.clone(),
        app.notifier.clone(),
    ));
    tokio::task::spawn_blocking(move || {
        let stop = rightsflow::notifications::Shutdown::default();
        while worker.run_once(&stop).unwrap() > 0 {}
    })
    .await
    .unwrap();
}

async fn a_withdrawal_before_the_task_runs_cancels_it_and_nothing_is_touched(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let sub = app.submit("deletion", "cn").await;
    drain(&app).await;
    let session = app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    approve_deletion(&app, &admin, &reviewer, &id).await;
    // One pass plans the task (its own row waits for the next pass)...
    let worker = std::sync::Arc::new(rightsflow::notifications::Worker::new(
        app.services.clone(),
        app.notifier.clone(),
    ));
    tokio::task::spawn_blocking(move || {
        worker
            .run_once(&rightsflow::notifications::Shutdown::default())
            .unwrap()
    })
    .await
    .unwrap();
    let (db, rid) = (app.services.db().clone(), id.clone());
    let tasks = move || {
        let (db, rid) = (db.clone(), rid.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                rightsflow::storage::tasks::for_request(&mut db.conn().unwrap(), &rid).unwrap()
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(tasks().await.len(), 1);
    assert_eq!(tasks().await[0].task.status, "pending");
    // ...and the subject withdraws before it runs: nothing had changed yet, so they may.
    let res = app
        .subject_post(&sub.reference, "withdraw", &session, &json!({}))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    drain(&app).await;
    assert_eq!(tasks().await[0].task.status, "cancelled");
    let view = app.staff_get(&admin, &id).await;
    assert_eq!(view["status"]["code"], "withdrawn");
    assert!(view["fulfilment_started_at"].is_null());
    // The platform still holds everything of his.
    let d = Dataset::parse(DEMO_PLATFORM_DATASET).unwrap();
    let path = app
        .data_dir()
        .join("demo-platform.db")
        .display()
        .to_string();
    let mut t = Target::open(&path).unwrap();
    let found = sql::access(&mut t, &d, &li_lei_by_email(), &[]).unwrap();
    assert_eq!(rows_of(&found, "browsing_history").len(), 2);
    assert_eq!(rows_of(&found, "users")[0]["name"], "李雷");
}
on_both_backends!(
    a_withdrawal_before_the_task_runs_cancels_it_and_nothing_is_touched,
    |c| {
        c.fulfilment.demo_platform = true;
        c.worker.in_serve = false;
    }
);

async fn a_reviewer_records_why_a_task_cannot_be_done_and_the_request_completes(app: TestApp) {
    let admin = app.admin_token().await;
    app.staff("agent", Role::Agent).await;
    let sub = app.submit("access", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    let admin_console = crate::console::Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page_path = format!("/console/requests/{id}");
    let mut page = String::new();
    for _ in 0..200 {
        page = admin_console.page(&page_path).await;
        if page.contains("data-state=\"failed\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let task = page
        .split("/tasks/")
        .nth(1)
        .and_then(|t| t.split('/').next())
        .expect("a waive form on the failed task")
        .to_owned();
    let waive = format!("/console/requests/{id}/tasks/{task}/waive");
    // An agent may not; an empty reason is refused; neither changes anything.
    let agent = crate::console::Console::sign_in(
        &app,
        "agent@rightsflow.test",
        crate::helpers::STAFF_PASSWORD,
    )
    .await;
    let res = agent.post(&waive, &[("reason", "不做了")]).await;
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    let res = admin_console.post(&waive, &[("reason", "  ")]).await;
    assert_eq!(res.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.staff_get(&admin, &id).await["status"]["code"],
        "in_progress"
    );
    // A reviewer's reason: the task is waived, the request completes and says why.
    let reason = "该系统中的订单须依法保存三年（《电子商务法》第三十一条）";
    let res = admin_console.post(&waive, &[("reason", reason)]).await;
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    let view = app.staff_get(&admin, &id).await;
    assert_eq!(view["status"]["code"], "completed", "{view}");
    let complete = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["command"] == "complete")
        .unwrap()["details"]["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        complete.contains(reason) && complete.contains("会员中心"),
        "{complete}"
    );
    assert!(notes(&view)
        .iter()
        .any(|n| n.contains("waived") && n.contains(reason)));
    let page = admin_console.page(&page_path).await;
    assert!(page.contains("data-state=\"waived\""));
    // Nothing was found, so no report claims otherwise.
    let (db, rid) = (app.services.db().clone(), id.clone());
    let results = tokio::task::spawn_blocking(move || {
        let now = rightsflow::storage::to_db_time(chrono::Utc::now());
        rightsflow::storage::results::live_for_request(&mut db.conn().unwrap(), &rid, now).unwrap()
    })
    .await
    .unwrap();
    assert!(results.is_empty(), "no report when nothing was found");
    // Ended: a second waiver is refused.
    let res = admin_console.post(&waive, &[("reason", reason)]).await;
    assert_eq!(res.status(), reqwest::StatusCode::CONFLICT);
}
on_both_backends!(
    a_reviewer_records_why_a_task_cannot_be_done_and_the_request_completes,
    |c| {
        crate::fulfilment::unreachable_crm(c);
        c.worker.max_attempts = 1;
    }
);

/// Each user's consent flags in the demo platform, read with plain SQL.
fn consent_flags(app: &TestApp) -> Vec<(i64, bool, bool, bool, bool)> {
    #[derive(diesel::QueryableByName)]
    struct Flags {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        consent_recommendations: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        consent_partner_sharing: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        consent_location: bool,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        consent_marketing: bool,
    }
    use diesel::{Connection, RunQueryDsl};
    let path = app.data_dir().join("demo-platform.db");
    let mut c = diesel::SqliteConnection::establish(&path.display().to_string()).unwrap();
    let rows: Vec<Flags> = diesel::sql_query(
        "SELECT id, consent_recommendations, consent_partner_sharing, consent_location, consent_marketing FROM users ORDER BY id",
    )
    .load(&mut c)
    .unwrap();
    rows.into_iter()
        .map(|f| {
            (
                f.id,
                f.consent_recommendations,
                f.consent_partner_sharing,
                f.consent_location,
                f.consent_marketing,
            )
        })
        .collect()
}

async fn a_consent_withdrawal_reaches_the_platform_database(app: TestApp) {
    let admin = app.admin_token().await;
    let everyone = vec![
        (1001, true, true, true, true),
        (1002, true, true, true, true),
        (1003, true, true, true, true),
    ];
    assert_eq!(consent_flags(&app), everyone);
    // Li Lei withdraws partner sharing and marketing (by the email he proves).
    let sub = app.submit("consent_withdrawal", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    let done = wait_for_status(&app, &admin, &id, "completed").await;
    assert_eq!(
        consent_flags(&app),
        vec![
            (1001, true, false, true, false),
            (1002, true, true, true, true),
            (1003, true, true, true, true),
        ],
        "only his two flags"
    );
    assert!(
        notes(&done)
            .iter()
            .any(|n| n.contains("(consent_withdrawal): consent flags cleared on 2 rows")),
        "{done}"
    );
    assert!(
        done.to_string().contains("已撤回您选择的同意"),
        "the consent summary: {done}"
    );
}
on_both_backends!(a_consent_withdrawal_reaches_the_platform_database, |c| {
    c.fulfilment.demo_platform = true
});

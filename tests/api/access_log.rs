//! The audit log, on SQLite and PostgreSQL: sign-ins (and failed ones), account and role
//! changes, who looked at which request and who exported what are logged; only auditors read
//! the log (API and console page); `rightsflow audit verify` checks its chain and names the
//! entry changed in the database.

use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;

use crate::audit::verify;
use crate::console::Console;
use crate::helpers::{error_code, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, STAFF_PASSWORD};
use crate::on_both_backends;
use rightsflow::domain::Role;

async fn log(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .get_with(&format!("/api/v1/audit/log?{query}"), token)
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    res.json().await.unwrap()
}

async fn who_looked_at_which_request_is_logged_for_auditors(app: TestApp) {
    let admin = app.admin_token().await;
    let res = app.login(ADMIN_EMAIL, "not the password").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (agent_id, agent) = app.staff("agent7", Role::Agent).await;
    let (_, auditor) = app.staff("auditor7", Role::Auditor).await;

    let sub = app.submit("access", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    // The agent opens the request.
    let res = app
        .get_with(&format!("/api/v1/staff/requests/{id}"), &agent)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The admin makes the agent a reviewer, in the console.
    let console = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = console
        .post(
            &format!("/console/staff/{agent_id}"),
            &[("role", "reviewer")],
        )
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());

    // Who looked at this request: the agent (by email and role), and the admin who found it.
    let looked = log(&app, &auditor, &format!("request={}", sub.reference)).await;
    let items = looked["items"].as_array().unwrap();
    let agent_look = items
        .iter()
        .find(|e| e["actor"]["email"] == "agent7@rightsflow.test")
        .unwrap_or_else(|| panic!("{looked}"));
    assert_eq!(agent_look["action"], "request.viewed");
    assert_eq!(agent_look["actor"]["role"], "agent");
    assert_eq!(agent_look["request"]["reference"], sub.reference.as_str());
    assert!(
        items.iter().all(|e| e["request"]["id"] == id.as_str()),
        "{looked}"
    );

    // The role change, by the admin, naming the account.
    let changed = log(&app, &auditor, "action=staff.role_changed").await;
    assert_eq!(changed["total"], 1, "{changed}");
    let e = &changed["items"][0];
    assert_eq!(e["actor"]["email"], ADMIN_EMAIL);
    assert_eq!(e["details"]["account"], agent_id.as_str());
    assert_eq!(e["details"]["role"], "reviewer");
    // Sign-ins, the failed one too.
    let failed = log(&app, &auditor, "action=staff.sign_in_failed").await;
    assert_eq!(failed["total"], 1, "{failed}");
    assert_eq!(failed["items"][0]["details"]["outcome"], "bad_credentials");
    let ok = log(&app, &auditor, "action=staff.sign_in").await;
    assert!(ok["total"].as_i64().unwrap() >= 3, "{ok}");

    // Auditors only: not the admin, not the agent, not without a token.
    for token in [&admin, &agent] {
        let res = app.get_with("/api/v1/audit/log", token).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::FORBIDDEN, "not_permitted".into())
        );
    }
    let res = app
        .client
        .get(app.url("/api/v1/audit/log"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A malformed reference, and pages before the first or past any list (schemathesis found
    // the last one answered 500: the offset overflowed).
    for query in [
        "request=DSR-%27%3B--",
        "page=0",
        "page=1000001",
        "page=2598320686578654208",
    ] {
        let res = app
            .get_with(&format!("/api/v1/audit/log?{query}"), &auditor)
            .await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_filter".into()),
            "{query}"
        );
    }

    // The auditor's console page shows the agent's look; the admin's is refused.
    let watcher = Console::sign_in(&app, "auditor7@rightsflow.test", STAFF_PASSWORD).await;
    let page = watcher
        .page(&format!("/console/audit?request={}", sub.reference))
        .await;
    assert!(page.contains("agent7@rightsflow.test"), "{page}");
    assert!(page.contains("查看请求"), "{page}");
    assert_eq!(
        console.get("/console/audit").await.status(),
        StatusCode::FORBIDDEN
    );

    // The log's chain verifies; one changed entry is named.
    let (ok, out) = verify(&app);
    assert!(ok, "{out}");
    assert!(out.contains("audit log intact: "), "{out}");
    let seq = e["seq"].as_i64().unwrap();
    let s = app.services.clone();
    tokio::task::spawn_blocking(move || {
        use rightsflow::storage::schema::audit_log;
        diesel::update(audit_log::table.filter(audit_log::seq.eq(seq)))
            .set(audit_log::details.eq(r#"{"account":"someone else","role":"reviewer"}"#))
            .execute(&mut *s.db().conn().unwrap())
            .unwrap();
    })
    .await
    .unwrap();
    let (ok, out) = verify(&app);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "audit log broken at entry {seq}: its content does not match its hash"
        )),
        "{out}"
    );
}
on_both_backends!(who_looked_at_which_request_is_logged_for_auditors);

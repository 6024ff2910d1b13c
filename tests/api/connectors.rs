//! The HTTP connector and manual tasks through the whole application, on SQLite and
//! PostgreSQL, against a data system stand-in on loopback (`HttpCapture`: a boundary we do not
//! own, played by a real HTTP server that checks and makes signatures with the shared secret).
//!
//! - Our calls are signed (timestamp + HMAC over the body) with the system's first secret and
//!   carry the task id as the idempotency key; an answer signed with any of its secrets
//!   (rotation) is believed, one signed with another secret is refused, retried, then shown to
//!   staff as failed.
//! - A callback with no signature, the wrong secret, an old timestamp or a changed body is
//!   refused with 401 and changes nothing; the right one is recorded once (a replay gets 409).
//! - A manual checklist task waits for staff, who mark it done with what they did and the
//!   evidence; an auditor cannot, an empty note is refused.

use std::sync::Arc;

use reqwest::StatusCode;
use rightsflow::auth::signing::{signature, verify};
use rightsflow::config::{ConnectorKind, Secret, SystemConfig};
use rightsflow::domain::details::DataCategory;
use rightsflow::domain::Role;

use serde_json::{json, Value};

use crate::fulfilment::{approve_deletion, notes, wait_for_status};
use crate::helpers::{error_code, spawn_app_with, Backend, TestApp};
use crate::smtp::{Captured, HttpCapture, Responder};

const NEW_SECRET: &str = "crm-secret-2026-11-new-0123456789abcdef";
const OLD_SECRET: &str = "crm-secret-2026-05-old-0123456789abcdef";
const FORGED: &str = "not-the-crm-secret-at-all-0123456789abc";

fn header<'a>(c: &'a Captured, name: &str) -> Option<&'a str> {
    c.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn signed(secret: &str, status: u16, body: Value) -> (u16, Vec<(String, String)>, String) {
    let body = body.to_string();
    let ts = chrono::Utc::now().timestamp();
    (
        status,
        vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Rightsflow-Timestamp".into(), ts.to_string()),
            (
                "X-Rightsflow-Signature".into(),
                signature(secret, ts, &body),
            ),
        ],
        body,
    )
}

/// The CRM: answers access at once with the subject's membership, accepts deletions for a
/// callback; signs with the old secret (still configured on our side: rotation).
fn crm() -> Responder {
    Arc::new(|c: &Captured| {
        let task: Value = serde_json::from_str(&c.1).unwrap_or_default();
        match task["action"].as_str() {
            Some("access") => signed(
                OLD_SECRET,
                200,
                json!({ "status": "done", "result": { "tables": [ {
                    "table": "members",
                    "categories": { "level": "account", "points": "account" },
                    "labels": { "level": "会员等级 / Membership level" },
                    "rows": [ { "level": "金卡会员", "points": 1200, "internal_note": "not for the subject" } ]
                } ] } }),
            ),
            _ => signed(OLD_SECRET, 202, json!({ "status": "accepted" })),
        }
    })
}

/// A billing system whose answers are signed with a secret we do not have.
fn billing() -> Responder {
    Arc::new(|_: &Captured| {
        signed(
            FORGED,
            200,
            json!({ "status": "done", "result": { "tables": [] } }),
        )
    })
}

fn http_system(
    name: &str,
    label: &str,
    url: String,
    categories: Vec<DataCategory>,
) -> SystemConfig {
    SystemConfig {
        label: Some(label.into()),
        connector: ConnectorKind::Http,
        url: Some(Secret::new(url)),
        dataset: None,
        secrets: vec![Secret::new(NEW_SECRET), Secret::new(OLD_SECRET)],
        categories,
        instructions: None,
        timeout_seconds: 5,
        ..SystemConfig::sql(name, "", "".into())
    }
}

async fn task_of(
    app: &TestApp,
    request_id: &str,
    system: &str,
) -> rightsflow::storage::tasks::TaskView {
    for _ in 0..150 {
        let found = app
            .tasks_of(request_id)
            .await
            .into_iter()
            .find(|t| t.task.system == system);
        if let Some(t) = found {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no {system} task")
}

/// Waits until the task's outbox row is `run_status` (done: sent; failed: retries used up).
async fn wait_run(
    app: &TestApp,
    request_id: &str,
    system: &str,
    run_status: &str,
) -> rightsflow::storage::tasks::TaskView {
    for _ in 0..200 {
        let t = task_of(app, request_id, system).await;
        if t.run_status == run_status {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the {system} task never became {run_status}")
}

async fn post_callback(
    app: &TestApp,
    task: &str,
    ts: Option<i64>,
    sig: Option<String>,
    body: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/fulfilment/tasks/{task}/callback")))
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(ts) = ts {
        req = req.header("X-Rightsflow-Timestamp", ts.to_string());
    }
    if let Some(sig) = sig {
        req = req.header("X-Rightsflow-Signature", sig);
    }
    req.send().await.unwrap()
}

async fn http_and_manual_systems(backend: Backend) {
    let crm_end = HttpCapture::start_with(crm()).await;
    let billing_end = HttpCapture::start_with(billing()).await;
    let (crm_url, billing_url) = (crm_end.url(), billing_end.url());
    let Some(app) = spawn_app_with(backend, move |c| {
        c.worker.max_attempts = 2;
        c.worker.retry_base_seconds = 1;
        c.fulfilment.systems = vec![
            http_system(
                "crm",
                "会员中心 / Member centre",
                crm_url,
                vec![DataCategory::Account],
            ),
            SystemConfig {
                keys: vec![rightsflow::fulfilment::dataset::IdentityKey::PlatformUserId],
                ..http_system(
                    "billing",
                    "结算系统 / Billing",
                    billing_url,
                    vec![DataCategory::Orders],
                )
            },
            SystemConfig {
                label: Some("纸质档案 / Paper files".into()),
                connector: ConnectorKind::Manual,
                url: None,
                dataset: None,
                categories: vec![DataCategory::Identity],
                instructions: Some("销毁客户的纸质档案 / Shred the customer's paper file".into()),
                ..SystemConfig::sql("paper", "", "".into())
            },
        ];
    })
    .await
    else {
        return crate::helpers::skip("connectors::http_and_manual_systems");
    };
    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let (_, auditor) = app.staff("auditor", Role::Auditor).await;

    // Access (account, orders): the CRM answers at once; billing's answer is forged.
    let sub = app.submit("access", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    let crm_task = task_of(&app, &id, "crm").await;
    let sent = crm_end.wait_for(1, 10).await;
    // Our call: signed with the first secret, the task id as idempotency key, what is asked.
    let call = &sent[0];
    assert_eq!(
        verify(
            &[NEW_SECRET.to_owned()],
            header(call, "x-rightsflow-timestamp"),
            header(call, "x-rightsflow-signature"),
            &call.1,
            chrono::Utc::now().timestamp()
        ),
        Ok(())
    );
    assert_eq!(
        header(call, "idempotency-key"),
        Some(crm_task.task.id.as_str())
    );
    let body: Value = serde_json::from_str(&call.1).unwrap();
    assert_eq!(body["action"], "access");
    assert_eq!(body["request"], sub.reference.as_str());
    assert_eq!(body["subject"]["email"], "li.lei@example.com");
    assert!(body["callback_url"].as_str().unwrap().ends_with(&format!(
        "/api/v1/fulfilment/tasks/{}/callback",
        crm_task.task.id
    )));
    assert!(
        app.tasks_of(&id)
            .await
            .iter()
            .all(|t| t.task.system != "paper"),
        "identity was not asked for"
    );
    // Billing understands only platform user ids: the email is not sent to it.
    let billed: Value = serde_json::from_str(&billing_end.wait_for(1, 10).await[0].1).unwrap();
    assert_eq!(billed["subject"]["email"], Value::Null);
    assert_eq!(billed["action"], "access");
    // The forged answer is refused, retried, then shown as failed; nothing of it is kept.
    let failed = wait_run(&app, &id, "billing", "failed").await;
    assert_eq!(failed.task.status, "pending");
    assert_eq!(failed.attempts, 2);
    assert!(
        failed.last_error.as_deref().unwrap().contains("refused"),
        "{:?}",
        failed.last_error
    );
    assert_eq!(task_of(&app, &id, "crm").await.task.status, "done");
    assert_eq!(
        app.staff_get(&admin, &id).await["status"]["code"],
        "in_progress"
    );
    // An admin records why billing cannot be done; the request completes with the CRM's data.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/staff/tasks/{}/waive", failed.task.id)))
        .bearer_auth(&admin)
        .json(&json!({ "reason": "结算系统正在迁移 / billing is being migrated" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    wait_for_status(&app, &admin, &id, "completed").await;
    let list: Value = app
        .get_with(
            &format!("/api/v1/requests/{}/results", sub.reference),
            &session,
        )
        .await
        .json()
        .await
        .unwrap();
    let rid = list["items"][0]["id"].as_str().unwrap();
    let report = app
        .get_with(
            &format!("/api/v1/requests/{}/results/{rid}", sub.reference),
            &session,
        )
        .await
        .text()
        .await
        .unwrap();
    for expected in [
        "会员中心 / Member centre",
        "会员等级 / Membership level",
        "金卡会员",
        "1200",
    ] {
        assert!(
            report.contains(expected),
            "{expected} missing from the report"
        );
    }
    assert!(
        !report.contains("not for the subject"),
        "a column not described as personal data"
    );

    // Deletion: the CRM accepts and will call back; the paper file is a checklist item.
    let sub = app.submit("deletion", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    approve_deletion(&app, &admin, &reviewer, &id).await;
    let crm_task = wait_run(&app, &id, "crm", "done").await;
    let paper = wait_run(&app, &id, "paper", "done").await;
    assert_eq!(crm_task.task.status, "pending", "waiting for the callback");
    assert_eq!(paper.task.status, "pending", "waiting for staff");
    let console = crate::console::Console::sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    // The registry page shows staff where requests go, without addresses or secrets.
    let systems = console.page("/console/systems").await;
    for expected in [
        "会员中心 / Member centre",
        "接口（HTTP，签名）",
        "纸质档案 / Paper files",
        "人工办理",
        "销毁客户的纸质档案",
    ] {
        assert!(
            systems.contains(expected),
            "{expected} missing from /console/systems"
        );
    }
    for secret in [NEW_SECRET, OLD_SECRET, "127.0.0.1"] {
        assert!(
            !systems.contains(secret),
            "{secret} shown on /console/systems"
        );
    }
    let page = console.page(&format!("/console/requests/{id}")).await;
    assert!(page.contains("已发送，等待该系统回报结果"), "{page}");
    assert!(page.contains("等待工作人员办理"));
    assert!(
        page.contains("销毁客户的纸质档案"),
        "the instructions are shown"
    );
    assert!(
        page.contains(&format!("/tasks/{}/done", paper.task.id)),
        "the done form"
    );

    // Callbacks that are not the CRM's change nothing.
    let outcome = json!({ "status": "done", "result": { "deleted": 3 } }).to_string();
    let now = chrono::Utc::now().timestamp();
    let task = crm_task.task.id.as_str();
    for (ts, sig, body, code) in [
        (None, None, outcome.clone(), "invalid_signature"),
        (
            Some(now),
            Some(signature(FORGED, now, &outcome)),
            outcome.clone(),
            "invalid_signature",
        ),
        (
            Some(now - 600),
            Some(signature(NEW_SECRET, now - 600, &outcome)),
            outcome.clone(),
            "stale_signature",
        ),
        (
            Some(now),
            Some(signature(NEW_SECRET, now, &outcome)),
            outcome.replace('3', "4"),
            "invalid_signature",
        ),
    ] {
        let res = post_callback(&app, task, ts, sig, &body).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNAUTHORIZED, code.to_owned())
        );
        assert_eq!(task_of(&app, &id, "crm").await.task.status, "pending");
    }
    let unknown = post_callback(
        &app,
        "no-such-task",
        Some(now),
        Some(signature(NEW_SECRET, now, &outcome)),
        &outcome,
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // The CRM's own callback (signed with the old secret, still accepted) is recorded once.
    let sig = signature(OLD_SECRET, now, &outcome);
    let res = post_callback(&app, task, Some(now), Some(sig.clone()), &outcome).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(task_of(&app, &id, "crm").await.task.status, "done");
    let replay = post_callback(&app, task, Some(now), Some(sig), &outcome).await;
    assert_eq!(replay.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.staff_get(&admin, &id).await["status"]["code"],
        "in_progress"
    );

    // The checklist item: an auditor may not, an empty note is refused, then an agent does it.
    let done = |token: String, body: Value| {
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v1/staff/tasks/{}/done", paper.task.id)),
        );
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = done(auditor.clone(), json!({ "what": "shredded" })).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = done(agent.clone(), json!({ "what": "  " })).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "note_required".to_owned())
    );
    assert_eq!(task_of(&app, &id, "paper").await.task.status, "pending");
    let res = done(
        agent.clone(),
        json!({ "what": "纸质档案已碎纸销毁", "evidence": "销毁证明 SH-2026-118" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Billing (whose answers we cannot trust) is recorded as not done, by a reviewer.
    let billing_task = task_of(&app, &id, "billing").await;
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/staff/tasks/{}/waive",
            billing_task.task.id
        )))
        .bearer_auth(&reviewer)
        .json(&json!({ "reason": "结算记录须保存五年 / billing records are kept five years" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let view = wait_for_status(&app, &admin, &id, "completed").await;
    let notes = notes(&view);
    assert!(notes.iter().any(|n| n.contains("done by hand: 纸质档案已碎纸销毁; evidence: 销毁证明 SH-2026-118")), "{notes:?}");
    assert!(
        notes
            .iter()
            .any(|n| n.contains("会员中心 / Member centre (deletion): done")),
        "{notes:?}"
    );
    // A CRM task is not marked done by hand.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/staff/tasks/{task}/done")))
        .bearer_auth(&admin)
        .json(&json!({ "what": "done" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn http_and_manual_systems_on_sqlite() {
    http_and_manual_systems(Backend::Sqlite).await;
}

#[tokio::test]
async fn http_and_manual_systems_on_postgres() {
    http_and_manual_systems(Backend::Postgres).await;
}

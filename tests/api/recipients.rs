//! Recipients (GDPR Art. 19), on SQLite and PostgreSQL: third parties the platform shares data
//! with are told of corrections, deletions and restrictions (one task each, by HTTP or by hand),
//! never of access requests; the subject sees on the portal who was told and whether.

use std::sync::Arc;

use rightsflow::config::{ConnectorKind, Secret, SystemConfig};
use rightsflow::domain::details::DataCategory;
use rightsflow::domain::Role;
use serde_json::{json, Value};

use crate::fulfilment::{approve_deletion, wait_for_status};
use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::smtp::{Captured, HttpCapture};

const SECRET: &str = "logistics-shared-secret-0123456789abcdef";

async fn task_systems(app: &TestApp, id: &str) -> Vec<(String, String)> {
    app.tasks_of(id)
        .await
        .into_iter()
        .map(|t| (t.task.system, t.task.status))
        .collect()
}

async fn recipients_are_told(backend: Backend) {
    // The logistics partner of the policy's section 五 confirms at once, signed.
    let partner = HttpCapture::start_with(Arc::new(|_: &Captured| {
        let body = json!({ "status": "done", "result": { "deleted_waybills": 2 } }).to_string();
        let ts = chrono::Utc::now().timestamp();
        (
            200,
            vec![
                ("X-Rightsflow-Timestamp".into(), ts.to_string()),
                (
                    "X-Rightsflow-Signature".into(),
                    rightsflow::auth::signing::signature(SECRET, ts, &body),
                ),
            ],
            body,
        )
    }))
    .await;
    let url = partner.url();
    let Some(app) = spawn_app_with(backend, move |c| {
        c.fulfilment.demo_platform = true;
        c.fulfilment.recipients = vec![
            SystemConfig {
                label: Some("顺丰速运 / SF Express".into()),
                connector: ConnectorKind::Http,
                url: Some(Secret::new(url)),
                dataset: None,
                secrets: vec![Secret::new(SECRET)],
                categories: vec![DataCategory::Orders],
                purpose: Some("配送您购买的商品 / delivering your orders".into()),
                ..SystemConfig::sql("logistics", "", "".into())
            },
            SystemConfig {
                label: Some("广告合作方 / Ad partner".into()),
                connector: ConnectorKind::Manual,
                url: None,
                dataset: None,
                categories: vec![DataCategory::BrowsingHistory],
                instructions: Some(
                    "邮件通知广告合作方删除该用户的数据 / email the ad partner".into(),
                ),
                purpose: Some("个性化广告 / personalised advertising".into()),
                ..SystemConfig::sql("ads", "", "".into())
            },
        ];
    })
    .await
    else {
        return crate::helpers::skip("recipients::recipients_are_told");
    };
    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;

    // Access: the platform only; recipients are not told of access requests.
    let sub = app.submit("access", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    wait_for_status(&app, &admin, &id, "completed").await;
    let systems: Vec<String> = task_systems(&app, &id)
        .await
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(systems, ["weimacms-demo"]);

    // Deletion of the account: the platform, and both recipients.
    let sub = app.submit("deletion", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    approve_deletion(&app, &admin, &reviewer, &id).await;
    let sent = partner.wait_for(1, 10).await;
    let body: Value = serde_json::from_str(&sent[0].1).unwrap();
    assert_eq!(body["recipient"], true);
    assert_eq!(body["action"], "deletion");
    assert_eq!(body["subject"]["email"], "li.lei@example.com");
    let mut tasks = vec![];
    for _ in 0..100 {
        tasks = task_systems(&app, &id).await;
        if tasks.iter().any(|(s, st)| s == "logistics" && st == "done")
            && tasks
                .iter()
                .any(|(s, st)| s == "weimacms-demo" && st == "done")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tasks.sort();
    assert_eq!(
        tasks,
        [
            ("ads".to_owned(), "pending".to_owned()),
            ("logistics".to_owned(), "done".to_owned()),
            ("weimacms-demo".to_owned(), "done".to_owned())
        ]
    );
    // The portal shows the subject who was told, and who is being told.
    let page = app
        .client
        .get(app.url(&format!("/requests/{}", sub.reference)))
        .header("Cookie", format!("rf_session={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("已告知的第三方"), "{page}");
    for expected in [
        "顺丰速运 / SF Express",
        "配送您购买的商品",
        "订单",
        "已告知",
        "广告合作方 / Ad partner",
        "正在告知",
    ] {
        assert!(
            page.contains(expected),
            "{expected} missing from the portal page"
        );
    }
    // Staff tell the ad partner by email and say so; the request completes.
    let ads_task = app
        .tasks_of(&id)
        .await
        .into_iter()
        .find(|t| t.task.system == "ads")
        .unwrap()
        .task
        .id;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/staff/tasks/{ads_task}/done")))
        .bearer_auth(&admin)
        .json(&json!({ "what": "已发邮件通知广告合作方删除", "evidence": "邮件 2026-11-29 10:02" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    wait_for_status(&app, &admin, &id, "completed").await;
}

#[tokio::test]
async fn recipients_are_told_on_sqlite() {
    recipients_are_told(Backend::Sqlite).await;
}

#[tokio::test]
async fn recipients_are_told_on_postgres() {
    recipients_are_told(Backend::Postgres).await;
}

//! The restriction lifecycle on SQLite and PostgreSQL, with the demo platform: a restriction
//! stays in force after its request completes; only a reviewer lifts it, with a reason; the
//! subject is told first, and the platform's flags are cleared only when the notice period
//! has run (simulated by moving the lifting tasks' time forward in the database).

use diesel::prelude::*;
use reqwest::StatusCode;
use rightsflow::domain::Role;
use rightsflow::fulfilment::sql::Target;
use serde_json::{json, Value};

use crate::fulfilment::{flag_count, notes, wait_for_status};
use crate::helpers::{error_code, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::on_both_backends;

fn flags(app: &TestApp) -> usize {
    let path = app.data_dir().join("demo-platform.db");
    flag_count(&mut Target::open(&path.display().to_string()).unwrap())
}

async fn lift(app: &TestApp, token: &str, id: &str, reason: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/staff/requests/{id}/restriction/lift")))
        .bearer_auth(token)
        .json(&json!({ "reason": reason }))
        .send()
        .await
        .unwrap()
}

async fn outbox_of(app: &TestApp, id: &str) -> Vec<rightsflow::storage::outbox::OutboxRow> {
    let (s, id) = (app.services.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        rightsflow::storage::outbox::for_request(&mut s.db().conn().unwrap(), &id).unwrap()
    })
    .await
    .unwrap()
}

async fn a_restriction_stays_until_a_reviewer_lifts_it_with_notice(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let sub = app.submit("restriction", "eu").await;
    app.verify_by_code(&sub.reference).await;
    let id = app.id_of(&admin, &sub.reference).await;
    // Nothing to lift before a restriction is in force.
    assert_eq!(
        error_code(lift(&app, &reviewer, &id, "x").await).await,
        (StatusCode::CONFLICT, "not_restricted".to_owned())
    );
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    wait_for_status(&app, &admin, &id, "completed").await;
    assert_eq!(flags(&app), 3, "Li Lei's user row and two orders");
    let console = crate::console::Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = console.page(&format!("/console/requests/{id}")).await;
    assert!(page.contains("限制处理正在生效"), "{page}");
    assert!(page.contains(&format!("/console/requests/{id}/restriction/lift")));

    // Agents may not lift it; a reason is required.
    assert_eq!(
        lift(&app, &agent, &id, "核实完毕").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        error_code(lift(&app, &reviewer, &id, " ").await).await.1,
        "reason_required"
    );
    let res = lift(&app, &reviewer, &id, "准确性已核实，限制理由不再成立").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let at: Value = res.json().await.unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(at["lifts_at"].as_str().unwrap()).unwrap();
    let days = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!(
        (7 * 24 - 1..=7 * 24).contains(&days),
        "seven days' notice: {days} h"
    );
    assert_eq!(
        error_code(lift(&app, &reviewer, &id, "again").await)
            .await
            .1,
        "already_lifting"
    );

    // The subject is told first (the restriction_lifting message, with the date) ...
    let mut told = false;
    for _ in 0..100 {
        told = outbox_of(&app, &id).await.iter().any(|r| {
            r.kind == "email"
                && r.payload.contains("即将解除")
                && r.payload.contains(&at.format("%Y年%m月%d日").to_string())
        });
        if told {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(told, "the subject's notice was sent");
    // ... while the restriction stays in force.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(flags(&app), 3, "not lifted before the notice period ends");
    let view = app.staff_get(&admin, &id).await;
    assert_eq!(view["status"]["code"], "completed");
    assert!(notes(&view)
        .iter()
        .any(|n| n.starts_with("restriction to be lifted on") && n.contains("准确性已核实")));
    let page = console.page(&format!("/console/requests/{id}")).await;
    assert!(
        page.contains("已通知申请人，限制将于以下时间解除"),
        "{page}"
    );

    // Seven days later (the lifting rows' time moved to now), the flags are cleared.
    let (s, rid) = (app.services.clone(), id.clone());
    tokio::task::spawn_blocking(move || {
        use rightsflow::storage::schema::{fulfilment_tasks, outbox};
        let mut conn = s.db().conn().unwrap();
        let rows: Vec<String> = fulfilment_tasks::table
            .filter(fulfilment_tasks::request_id.eq(&rid))
            .filter(fulfilment_tasks::action.eq("lift_restriction"))
            .select(fulfilment_tasks::outbox_id)
            .load(&mut *conn)
            .unwrap();
        assert_eq!(rows.len(), 1, "one system restricted");
        let past =
            rightsflow::storage::to_db_time(chrono::Utc::now() - chrono::Duration::seconds(1));
        diesel::update(outbox::table.filter(outbox::id.eq_any(rows)))
            .set(outbox::run_after.eq(past))
            .execute(&mut *conn)
            .unwrap();
    })
    .await
    .unwrap();
    for _ in 0..100 {
        if flags(&app) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(flags(&app), 0, "lifted");
    let mut view = Value::Null;
    for _ in 0..50 {
        view = app.staff_get(&admin, &id).await;
        if notes(&view)
            .iter()
            .any(|n| n.contains("rows no longer restricted"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        notes(&view)
            .iter()
            .any(|n| n.contains("(lift_restriction): 3 rows no longer restricted")),
        "{view}"
    );
    assert_eq!(
        view["status"]["code"], "completed",
        "the request stays completed"
    );
    let page = console.page(&format!("/console/requests/{id}")).await;
    assert!(page.contains("限制已在各系统中解除"), "{page}");
}
on_both_backends!(
    a_restriction_stays_until_a_reviewer_lifts_it_with_notice,
    |c| { c.fulfilment.demo_platform = true }
);

//! Retention, on SQLite and PostgreSQL: a request that ended longer ago than its evidence period
//! is anonymised — contact, details, event details, messages gone; the skeleton and every hash
//! kept, so `audit verify` still passes — once, by whichever run claims it; open requests and
//! recent ones are left alone; expired verification challenges are deleted.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

use crate::audit::verify;
use crate::console::Console;
use crate::helpers::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::on_both_backends;
use rightsflow::storage::schema::{anonymised_requests, requests, verification_challenges};

async fn run(app: &TestApp) -> usize {
    let s = app.services.clone();
    tokio::task::spawn_blocking(move || {
        rightsflow::service::retention::run(&s, 3 * 365, Utc::now()).unwrap()
    })
    .await
    .unwrap()
}

async fn sql<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut rightsflow::storage::DbConnection) -> T + Send + 'static,
) -> T {
    let s = app.services.clone();
    tokio::task::spawn_blocking(move || f(&mut s.db().conn().unwrap()))
        .await
        .unwrap()
}

async fn ended_requests_are_anonymised_after_their_evidence_period(app: TestApp) {
    let admin = app.admin_token().await;
    // One request completed long ago, one completed now, one still open: same subject.
    let mut ended = vec![];
    for _ in 0..2 {
        let sub = app.submit("correction", "cn").await;
        app.verify_by_code(&sub.reference).await;
        let id = app.id_of(&admin, &sub.reference).await;
        for command in [
            json!({ "command": "note", "text": "已核实身份证" }),
            json!({ "command": "approve" }),
            json!({ "command": "complete", "summary": "地址已更正为上海市浦东新区" }),
        ] {
            app.act_ok(&admin, &id, command).await;
        }
        ended.push((id, sub.reference));
    }
    let open = app.submit("access", "cn").await;
    app.verify_by_code(&open.reference).await;
    let (old_id, old_ref) = ended[0].clone();
    let long_ago = (Utc::now() - Duration::days(3 * 365 + 10)).naive_utc();
    let target = old_id.clone();
    sql(&app, move |c| {
        diesel::update(requests::table.filter(requests::id.eq(&target)))
            .set(requests::closed_at.eq(Some(long_ago)))
            .execute(c)
            .unwrap();
        // A verification challenge that expired two days ago, of the open request.
        diesel::update(verification_challenges::table)
            .set(verification_challenges::expires_at.eq(Utc::now().naive_utc() - Duration::days(2)))
            .execute(c)
            .unwrap();
    })
    .await;
    let (ok, out) = verify(&app);
    assert!(ok, "{out}");

    assert!(run(&app).await >= 1);
    // Anonymised once: a second run (another instance, the next tick) finds nothing to do.
    run(&app).await;
    let (claimed, challenges) = sql(&app, |c| {
        (
            anonymised_requests::table
                .select(anonymised_requests::request_id)
                .load::<String>(c)
                .unwrap(),
            verification_challenges::table
                .count()
                .get_result::<i64>(c)
                .unwrap(),
        )
    })
    .await;
    assert_eq!(claimed, vec![old_id.clone()]);
    assert_eq!(challenges, 0, "expired challenges deleted");

    // What staff see of it now: no contact, no details; its kind, dates and status kept.
    let view = app.staff_get(&admin, &old_id).await;
    assert_eq!(view["subject"]["email"], serde_json::Value::Null, "{view}");
    assert_eq!(view["subject"]["name"], serde_json::Value::Null);
    assert_eq!(view["details"], json!({ "anonymised": true }));
    assert_eq!(view["status"]["code"], "completed", "{view}");
    // The recent one and the open one are untouched.
    for id in [&ended[1].0, &app.id_of(&admin, &open.reference).await] {
        let v = app.staff_get(&admin, id).await;
        assert_eq!(v["subject"]["email"], "li.lei@example.com");
    }
    // The chains still verify (the events' details were replaced by their digests).
    let (ok, out) = verify(&app);
    assert!(ok, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
    // Search by the subject's email no longer finds the anonymised one.
    let console = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = console.page("/console/queue?q=li.lei%40example.com").await;
    assert!(page.contains(&open.reference) && page.contains(&ended[1].1));
    assert!(
        !page.contains(&old_ref),
        "anonymised request found by email"
    );
    // The audit log says it was done.
    let (_, auditor) = app
        .staff("retention-auditor", rightsflow::domain::Role::Auditor)
        .await;
    let res = app
        .get_with(
            &format!("/api/v1/audit/log?action=request.anonymised&request={old_ref}"),
            &auditor,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let log: serde_json::Value = res.json().await.unwrap();
    assert_eq!(log["total"], 1, "{log}");
    // Every change above moved the kept counts as a count of the rows does.
    app.assert_tallies_true();
}
on_both_backends!(ended_requests_are_anonymised_after_their_evidence_period);

//! The staff queue: filters, sort by due date, pages, counts.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use rightsflow::domain::Role;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::on_both_backends;

fn references(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_queue_filters_sorts_and_pages(app: TestApp) {
    let (me, agent) = app.staff("agent", Role::Agent).await;
    let log = |days_ago: i64, kind: &str, jurisdiction: &str| {
        json!({ "kind": kind, "jurisdiction": jurisdiction, "channel": "email",
                "received_at": (Utc::now() - Duration::days(days_ago)).to_rfc3339(),
                "subject": { "email": "q@example.com" }, "details": crate::helpers::details_for(kind) })
    };
    // us-ca is due 45 days after receipt, eu one month after: received 50 days ago is overdue.
    let mut made = Vec::new();
    for (days, kind, j) in [
        (50, "access", "us-ca"),
        (10, "deletion", "us-ca"),
        (20, "complaint", "eu"),
        (0, "access", "cn"),
    ] {
        let res = app
            .post_json("/api/v1/staff/requests", &log(days, kind, j), Some(&agent))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        made.push((
            v["reference"].as_str().unwrap().to_owned(),
            v["id"].as_str().unwrap().to_owned(),
        ));
    }
    let all = app.list(&agent, "").await;
    assert_eq!(all["total"], 4);
    // Soonest due first; the cn request (clock not started) last.
    assert_eq!(
        references(&all),
        vec![
            made[0].0.clone(),
            made[2].0.clone(),
            made[1].0.clone(),
            made[3].0.clone()
        ]
    );
    assert_eq!(all["items"][0]["overdue"], true);

    let overdue = app.list(&agent, "overdue=true").await;
    assert_eq!(references(&overdue), vec![made[0].0.clone()]);
    assert_eq!(app.list(&agent, "kind=access").await["total"], 2);
    assert_eq!(
        app.list(&agent, "jurisdiction=us-ca&kind=deletion").await["total"],
        1
    );
    assert_eq!(
        app.list(&agent, "status=awaiting_verification").await["total"],
        4
    );
    assert_eq!(app.list(&agent, "status=completed").await["total"], 0);
    let soon = (Utc::now() + Duration::days(20))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        references(&app.list(&agent, &format!("due_before={soon}")).await),
        vec![made[0].0.clone(), made[2].0.clone()]
    );

    let page = app.list(&agent, "limit=2&offset=2").await;
    assert_eq!(
        (
            page["total"].as_i64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(4), 2)
    );
    assert_eq!(
        references(&page),
        vec![made[1].0.clone(), made[3].0.clone()]
    );
    let newest_first = app.list(&agent, "sort=-received").await;
    assert_eq!(references(&newest_first)[0], made[3].0);

    app.act_ok(
        &agent,
        &made[1].1,
        json!({ "command": "assign", "assignee": me }),
    )
    .await;
    assert_eq!(
        references(&app.list(&agent, "assignee=me").await),
        vec![made[1].0.clone()]
    );

    for bad in [
        "status=lost",
        "limit=0",
        "limit=1000",
        "sort=alphabetical",
        "due_before=tomorrow",
        "overdue=maybe",
        "colour=red",
    ] {
        let res = app
            .client
            .get(app.url(&format!("/api/v1/staff/requests?{bad}")))
            .bearer_auth(&agent)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query".into()),
            "{bad}"
        );
    }
    // Every change above moved the kept counts as a count of the rows does.
    app.assert_tallies_true();
}
on_both_backends!(the_queue_filters_sorts_and_pages);

//! Requests going from submission to an end state through the API alone.

use chrono::{DateTime, Datelike, Duration, Utc};
use reqwest::StatusCode;
use rightsflow::domain::Role;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::on_both_backends;

const KINDS: [&str; 7] = [
    "access",
    "correction",
    "deletion",
    "restriction",
    "portability",
    "consent_withdrawal",
    "complaint",
];

fn commands(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["command"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_kind_reaches_completed(app: TestApp) {
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    for kind in KINDS {
        let sub = app.submit(kind, "cn").await;
        assert_eq!(sub.body["status"]["code"], "awaiting_verification");
        // The cn clock starts at verification, so there is no due date yet.
        assert!(sub.body["due"].is_null());
        let id = app.id_of(&agent, &sub.reference).await;

        // The subject enters the code they were sent.
        let session = app.verify_by_code(&sub.reference).await;
        let mut verified = app.staff_get(&agent, &id).await;
        if matches!(kind, "deletion" | "portability") {
            // A code alone is not enough to delete or export: staff check the evidence too.
            assert_eq!(
                verified["status"]["code"], "awaiting_verification",
                "{kind}"
            );
            verified = app.staff_check(&agent, &id).await;
        }
        assert!(
            verified["due"]["date"].is_string(),
            "verification starts the clock"
        );
        if kind == "consent_withdrawal" {
            // Approved automatically once verified.
            assert_eq!(verified["status"]["code"], "in_progress");
        } else {
            assert_eq!(verified["status"]["code"], "in_review");
            if matches!(kind, "deletion" | "portability") {
                let first = app
                    .act_ok(
                        &agent,
                        &id,
                        json!({ "command": "approve", "comment": "已核对" }),
                    )
                    .await;
                assert_eq!(
                    first["status"]["code"], "in_review",
                    "{kind}: one approval is not enough"
                );
            }
            let approved = app
                .act_ok(&reviewer, &id, json!({ "command": "approve" }))
                .await;
            assert_eq!(approved["status"]["code"], "in_progress");
        }
        // A consent withdrawal is completed by the system once the ledger has it (the worker
        // races any staff member who would try); every other kind by staff.
        let (done, said) = if kind == "consent_withdrawal" {
            let view = crate::fulfilment::wait_for_status(&app, &agent, &id, "completed").await;
            (view, "已撤回您选择的同意，相关处理已停止，平台已收到通知。")
        } else {
            let view = app
                .act_ok(
                    &agent,
                    &id,
                    json!({ "command": "complete", "summary": "已按您的要求处理完毕。" }),
                )
                .await;
            (view, "已按您的要求处理完毕。")
        };
        assert_eq!(done["status"]["code"], "completed", "{kind}");
        assert!(done["closed_at"].is_string());
        assert!(done["allowed_actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a == "note"));
        let trail = commands(&done);
        assert_eq!(trail.first().map(String::as_str), Some("submit"));
        assert_eq!(trail.last().map(String::as_str), Some("complete"));
        assert_eq!(
            done["version"].as_i64(),
            Some(trail.len() as i64),
            "one event per accepted command"
        );

        let seen: Value = app
            .subject_get(&sub.reference, &session)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(seen["status"]["code"], "completed");
        assert_eq!(seen["status"]["label"], "已完成");
        let last = seen["timeline"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap();
        assert_eq!(last["message"], said);
    }
    // Every change above moved the kept counts as a count of the rows does.
    app.assert_tallies_true();
}
on_both_backends!(every_kind_reaches_completed);

async fn rejection_carries_a_reason_the_subject_sees(app: TestApp) {
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let sub = app.submit("access", "cn").await;
    let id = app.id_of(&agent, &sub.reference).await;
    let session = app.verify_by_code(&sub.reference).await;

    assert_eq!(
        app.act_err(
            &reviewer,
            &id,
            json!({ "command": "reject", "explanation": "无" })
        )
        .await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body".into())
    );
    assert_eq!(
        app.act_err(
            &agent,
            &id,
            json!({ "command": "reject", "reason": "no_data_held", "explanation": "无" })
        )
        .await,
        (StatusCode::FORBIDDEN, "not_permitted".into())
    );

    let rejected = app
        .act_ok(&reviewer, &id, json!({ "command": "reject", "reason": "no_data_held", "explanation": "我们的系统中没有与您的联系方式相符的账户。" }))
        .await;
    assert_eq!(rejected["status"]["code"], "rejected");
    assert_eq!(rejected["rejection_reason"]["code"], "no_data_held");

    let res = app
        .client
        .get(app.url(&format!("/api/v1/requests/{}", sub.reference)))
        .bearer_auth(&session)
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["rejection_reason"]["label"], "No personal data held");
    let last = seen["timeline"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["event"], "reject");
    assert_eq!(
        last["message"],
        "我们的系统中没有与您的联系方式相符的账户。"
    );
    // Every change above moved the kept counts as a count of the rows does.
    app.assert_tallies_true();
}
on_both_backends!(rejection_carries_a_reason_the_subject_sees);

async fn the_subject_can_withdraw_and_nothing_else_happens_after(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("deletion", "eu").await;
    // A code opens a session (deletion still waits for a staff check); the subject withdraws.
    let session = app.verify_by_code(&sub.reference).await;
    let res = app
        .subject_post(
            &sub.reference,
            "withdraw",
            &session,
            &json!({ "reason": "我改主意了" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["status"]["code"], "withdrawn");
    assert_eq!(seen["allowed_actions"], json!([]));

    let again = app
        .subject_post(&sub.reference, "withdraw", &session, &json!({}))
        .await;
    assert_eq!(
        error_code(again).await,
        (StatusCode::CONFLICT, "request_closed".into())
    );
    let id = app.id_of(&admin, &sub.reference).await;
    assert_eq!(
        app.act_err(
            &admin,
            &id,
            json!({ "command": "verify", "method": "staff_check", "evidence": "核对了身份证原件" })
        )
        .await,
        (StatusCode::CONFLICT, "request_closed".into())
    );
    // Notes are still allowed on an ended request.
    let noted = app
        .act_ok(
            &admin,
            &id,
            json!({ "command": "note", "text": "申请人来电确认撤回" }),
        )
        .await;
    assert_eq!(noted["status"]["code"], "withdrawn");
    // Every change above moved the kept counts as a count of the rows does.
    app.assert_tallies_true();
}
on_both_backends!(the_subject_can_withdraw_and_nothing_else_happens_after);

async fn withdrawal_stops_once_fulfilment_changes_data(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("restriction", "cn").await;
    let id = app.id_of(&admin, &sub.reference).await;
    let session = app.verify_by_code(&sub.reference).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    app.act_ok(&admin, &id, json!({ "command": "start_fulfilment" }))
        .await;
    let res = app
        .subject_post(&sub.reference, "withdraw", &session, &json!({}))
        .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::CONFLICT, "fulfilment_started".into())
    );
}
on_both_backends!(withdrawal_stops_once_fulfilment_changes_data);

async fn unverified_requests_expire_after_the_window(app: TestApp) {
    let admin = app.admin_token().await;
    let logged = |days_ago: i64| {
        json!({
            "kind": "access", "channel": "letter",
            "received_at": (Utc::now() - Duration::days(days_ago)).to_rfc3339(),
            "subject": { "name": "韩梅梅", "phone": "13800138000" },
            "details": { "categories": ["orders"] },
        })
    };
    let old = app
        .post_json("/api/v1/staff/requests", &logged(40), Some(&admin))
        .await;
    assert_eq!(old.status(), StatusCode::CREATED);
    let old: Value = old.json().await.unwrap();
    let fresh: Value = app
        .post_json("/api/v1/staff/requests", &logged(1), Some(&admin))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        app.act_err(
            &admin,
            fresh["id"].as_str().unwrap(),
            json!({ "command": "expire" })
        )
        .await,
        (StatusCode::CONFLICT, "verification_window_open".into())
    );

    // The scheduled job (run here directly) expires only the one past its window.
    let services = app.services.clone();
    let n = tokio::task::spawn_blocking(move || {
        rightsflow::service::requests::expire_unverified(&services, rightsflow::service::now())
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(n, 1);
    let old_now = app.staff_get(&admin, old["id"].as_str().unwrap()).await;
    assert_eq!(old_now["status"]["code"], "expired");
    assert_eq!(
        old_now["timeline"].as_array().unwrap().last().unwrap()["actor"]["type"],
        "system"
    );
    let fresh_now = app.staff_get(&admin, fresh["id"].as_str().unwrap()).await;
    assert_eq!(fresh_now["status"]["code"], "awaiting_verification");
    // Every change above moved the kept counts as a count of the rows does.
    app.assert_tallies_true();
}
on_both_backends!(unverified_requests_expire_after_the_window);

fn date(v: &Value) -> chrono::NaiveDate {
    v.as_str().unwrap().parse().unwrap()
}

/// The local calendar day of an instant in a zone.
fn local_day(t: DateTime<Utc>, tz: chrono_tz::Tz) -> chrono::NaiveDate {
    t.with_timezone(&tz).date_naive()
}

async fn extension_moves_the_due_date_as_the_brief_says(app: TestApp) {
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let extend = json!({ "command": "extend", "reason": "请求涉及多个系统，情况复杂" });

    // us-ca: 45 calendar days from receipt, plus 45 more.
    let sub = app.submit("access", "us-ca").await;
    let view = app.find(&reviewer, &sub.reference).await;
    let id = view["id"].as_str().unwrap().to_owned();
    let received: DateTime<Utc> = view["received_at"].as_str().unwrap().parse().unwrap();
    let day = local_day(received, chrono_tz::America::Los_Angeles);
    assert_eq!(date(&view["due"]["date"]), day + Duration::days(45));
    let by_agent = app.act(&agent, &id, extend.clone()).await;
    assert_eq!(
        error_code(by_agent).await,
        (StatusCode::FORBIDDEN, "not_permitted".into())
    );
    let extended = app.act_ok(&reviewer, &id, extend.clone()).await;
    assert_eq!(date(&extended["due"]["date"]), day + Duration::days(90));
    let timeline = extended["timeline"].as_array().unwrap();
    assert_eq!(
        timeline.last().unwrap()["details"]["previous_due"]["date"],
        view["due"]["date"]
    );
    let twice = app.act(&reviewer, &id, extend.clone()).await;
    assert_eq!(
        error_code(twice).await,
        (StatusCode::CONFLICT, "already_extended".into())
    );

    // eu: one calendar month from receipt, then two more; a Saturday or Sunday rolls to Monday.
    let sub = app.submit("portability", "eu").await;
    let view = app.find(&reviewer, &sub.reference).await;
    let id = view["id"].as_str().unwrap().to_owned();
    let received: DateTime<Utc> = view["received_at"].as_str().unwrap().parse().unwrap();
    let day = local_day(received, chrono_tz::Europe::Brussels);
    let months = |n: u32| {
        let d = day.checked_add_months(chrono::Months::new(n)).unwrap();
        match d.weekday() {
            chrono::Weekday::Sat => d + Duration::days(2),
            chrono::Weekday::Sun => d + Duration::days(1),
            _ => d,
        }
    };
    assert_eq!(date(&view["due"]["date"]), months(1));
    let extended = app.act_ok(&reviewer, &id, extend.clone()).await;
    assert_eq!(date(&extended["due"]["date"]), months(3));

    // cn allows no extension by default.
    let sub = app.submit("access", "cn").await;
    let id = app.id_of(&reviewer, &sub.reference).await;
    app.staff_check(&agent, &id).await;
    let cn = app.act(&reviewer, &id, extend).await;
    assert_eq!(
        error_code(cn).await,
        (StatusCode::CONFLICT, "extension_not_available".into())
    );
}
on_both_backends!(extension_moves_the_due_date_as_the_brief_says);

async fn four_eyes_needs_a_different_second_approver(app: TestApp) {
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let (_, reviewer2) = app.staff("reviewer2", Role::Reviewer).await;
    let sub = app.submit("deletion", "cn").await;
    let id = app.id_of(&reviewer, &sub.reference).await;
    app.verify_by_code(&sub.reference).await;
    app.staff_check(&reviewer, &id).await;
    let first = app
        .act_ok(&reviewer, &id, json!({ "command": "approve" }))
        .await;
    assert_eq!(first["status"]["code"], "in_review");
    assert_eq!(
        app.act_err(&reviewer, &id, json!({ "command": "approve" }))
            .await,
        (StatusCode::CONFLICT, "second_approver_required".into())
    );
    let second = app
        .act_ok(&reviewer2, &id, json!({ "command": "approve" }))
        .await;
    assert_eq!(second["status"]["code"], "in_progress");
}
on_both_backends!(four_eyes_needs_a_different_second_approver);

async fn questions_and_replies_go_back_and_forth(app: TestApp) {
    let (agent_id, agent) = app.staff("agent", Role::Agent).await;
    let sub = app.submit("correction", "cn").await;
    let id = app.id_of(&agent, &sub.reference).await;
    let session = app.verify_by_code(&sub.reference).await;
    let assigned = app
        .act_ok(
            &agent,
            &id,
            json!({ "command": "assign", "assignee": agent_id }),
        )
        .await;
    assert_eq!(assigned["assignee_id"], json!(agent_id));
    assert_eq!(
        app.act_err(
            &agent,
            &id,
            json!({ "command": "assign", "assignee": "no-such-staff" })
        )
        .await,
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_assignee".into())
    );
    let asked = app
        .act_ok(
            &agent,
            &id,
            json!({ "command": "request_info", "question": "请上传新地址的证明材料。" }),
        )
        .await;
    assert_eq!(asked["status"]["code"], "awaiting_subject");
    let seen: Value = app
        .subject_get(&sub.reference, &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["allowed_actions"],
        json!(["subject_reply", "withdraw"])
    );
    assert_eq!(
        seen["timeline"].as_array().unwrap().last().unwrap()["message"],
        "请上传新地址的证明材料。"
    );
    let res = app
        .subject_post(
            &sub.reference,
            "reply",
            &session,
            &json!({ "message": "已通过邮件发送租房合同。" }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let back = app.staff_get(&agent, &id).await;
    assert_eq!(back["status"]["code"], "in_review");
    // Internal steps stay internal: the subject's timeline has no assignment.
    let seen: Value = app
        .subject_get(&sub.reference, &session)
        .await
        .json()
        .await
        .unwrap();
    assert!(seen["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["event"] != "assign"));
    // Every change above moved the kept counts as a count of the rows does.
    app.assert_tallies_true();
}
on_both_backends!(questions_and_replies_go_back_and_forth);

/// A clock long enough to run past the last year with a holiday calendar (2026).
fn clock_into_next_year(config: &mut rightsflow::config::Config) {
    if let Some(cn) = config
        .policy
        .jurisdictions
        .get_mut(&rightsflow::domain::Jurisdiction::Cn)
    {
        cn.respond = rightsflow::clock::Period::WorkingDays(60);
    }
}

async fn a_year_without_a_calendar_is_flagged_on_the_request(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    let id = app.id_of(&admin, &sub.reference).await;
    let session = app.verify_by_code(&sub.reference).await;
    let verified = app.staff_get(&admin, &id).await;
    let warnings = verified["due"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{verified}");
    assert_eq!(warnings[0]["code"], "missing_calendar");
    assert!(warnings[0]["message"].as_str().unwrap().contains("2027"));
    // It is stored with the request, not recomputed: the subject sees it too.
    let seen: Value = app
        .subject_get(&sub.reference, &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["due"]["warnings"][0]["code"], "missing_calendar");
}
on_both_backends!(
    a_year_without_a_calendar_is_flagged_on_the_request,
    super::clock_into_next_year
);

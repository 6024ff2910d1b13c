//! Notifications through a real SMTP server on loopback: every step the subject or staff
//! should hear about arrives once, in the right language, with text and HTML parts.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use rightsflow::config::Config;
use rightsflow::domain::Role;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp, ADMIN_EMAIL};
use crate::smtp::{HttpCapture, Received, SmtpSink};

/// Runs `$test(app, sink)` on SQLite and PostgreSQL with the app's mail going to `sink`.
macro_rules! mail_test {
    ($test:ident) => {
        mail_test!($test, super::no_tweak);
    };
    ($test:ident, $tweak:path) => {
        mod $test {
            use crate::helpers::{mail_to, skip, spawn_app_with, Backend, TestApp};
            use crate::smtp::SmtpSink;

            async fn start(backend: Backend) -> Option<(TestApp, SmtpSink)> {
                let sink = SmtpSink::start().await;
                let s = sink.clone();
                let app = spawn_app_with(backend, move |c| {
                    mail_to(&s, c);
                    $tweak(c)
                })
                .await?;
                Some((app, sink))
            }

            #[tokio::test]
            async fn sqlite() {
                let (app, sink) = start(Backend::Sqlite).await.unwrap();
                super::$test(app, sink).await;
            }

            #[tokio::test]
            async fn postgres() {
                match start(Backend::Postgres).await {
                    Some((app, sink)) => super::$test(app, sink).await,
                    None => skip(module_path!()),
                }
            }
        }
    };
}

fn no_tweak(_: &mut Config) {}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// Checks the shape every message shares and returns its text part.
fn check(m: &Received, reference: &str, chinese: bool) -> String {
    let subject = m.subject();
    assert!(
        subject.contains(reference),
        "subject {subject:?} lacks {reference}"
    );
    assert_eq!(has_cjk(&subject), chinese, "subject language: {subject}");
    let text = m.part("text/plain").expect("a text part");
    let html = m.part("text/html").expect("an HTML part");
    assert!(
        text.contains(reference) && html.contains(reference),
        "{text}"
    );
    assert_eq!(has_cjk(&text), chinese, "body language: {text}");
    assert!(
        html.contains("<html") || html.contains("<!DOCTYPE"),
        "{html}"
    );
    assert!(
        !text.contains("{{") && !html.contains("{{"),
        "unrendered template in {subject}"
    );
    let id = m.message_id();
    assert!(
        id.starts_with('<') && id.ends_with("@weimacms.test>"),
        "{id}"
    );
    text
}

/// The one message whose text part contains `needle`.
fn with_text<'a>(mails: &'a [Received], needle: &str) -> &'a Received {
    let found: Vec<&Received> = mails
        .iter()
        .filter(|m| m.part("text/plain").is_some_and(|t| t.contains(needle)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one message containing {needle:?}, found {}",
        found.len()
    );
    found[0]
}

/// Reads the code sent to `address` for `reference` from the sink and enters it; returns the
/// session.
async fn verify_from_sink(
    app: &TestApp,
    sink: &SmtpSink,
    address: &str,
    reference: &str,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let code = loop {
        let found = sink
            .to(address)
            .iter()
            .filter(|m| m.subject().contains(reference))
            .find_map(|m| {
                m.part("text/plain")
                    .and_then(|t| crate::helpers::code_in(&t))
            });
        if let Some(code) = found {
            break code;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no code for {reference}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let res = app
        .post_json(
            &format!("/api/v1/requests/{reference}/verification"),
            &json!({ "code": code }),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn submit_as(app: &TestApp, body: Value) -> String {
    let res = app.post_json("/api/v1/requests", &body, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["reference"].as_str().unwrap().to_owned()
}

async fn a_journey_reaches_the_subject_in_english_and_staff_in_chinese(
    app: TestApp,
    sink: SmtpSink,
) {
    let anna = "anna@example.eu";
    let (agent_id, agent) = app.staff("agent", Role::Agent).await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let reference = submit_as(
        &app,
        json!({ "kind": "portability", "jurisdiction": "eu", "locale": "en",
                "subject": { "name": "Anna Schmidt", "email": anna }, "details": { "categories": ["orders"], "format": "json" } }),
    )
    .await;
    // "Received", then the verification code: Anna enters it.
    let mails = sink.wait_to(anna, 2, 10).await;
    let text = check(
        with_text(&mails, "We have received your personal information request"),
        &reference,
        false,
    );
    assert!(text.contains("Anna Schmidt"), "greets by name: {text}");
    let code_mail = mails
        .iter()
        .find(|m| m.subject().contains("verification code"))
        .expect("a code email");
    let code =
        crate::helpers::code_in(&check(code_mail, &reference, false)).expect("a six-digit code");
    let res = app
        .post_json(
            &format!("/api/v1/requests/{reference}/verification"),
            &json!({ "code": code }),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let id = app.id_of(&agent, &reference).await;

    let admin = app.admin_token().await;
    app.act_ok(
        &admin,
        &id,
        json!({ "command": "assign", "assignee": agent_id }),
    )
    .await;
    let assigned = sink.wait_to("agent@rightsflow.test", 1, 10).await;
    check(&assigned[0], &reference, true);

    app.staff_check(&agent, &id).await;
    sink.wait_to(anna, 3, 10).await;
    for decider in ["reviewer@rightsflow.test", ADMIN_EMAIL] {
        let review = sink.wait_to(decider, 1, 10).await;
        check(&review[0], &reference, true);
    }

    app.act_ok(
        &agent,
        &id,
        json!({ "command": "request_info", "question": "Which of your two accounts do you mean?" }),
    )
    .await;
    let mails = sink.wait_to(anna, 4, 10).await;
    let text = check(&mails[3], &reference, false);
    assert!(
        text.contains("Which of your two accounts do you mean?"),
        "{text}"
    );

    // The subject answered by phone: staff record the reply.
    app.act_ok(
        &agent,
        &id,
        json!({ "command": "subject_reply", "message": "The one with orders." }),
    )
    .await;
    // The assignee hears of the reply (the assign mail was the first).
    sink.wait_to("agent@rightsflow.test", 2, 10).await;

    app.act_ok(
        &reviewer,
        &id,
        json!({ "command": "extend", "reason": "Several systems hold your orders" }),
    )
    .await;
    let mails = sink.wait_to(anna, 5, 10).await;
    let text = check(&mails[4], &reference, false);
    let view = app.staff_get(&agent, &id).await;
    assert!(text.contains("Several systems hold your orders"), "{text}");
    assert!(
        text.contains(view["due"]["date"].as_str().unwrap()),
        "the new date: {text}"
    );

    // Four eyes: the first approval asks the other deciders for the second.
    app.act_ok(&agent, &id, json!({ "command": "approve" }))
        .await;
    let second = sink.wait_to("reviewer@rightsflow.test", 2, 10).await;
    check(&second[1], &reference, true);
    app.act_ok(&reviewer, &id, json!({ "command": "approve" }))
        .await;
    sink.wait_to(anna, 6, 10).await;
    app.act_ok(
        &agent,
        &id,
        json!({ "command": "complete", "summary": "Your export is ready to download." }),
    )
    .await;
    let mails = sink.wait_to(anna, 7, 10).await;
    let text = check(&mails[6], &reference, false);
    assert!(text.contains("Your export is ready to download."), "{text}");

    let ids: std::collections::HashSet<String> = mails.iter().map(Received::message_id).collect();
    assert_eq!(
        ids.len(),
        7,
        "seven different messages, each with its own Message-ID"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.to(anna).len(), 7, "and no message twice");
}
mail_test!(a_journey_reaches_the_subject_in_english_and_staff_in_chinese);

async fn refusals_answers_and_endings_are_explained_in_chinese(app: TestApp, sink: SmtpSink) {
    let admin = app.admin_token().await;
    let (agent_id, _) = app.staff("agent", Role::Agent).await;
    let person = |n: u32| format!("user{n}@example.cn");

    // A complaint answered in writing, with the outside routes.
    let complaint = submit_as(&app, json!({ "kind": "complaint", "subject": { "email": person(1) }, "details": { "subject": "客服", "account": "十月的来信无人答复" } })).await;
    let id = app.id_of(&admin, &complaint).await;
    app.staff_check(&admin, &id).await;
    app.act_ok(&admin, &id, json!({ "command": "approve" }))
        .await;
    app.act_ok(&admin, &id, json!({ "command": "complete", "summary": "经核查，您十月的来信已于十一月二日处理完毕，对延误深表歉意。" })).await;
    let mails = sink.wait_to(&person(1), 5, 10).await;
    let text = check(with_text(&mails, "对延误深表歉意"), &complaint, true);
    assert!(text.contains("对延误深表歉意"), "{text}");
    assert!(text.contains("法院"), "names the courts: {text}");

    // A rejection states the reason in words, the explanation, and where to turn.
    let access = submit_as(&app, json!({ "kind": "access", "subject": { "email": person(2) }, "details": { "categories": ["orders"] } })).await;
    let id = app.id_of(&admin, &access).await;
    app.staff_check(&admin, &id).await;
    app.act_ok(&admin, &id, json!({ "command": "reject", "reason": "no_data_held", "explanation": "系统中没有与该邮箱关联的账户。" })).await;
    let mails = sink.wait_to(&person(2), 4, 10).await;
    let text = check(
        with_text(&mails, "系统中没有与该邮箱关联的账户。"),
        &access,
        true,
    );
    assert!(
        text.contains("我们未持有您的个人信息") && text.contains("系统中没有与该邮箱关联的账户。"),
        "{text}"
    );
    assert!(text.contains("法院"), "names the courts: {text}");

    // A withdrawal is confirmed to the subject and told to the assignee.
    let correction = submit_as(&app, json!({ "kind": "correction", "subject": { "email": person(3) }, "details": { "fields": [{ "field": "地址", "corrected_value": "新地址" }] } })).await;
    let id = app.id_of(&admin, &correction).await;
    app.act_ok(
        &admin,
        &id,
        json!({ "command": "assign", "assignee": agent_id }),
    )
    .await;
    // The subject phoned; staff record the withdrawal. Someone other than the assignee records
    // it, so the assignee hears of it.
    app.act_ok(
        &admin,
        &id,
        json!({ "command": "withdraw", "reason": "申请人来电撤回" }),
    )
    .await;
    let mails = sink.wait_to(&person(3), 3, 10).await;
    mails.iter().for_each(|m| drop(check(m, &correction, true)));
    let staff = sink.wait_to("agent@rightsflow.test", 2, 10).await;
    staff.iter().for_each(|m| drop(check(m, &correction, true)));

    // An expiry closes an unverified request and says so.
    let old = json!({ "kind": "access", "channel": "letter", "received_at": (Utc::now() - chrono::Duration::days(40)).to_rfc3339(),
                      "subject": { "email": person(4) }, "details": { "categories": ["orders"] } });
    let res = app
        .post_json("/api/v1/staff/requests", &old, Some(&admin))
        .await;
    let expired_ref = res.json::<Value>().await.unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let services = app.services.clone();
    tokio::task::spawn_blocking(move || {
        rightsflow::service::requests::expire_unverified(&services, rightsflow::service::now())
            .unwrap()
    })
    .await
    .unwrap();
    let mails = sink.wait_to(&person(4), 2, 10).await;
    mails
        .iter()
        .for_each(|m| drop(check(m, &expired_ref, true)));
}
mail_test!(refusals_answers_and_endings_are_explained_in_chinese);

async fn in_site_messages_keep_what_the_subject_was_told(app: TestApp, sink: SmtpSink) {
    let sub = app.submit("restriction", "cn").await;
    let session = verify_from_sink(&app, &sink, "li.lei@example.com", &sub.reference).await;
    sink.wait_to("li.lei@example.com", 3, 10).await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/requests/{}/messages", sub.reference)))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    let inbox: Value = res.json().await.unwrap();
    let items = inbox["items"].as_array().unwrap();
    assert_eq!(
        items
            .iter()
            .map(|m| m["message"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["request_received", "identity_verified"]
    );
    assert!(items
        .iter()
        .all(|m| m["body"].as_str().unwrap().contains(&sub.reference)));
    // Staff messages are not in the subject's inbox, and a forged session reads nothing.
    let res = app
        .client
        .get(app.url(&format!("/api/v1/requests/{}/messages", sub.reference)))
        .bearer_auth(format!("{session}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
}
mail_test!(in_site_messages_keep_what_the_subject_was_told);

fn one_quick_retry(config: &mut Config) {
    config.worker.max_attempts = 3;
    config.worker.retry_base_seconds = 1;
    config.worker.retry_max_seconds = 1;
}

async fn refused_mail_is_retried_then_parked_and_an_admin_can_send_it_again(
    app: TestApp,
    sink: SmtpSink,
) {
    sink.refuse(true);
    let admin = app.admin_token().await;
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let sub = app.submit("access", "cn").await;
    // Three attempts about a second apart, then parked.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let res = app
            .client
            .get(app.url("/api/v1/staff/outbox/failed"))
            .bearer_auth(&agent)
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        if let Some(item) = v["items"].as_array().unwrap().first().cloned() {
            break item;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery was never parked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed["attempts"], 3);
    assert!(
        failed["last_error"].as_str().unwrap().contains("550"),
        "{failed}"
    );
    assert!(sink.messages().is_empty());

    sink.refuse(false);
    let id = failed["id"].as_str().unwrap();
    let res = app
        .post_json(
            &format!("/api/v1/staff/outbox/{id}/retry"),
            &json!({}),
            Some(&agent),
        )
        .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::FORBIDDEN, "not_permitted".into())
    );
    let res = app
        .post_json(
            &format!("/api/v1/staff/outbox/{id}/retry"),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The submission parked two messages (received, and the code); the other may still be
    // retrying on its own. The one retried arrives with the Message-ID of every attempt.
    let wanted = format!("<{id}@");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mail = loop {
        if let Some(m) = sink
            .to("li.lei@example.com")
            .into_iter()
            .find(|m| m.message_id().starts_with(&wanted))
        {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retried message never arrived"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    check(&mail, &sub.reference, true);
    let again = app
        .post_json(
            &format!("/api/v1/staff/outbox/{id}/retry"),
            &json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        error_code(again).await,
        (StatusCode::CONFLICT, "not_failed".into())
    );
}
mail_test!(
    refused_mail_is_retried_then_parked_and_an_admin_can_send_it_again,
    super::one_quick_retry
);

fn sms_gateway(config: &mut Config) {
    // The capture endpoint's port is read from the environment the test set (one per test).
    config.sms_gateway = rightsflow::config::SmsGatewayKind::Http;
    config.sms_secret = Some(rightsflow::config::Secret::new("sms-secret-for-tests"));
    config.sms_url = SMS_URL.with(|u| u.borrow().clone());
}

thread_local! {
    static SMS_URL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

async fn a_subject_reached_only_by_phone_gets_short_signed_sms(capture: HttpCapture, app: TestApp) {
    let reference = submit_as(&app, json!({ "kind": "consent_withdrawal", "subject": { "phone": "13800138000" }, "details": { "consents": ["marketing_messages"] } })).await;
    let got = capture.wait_for(1, 10).await;
    let (headers, body) = &got[0];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["to"], "+8613800138000");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains(&reference) && has_cjk(text) && text.chars().count() <= 70,
        "{text}"
    );
    let header = |k: &str| {
        headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let ts: i64 = header("x-rightsflow-timestamp").parse().unwrap();
    assert_eq!(
        header("x-rightsflow-signature"),
        rightsflow::notifications::sms::signature("sms-secret-for-tests", ts, body)
    );
    assert_eq!(header("idempotency-key"), v["id"].as_str().unwrap());
}

#[tokio::test]
async fn a_subject_reached_only_by_phone_gets_short_signed_sms_sqlite() {
    let capture = HttpCapture::start().await;
    SMS_URL.with(|u| *u.borrow_mut() = Some(capture.url()));
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, sms_gateway)
        .await
        .unwrap();
    a_subject_reached_only_by_phone_gets_short_signed_sms(capture, app).await;
}

async fn the_dev_mailbox_shows_file_mail_and_vanishes_with_smtp(app: TestApp, sink: SmtpSink) {
    // This app sends by SMTP: no development mailbox.
    let res = app.client.get(app.url("/dev/mail")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    drop(sink);
    // One with the default file transport shows what it wrote.
    let files = crate::helpers::spawn_app(app.backend).await.unwrap();
    let sub = files.submit("access", "cn").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = files
            .client
            .get(files.url("/dev/mail"))
            .header("Accept-Language", "en")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("Development mailbox"));
        if html.contains(&sub.reference) {
            assert!(html.contains("li.lei@example.com"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message never showed: {html}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let zh = files
        .client
        .get(files.url("/dev/mail?lang=zh-CN"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("开发邮箱"));
    let escape = files
        .client
        .get(files.url("/dev/mail/..%2F..%2Fjwt-secret.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), StatusCode::NOT_FOUND);
}
mail_test!(the_dev_mailbox_shows_file_mail_and_vanishes_with_smtp);

//! Bad input gets a clear 4xx in one JSON shape, in the caller's language, and changes nothing.

use reqwest::StatusCode;
use rightsflow::domain::Role;
use rightsflow::storage::outbox;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::on_both_backends;

/// The notifications a request has produced (the core's effects; deliveries are not counted,
/// since the worker creates those in its own time).
async fn outbox_len(app: &TestApp, id: &str) -> usize {
    let db = app.services.db().clone();
    let id = id.to_owned();
    let rows = tokio::task::spawn_blocking(move || {
        outbox::for_request(&mut db.conn().unwrap(), &id).unwrap()
    })
    .await
    .unwrap();
    rows.iter().filter(|r| r.kind == outbox::NOTIFY).count()
}

async fn a_disallowed_command_gets_409_and_changes_nothing(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    let before = app.find(&admin, &sub.reference).await;
    let id = before["id"].as_str().unwrap().to_owned();
    let queued = outbox_len(&app, &id).await;
    assert_eq!(
        queued, 2,
        "the submission queued two notifications: received, and the verification code"
    );

    for command in [
        json!({ "command": "complete", "summary": "done" }),
        json!({ "command": "approve" }),
        json!({ "command": "request_info", "question": "?" }),
        json!({ "command": "start_fulfilment" }),
        json!({ "command": "subject_reply", "message": "!" }),
    ] {
        let res = app.act(&admin, &id, command.clone()).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::CONFLICT, "command_not_allowed".into()),
            "{command}"
        );
    }
    let after = app.staff_get(&admin, &id).await;
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["status"], before["status"]);
    assert_eq!(
        after["timeline"].as_array().unwrap().len(),
        before["timeline"].as_array().unwrap().len()
    );
    assert_eq!(
        outbox_len(&app, &id).await,
        queued,
        "no notification for a refused command"
    );

    // A stale version is refused too, even for a command that is allowed.
    assert_eq!(
        app.act_err(
            &admin,
            &id,
            json!({ "command": "note", "text": "x", "expected_version": 0 })
        )
        .await,
        (StatusCode::CONFLICT, "stale_version".into())
    );
    let accepted = app.act_ok(&admin, &id, json!({ "command": "verify", "method": "staff_check", "evidence": "核对了身份证原件", "expected_version": before["version"] })).await;
    assert_eq!(accepted["version"], before["version"].as_i64().unwrap() + 1);
    assert_eq!(
        outbox_len(&app, &id).await,
        queued + 2,
        "verification queued two notifications (subject, reviewers) in the same transaction"
    );
}
on_both_backends!(a_disallowed_command_gets_409_and_changes_nothing);

async fn malformed_and_invalid_submissions_are_refused_and_nothing_is_stored(app: TestApp) {
    let admin = app.admin_token().await;
    let post_raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/api/v1/requests"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let res = post_raw("{\"kind\": \"access\",", "application/json")
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::BAD_REQUEST, "invalid_json".into())
    );
    let res = post_raw("kind=access", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type".into()
        )
    );

    let cases = [
        (
            json!({ "kind": "erasure", "subject": { "email": "a@example.com" } }),
            "unknown_kind",
        ),
        (
            json!({ "kind": "access", "jurisdiction": "mars", "subject": { "email": "a@example.com" } }),
            "unknown_jurisdiction",
        ),
        (
            json!({ "kind": "access", "details": { "categories": ["orders"] } }),
            "invalid_body",
        ),
        (
            json!({ "kind": "access", "subject": {}, "details": { "categories": ["orders"] } }),
            "invalid_contact",
        ),
        (
            json!({ "kind": "access", "subject": { "email": "not-an-email" }, "details": { "categories": ["orders"] } }),
            "invalid_contact",
        ),
        (
            json!({ "kind": "access", "subject": { "email": "a@example.com" }, "details": {} }),
            "invalid_details",
        ),
        (
            json!({ "kind": "access", "subject": { "email": "a@example.com" }, "details": { "categories": ["orders"] }, "surprise": 1 }),
            "invalid_body",
        ),
        (
            json!({ "kind": "access", "subject": { "email": "a@example.com" }, "details": { "categories": ["orders"] }, "received_at": "2026-01-01T00:00:00Z" }),
            "field_not_allowed",
        ),
    ];
    for (body, code) in cases {
        let res = app.post_json("/api/v1/requests", &body, None).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNPROCESSABLE_ENTITY, code.into()),
            "{body}"
        );
    }

    let huge = json!({ "kind": "complaint", "subject": { "email": "a@example.com" }, "details": { "subject": "x", "account": "长".repeat(100_000) } });
    let res = app.post_json("/api/v1/requests", &huge, None).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );

    assert_eq!(
        app.list(&admin, "").await["total"],
        0,
        "no bad submission was stored"
    );
}
on_both_backends!(malformed_and_invalid_submissions_are_refused_and_nothing_is_stored);

async fn errors_speak_the_callers_language(app: TestApp) {
    let body = json!({ "kind": "access", "subject": {}, "details": { "categories": ["orders"] } });
    let zh: Value = app
        .post_json("/api/v1/requests", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        zh["error"]["message"].as_str().unwrap().contains("邮箱"),
        "{zh}"
    );
    let en: Value = app
        .client
        .post(app.url("/api/v1/requests"))
        .header("Accept-Language", "en-GB,en;q=0.9,zh;q=0.5")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(en["error"]["code"], zh["error"]["code"]);
    assert!(
        en["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email address"),
        "{en}"
    );
}
on_both_backends!(errors_speak_the_callers_language);

async fn subjects_need_the_right_session_and_reference(app: TestApp) {
    let sub = app.submit("complaint", "cn").await;
    let other = app.submit("access", "cn").await;
    let mine = app.verify_by_code(&sub.reference).await;
    let theirs = app.verify_by_code(&other.reference).await;
    let res = app
        .client
        .get(app.url(&format!("/api/v1/requests/{}", sub.reference)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "subject_auth_required".into())
    );
    // Someone else's session, an unknown reference and garbage all look the same.
    for (reference, session) in [
        (sub.reference.as_str(), theirs.as_str()),
        ("DSR-0000-0000", mine.as_str()),
        ("not-a-reference", mine.as_str()),
    ] {
        let res = app.subject_get(reference, session).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNAUTHORIZED, "unauthorized".into()),
            "{reference}"
        );
    }
    let res = app
        .subject_post(&sub.reference, "withdraw", &theirs, &json!({}))
        .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    // The reference is forgiving about case and dashes.
    let loose = sub.reference.to_lowercase().replace('-', "");
    assert_eq!(
        app.subject_get(&loose, &mine).await.status(),
        StatusCode::OK
    );
}
on_both_backends!(subjects_need_the_right_session_and_reference);

async fn staff_routes_need_a_valid_account_and_role(app: TestApp) {
    let res = app.login("admin@rightsflow.test", "wrong password!").await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
    );
    let res = app
        .login("nobody@rightsflow.test", "whatever-password")
        .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
    );
    let res = app
        .client
        .get(app.url("/api/v1/staff/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let res = app
        .client
        .get(app.url("/api/v1/staff/requests"))
        .bearer_auth("forged.token.here")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );

    let (_, auditor) = app.staff("auditor", Role::Auditor).await;
    let sub = app.submit("access", "cn").await;
    let view = app.find(&auditor, &sub.reference).await;
    assert_eq!(view["allowed_actions"], json!([]), "auditors read only");
    assert_eq!(
        app.act_err(
            &auditor,
            view["id"].as_str().unwrap(),
            json!({ "command": "note", "text": "x" })
        )
        .await,
        (StatusCode::FORBIDDEN, "not_permitted".into())
    );
    let logged = json!({ "kind": "access", "channel": "phone", "received_at": "2026-11-01T09:00:00+08:00", "subject": { "phone": "13800138000" }, "details": { "categories": ["orders"] } });
    let res = app
        .post_json("/api/v1/staff/requests", &logged, Some(&auditor))
        .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::FORBIDDEN, "not_permitted".into())
    );

    let res = app
        .act(
            &auditor,
            "no-such-id",
            json!({ "command": "note", "text": "x" }),
        )
        .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let res = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert_eq!(
        app.act_err(
            &auditor,
            view["id"].as_str().unwrap(),
            json!({ "command": "launch" })
        )
        .await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body".into())
    );
}
on_both_backends!(staff_routes_need_a_valid_account_and_role);

async fn staff_logged_requests_keep_their_real_receipt_time(app: TestApp) {
    let admin = app.admin_token().await;
    let body = |received: &str, channel: &str| {
        json!({ "kind": "deletion", "jurisdiction": "us-ca", "channel": channel, "received_at": received,
                "subject": { "name": "Jane Roe", "email": "jane@example.com" }, "details": { "scope": "account" } })
    };
    let res = app
        .post_json(
            "/api/v1/staff/requests",
            &body("2026-11-20T09:30:00-08:00", "letter"),
            Some(&admin),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["received_at"], "2026-11-20T17:30:00Z");
    assert_eq!(view["channel"], "letter");
    // 45 days after 20 November 2026 (Los Angeles time).
    assert_eq!(view["due"]["date"], "2027-01-04");
    assert_eq!(view["acknowledge_by"]["date"], "2026-12-04");
    // No code is sent for a request logged by staff: they check identity with the subject.
    assert!(view.get("subject_token").is_none() && view.get("session").is_none());

    let future = app
        .post_json(
            "/api/v1/staff/requests",
            &body("2099-01-01T00:00:00Z", "phone"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        error_code(future).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "received_in_future".into()
        )
    );
    let online = app
        .post_json(
            "/api/v1/staff/requests",
            &body("2026-11-20T09:30:00-08:00", "online"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        error_code(online).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_channel".into())
    );
}
on_both_backends!(staff_logged_requests_keep_their_real_receipt_time);

async fn optional_and_extra_fields_are_checked_not_ignored(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    let id = app.id_of(&admin, &sub.reference).await;
    let session = app.verify_by_code(&sub.reference).await;
    // A misspelt field must not silently drop the version check or the reason.
    for body in [
        json!({ "command": "note", "text": "x", "expectedVersion": 0 }),
        json!({ "command": "note", "text": "x", "colour": "red" }),
        json!({ "command": "note", "text": "x", "expected_version": "one" }),
    ] {
        let res = app.act(&admin, &id, body.clone()).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body".into()),
            "{body}"
        );
    }
    let res = app
        .client
        .post(app.url(&format!("/api/v1/requests/{}/withdraw", sub.reference)))
        .bearer_auth(&session)
        .header("Content-Type", "application/json")
        .body("{\"reason\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::BAD_REQUEST, "invalid_json".into())
    );
    let res = app
        .subject_post(&sub.reference, "withdraw", &session, &json!({ "why": "x" }))
        .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body".into())
    );
    let seen: Value = app
        .subject_get(&sub.reference, &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["status"]["code"], "in_review", "nothing changed");
    // With no body at all, withdrawal works.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/requests/{}/withdraw", sub.reference)))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
on_both_backends!(optional_and_extra_fields_are_checked_not_ignored);

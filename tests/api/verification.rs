//! Identity verification through the HTTP API: codes, magic links, platform tokens, guardians,
//! minors, sessions. Codes and links are read from the mailbox as a person would.

use chrono::Utc;
use reqwest::StatusCode;
use rightsflow::config::{Config, PlatformAuth, Secret};
use rightsflow::domain::Role;
use serde::Serialize;
use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};

/// Runs `$test(app)` on SQLite and PostgreSQL, the app mailing to a real SMTP server on
/// loopback (codes and links are read from what it received).
macro_rules! on_both_backends {
    ($test:ident) => {
        on_both_backends!($test, |_| {});
    };
    ($test:ident, $tweak:expr) => {
        mod $test {
            use crate::helpers::{skip, spawn_app_with_sink, Backend};

            #[tokio::test]
            async fn sqlite() {
                let app = spawn_app_with_sink(Backend::Sqlite, $tweak).await.unwrap();
                super::$test(app).await;
            }

            #[tokio::test]
            async fn postgres() {
                match spawn_app_with_sink(Backend::Postgres, $tweak).await {
                    Some(app) => super::$test(app).await,
                    None => skip(module_path!()),
                }
            }
        }
    };
}

async fn post_code(app: &TestApp, reference: &str, code: &str) -> reqwest::Response {
    app.post_json(
        &format!("/api/v1/requests/{reference}/verification"),
        &json!({ "code": code }),
        None,
    )
    .await
}

async fn get_with_session(app: &TestApp, reference: &str, session: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/requests/{reference}")))
        .bearer_auth(session)
        .send()
        .await
        .unwrap()
}

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn a_right_code_verifies_and_opens_a_session(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    assert_eq!(sub.body["verification"]["status"], "code_sent");
    assert_eq!(sub.body["verification"]["channel"], "email");
    let code = app.code_for(&sub.reference).await;
    let res = post_code(&app, &sub.reference, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The portal gets the session as a cookie scripts cannot read and other sites cannot send.
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for attribute in [
        "rf_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request"]["status"]["code"], "in_review");
    let session = body["session"]["token"].as_str().unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let by_cookie = app
        .client
        .get(app.url(&format!("/api/v1/requests/{}", sub.reference)))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    let seen: Value = get_with_session(&app, &sub.reference, &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["reference"], sub.reference.as_str());
    // Delivered, the code is gone from the queue: only its keyed hash remains, in the challenge.
    let db = app.services.db().clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let db = db.clone();
        let rows = tokio::task::spawn_blocking(move || {
            use diesel::prelude::*;
            use rightsflow::storage::schema::outbox::dsl::*;
            outbox
                .select(payload)
                .load::<String>(&mut *db.conn().unwrap())
                .unwrap()
        })
        .await
        .unwrap();
        if rows.iter().all(|p| !p.contains(&code)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the code stayed in the outbox"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The event log says how, never the code.
    let view = app.find(&admin, &sub.reference).await;
    let verify = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["command"] == "verify")
        .cloned()
        .unwrap();
    assert_eq!(verify["details"]["method"], "email_code");
    assert!(!view.to_string().contains(&code));
    // The code works once.
    let again = post_code(&app, &sub.reference, &code).await;
    assert_eq!(
        error_code(again).await,
        (StatusCode::UNAUTHORIZED, "invalid_code".into())
    );
    // A session for one request opens no other.
    let other = app.submit("complaint", "cn").await;
    let res = get_with_session(&app, &other.reference, &session).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    // Signing out ends it.
    let res = app
        .client
        .delete(app.url("/api/v1/session"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = get_with_session(&app, &sub.reference, &session).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
}
on_both_backends!(a_right_code_verifies_and_opens_a_session);

async fn wrong_codes_lock_the_challenge_and_are_recorded(app: TestApp) {
    let admin = app.admin_token().await;
    let sub = app.submit("access", "cn").await;
    let code = app.code_for(&sub.reference).await;
    for left in (1..5).rev() {
        let res = post_code(&app, &sub.reference, &wrong(&code)).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_code"))
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&left.to_string()),
            "{body}"
        );
    }
    let res = post_code(&app, &sub.reference, &wrong(&code)).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::LOCKED, "challenge_locked".into())
    );
    // Locked: even the right code is refused now.
    let res = post_code(&app, &sub.reference, &code).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::LOCKED, "challenge_locked".into())
    );
    let view = app.find(&admin, &sub.reference).await;
    assert_eq!(view["status"]["code"], "awaiting_verification");
    let failures: Vec<&Value> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["command"] == "verification_failed")
        .collect();
    // Four wrong codes, the one that locked it, and the right code tried at the locked challenge.
    assert_eq!(
        failures.len(),
        6,
        "every failed attempt is in the event log"
    );
    assert!(
        !view.to_string().contains(&code),
        "the code itself never is"
    );
    // Unknown and malformed references answer like a wrong code.
    let res = post_code(&app, "DSR-0000-0000", &code).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "invalid_code".into())
    );
    let res = post_code(&app, "nonsense", &code).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "invalid_code".into())
    );
}
on_both_backends!(wrong_codes_lock_the_challenge_and_are_recorded);

fn codes_expire_at_once(config: &mut Config) {
    config.verification.code_minutes = 0;
    config.verification.resend_seconds = 0;
}

async fn an_expired_code_fails_and_a_new_one_can_be_sent(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    let code = app.code_for(&sub.reference).await;
    let res = post_code(&app, &sub.reference, &code).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "code_expired".into())
    );
    let res = app
        .post_json(
            &format!("/api/v1/requests/{}/verification/resend", sub.reference),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let unknown = app
        .post_json(
            "/api/v1/requests/DSR-0000-0000/verification/resend",
            &json!({}),
            None,
        )
        .await;
    assert_eq!(
        unknown.status(),
        StatusCode::ACCEPTED,
        "unknown references look the same"
    );
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );
}
on_both_backends!(
    an_expired_code_fails_and_a_new_one_can_be_sent,
    super::codes_expire_at_once
);

async fn a_new_code_at_most_once_a_minute(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    let first = app.code_for(&sub.reference).await;
    let res = app
        .post_json(
            &format!("/api/v1/requests/{}/verification/resend", sub.reference),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // No second code was sent: the first still works.
    assert_eq!(app.code_for(&sub.reference).await, first);
    assert_eq!(
        post_code(&app, &sub.reference, &first).await.status(),
        StatusCode::OK
    );
}
on_both_backends!(a_new_code_at_most_once_a_minute);

async fn a_magic_link_works_once(app: TestApp) {
    let sub = app.submit("correction", "cn").await;
    // The link in the code email, as the subject's mail program shows it.
    let token = app
        .wait_mail(&sub.reference, |t| {
            t.split("/verify?token=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        })
        .await;
    let res = app
        .post_json(
            "/api/v1/verification/magic-link",
            &json!({ "token": token }),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request"]["status"]["code"], "in_review");
    let again = app
        .post_json(
            "/api/v1/verification/magic-link",
            &json!({ "token": token }),
            None,
        )
        .await;
    assert_eq!(
        error_code(again).await,
        (StatusCode::UNAUTHORIZED, "invalid_link".into())
    );
    let forged = app
        .post_json(
            "/api/v1/verification/magic-link",
            &json!({ "token": format!("{token}x") }),
            None,
        )
        .await;
    assert_eq!(
        error_code(forged).await,
        (StatusCode::UNAUTHORIZED, "invalid_link".into())
    );
}
on_both_backends!(a_magic_link_works_once);

pub(crate) const PLATFORM_SECRET: &str = "the platform's shared secret, 32+ bytes";

pub(crate) fn platform_hs256(config: &mut Config) {
    config.verification.platform = Some(PlatformAuth {
        algorithm: "HS256".into(),
        secret: Some(Secret::new(PLATFORM_SECRET)),
        public_key_file: None,
        issuer: "https://weimacms.example".into(),
        audience: "rightsflow".into(),
    });
}

#[derive(Serialize)]
struct PlatformClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    exp: i64,
}

pub(crate) fn platform_token(secret: &str, iss: &str, aud: &str, exp_in: i64) -> String {
    let claims = PlatformClaims {
        sub: "platform-user-42",
        iss,
        aud,
        exp: Utc::now().timestamp() + exp_in,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

async fn a_platform_sign_in_verifies_at_once_and_bad_tokens_are_refused(app: TestApp) {
    let admin = app.admin_token().await;
    let body = json!({ "kind": "deletion", "subject": { "email": "u42@example.cn" }, "details": { "scope": "account" } });
    let submit = |token: String| {
        app.client
            .post(app.url("/api/v1/requests"))
            .header("X-Platform-Token", token)
            .json(&body)
            .send()
    };
    for (token, why) in [
        (
            platform_token(
                "another secret of the same length!!",
                "https://weimacms.example",
                "rightsflow",
                300,
            ),
            "bad signature",
        ),
        (
            platform_token(
                PLATFORM_SECRET,
                "https://weimacms.example",
                "someone-else",
                300,
            ),
            "wrong audience",
        ),
        (
            platform_token(PLATFORM_SECRET, "https://evil.example", "rightsflow", 300),
            "wrong issuer",
        ),
        (
            platform_token(
                PLATFORM_SECRET,
                "https://weimacms.example",
                "rightsflow",
                -120,
            ),
            "expired",
        ),
    ] {
        let res = submit(token).await.unwrap();
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNAUTHORIZED, "invalid_platform_token".into()),
            "{why}"
        );
    }
    assert_eq!(
        app.list(&admin, "").await["total"],
        0,
        "nothing was stored for a refused token"
    );
    let res = submit(platform_token(
        PLATFORM_SECRET,
        "https://weimacms.example",
        "rightsflow",
        300,
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    // Deletion needs strong proof; a platform sign-in is that, at once.
    assert_eq!(created["status"]["code"], "in_review");
    assert_eq!(created["verification"]["method"], "platform_token");
    let session = created["session"]["token"].as_str().unwrap();
    let reference = created["reference"].as_str().unwrap();
    assert_eq!(
        get_with_session(&app, reference, session).await.status(),
        StatusCode::OK
    );
}
on_both_backends!(
    a_platform_sign_in_verifies_at_once_and_bad_tokens_are_refused,
    super::platform_hs256
);

async fn a_guardians_request_needs_the_staff_check_and_a_minor_cannot_submit_alone(app: TestApp) {
    let (_, agent) = app.staff("agent", Role::Agent).await;
    let child =
        json!({ "name": "小明", "email": "guardian@example.cn", "birth_date": "2016-03-01" });
    let alone =
        json!({ "kind": "access", "subject": child, "details": { "categories": ["account"] } });
    let res = app.post_json("/api/v1/requests", &alone, None).await;
    assert_eq!(
        error_code(res).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "minor_needs_guardian".into()
        )
    );
    let with_guardian = json!({ "kind": "access", "representative": "guardian", "subject": child, "details": { "categories": ["account"] } });
    let res = app
        .post_json("/api/v1/requests", &with_guardian, None)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reference = res.json::<Value>().await.unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    app.verify_by_code(&reference).await;
    let view = app.find(&agent, &reference).await;
    assert_eq!(
        view["status"]["code"], "awaiting_verification",
        "a code is not enough for a guardian"
    );
    let id = view["id"].as_str().unwrap();
    // Nothing can complete it meanwhile.
    assert_eq!(
        app.act_err(&agent, id, json!({ "command": "complete", "summary": "x" }))
            .await,
        (StatusCode::CONFLICT, "command_not_allowed".into())
    );
    assert_eq!(
        app.act_err(
            &agent,
            id,
            json!({ "command": "verify", "method": "staff_check" })
        )
        .await,
        (StatusCode::UNPROCESSABLE_ENTITY, "evidence_required".into())
    );
    let checked = app.staff_check(&agent, id).await;
    assert_eq!(checked["status"]["code"], "in_review");
    // Staff may not claim a code was entered.
    let other = app.submit("access", "cn").await;
    let other_id = app.id_of(&agent, &other.reference).await;
    assert_eq!(
        app.act_err(
            &agent,
            &other_id,
            json!({ "command": "verify", "method": "email_code" })
        )
        .await,
        (StatusCode::FORBIDDEN, "not_permitted".into())
    );
}
on_both_backends!(a_guardians_request_needs_the_staff_check_and_a_minor_cannot_submit_alone);

/// Every subject route that shows or changes a request, with (method, path, body).
fn subject_routes(reference: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        ("GET", format!("/api/v1/requests/{reference}"), json!(null)),
        (
            "GET",
            format!("/api/v1/requests/{reference}/messages"),
            json!(null),
        ),
        (
            "POST",
            format!("/api/v1/requests/{reference}/withdraw"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/requests/{reference}/reply"),
            json!({ "message": "hi" }),
        ),
    ]
}

async fn no_subject_route_answers_without_a_valid_session(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;
    let other = app.submit("complaint", "cn").await;
    let other_session = app.verify_by_code(&other.reference).await;
    for (method, path, body) in subject_routes(&sub.reference) {
        let send = |auth: Option<String>| {
            let mut req = app.client.request(method.parse().unwrap(), app.url(&path));
            if !body.is_null() {
                req = req.json(&body);
            }
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            req.send()
        };
        let none = send(None).await.unwrap();
        assert_eq!(
            none.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a session"
        );
        for bad in [
            format!("Bearer {session}x"),
            "Bearer nonsense".to_owned(),
            format!("Bearer {other_session}"),
        ] {
            let res = send(Some(bad.clone())).await.unwrap();
            assert_eq!(
                error_code(res).await,
                (StatusCode::UNAUTHORIZED, "unauthorized".into()),
                "{method} {path}"
            );
        }
    }
    // An unknown reference with a valid session looks the same as a wrong session.
    let res = get_with_session(&app, "DSR-0000-0000", &session).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    // And the real session works on every route.
    let ok = get_with_session(&app, &sub.reference, &session).await;
    assert_eq!(ok.status(), StatusCode::OK);
}
on_both_backends!(no_subject_route_answers_without_a_valid_session);

fn tight_limits(config: &mut Config) {
    config.rate_limits.submissions_per_ip = 2;
    config.rate_limits.code_checks_per_reference = 3;
}

async fn submissions_and_code_checks_are_rate_limited(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    app.submit("complaint", "cn").await;
    let body = json!({ "kind": "access", "subject": { "email": "third@example.cn" }, "details": { "categories": ["orders"] } });
    let res = app.post_json("/api/v1/requests", &body, None).await;
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        error_code(res).await,
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into())
    );
    // Three guesses at one reference a minute, whatever the code.
    let code = app.code_for(&sub.reference).await;
    for _ in 0..3 {
        let res = post_code(&app, &sub.reference, &wrong(&code)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = post_code(&app, &sub.reference, &code).await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited".into())
    );
}
on_both_backends!(
    submissions_and_code_checks_are_rate_limited,
    super::tight_limits
);

async fn a_second_open_request_of_the_same_kind_is_flagged_not_merged(app: TestApp) {
    let admin = app.admin_token().await;
    let first = app.submit("access", "cn").await;
    let second = app.submit("access", "cn").await;
    let other_kind = app.submit("complaint", "cn").await;
    for r in [&first, &second, &other_kind] {
        app.verify_by_code(&r.reference).await;
    }
    let view = app.find(&admin, &second.reference).await;
    assert_eq!(view["duplicate_of"], first.reference.as_str());
    assert!(app.find(&admin, &first.reference).await["duplicate_of"].is_null());
    assert!(
        app.find(&admin, &other_kind.reference).await["duplicate_of"].is_null(),
        "another kind is no duplicate"
    );
    let flagged = app.list(&admin, "duplicate=true").await;
    let refs: Vec<&str> = flagged["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, vec![second.reference.as_str()]);
    // Both stay open: staff decide.
    assert_eq!(view["status"]["code"], "in_review");
}
on_both_backends!(a_second_open_request_of_the_same_kind_is_flagged_not_merged);

async fn the_emailed_link_opens_a_page_that_verifies_only_when_confirmed(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    let link = app
        .wait_mail(&sub.reference, |t| {
            t.split_whitespace()
                .find(|w| w.contains("/verify?token="))
                .map(str::to_owned)
        })
        .await;
    let path = &link[link.find("/verify?").unwrap()..];
    let token = path.split("token=").nth(1).unwrap().to_owned();
    // Opening the link (as a mail scanner would) changes nothing.
    let mut form_token = (String::new(), String::new());
    for _ in 0..2 {
        let page = app
            .client
            .get(app.url(path))
            .header("Accept-Language", "en")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("rf_csrf="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        assert!(
            html.contains("Confirm my identity") && html.contains("method=\"post\""),
            "{html}"
        );
        let field = html.split("name=\"csrf\" value=\"").nth(1).unwrap();
        form_token = (cookie, field.split('"').next().unwrap().to_owned());
    }
    let (cookie, csrf) = form_token;
    // A post from another site (no form token) is refused: it cannot sign the visitor in to
    // a request of the poster's choosing.
    let forged = app
        .client
        .post(app.url("/verify?lang=en"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(!forged
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("rf_session=")));
    let admin = app.admin_token().await;
    assert_eq!(
        app.find(&admin, &sub.reference).await["status"]["code"],
        "awaiting_verification"
    );
    // Confirming verifies and opens the portal session.
    let res = app
        .client
        .post(app.url("/verify?lang=zh-CN"))
        .header("Cookie", format!("rf_csrf={cookie}"))
        .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("rf_session=")));
    let html = res.text().await.unwrap();
    assert!(
        html.contains("身份已验证") && html.contains(&sub.reference),
        "{html}"
    );
    assert_eq!(
        app.find(&admin, &sub.reference).await["status"]["code"],
        "in_review"
    );
    // Once only.
    let again = app
        .client
        .post(app.url("/verify?lang=en"))
        .header("Cookie", format!("rf_csrf={cookie}"))
        .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.text().await.unwrap().contains("cannot be used"));
}
on_both_backends!(the_emailed_link_opens_a_page_that_verifies_only_when_confirmed);

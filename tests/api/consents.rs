//! The consent ledger: a verified consent withdrawal (platform-signed) is recorded at once,
//! the platform reads it through its API and is told by a signed webhook; the platform records
//! its own grants; bad keys, purposes and sources are refused and change nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app_with, Backend, TestApp};
use crate::smtp::HttpCapture;
use crate::verification::{platform_hs256, platform_token, PLATFORM_SECRET};

const KEY: &str = "the platform's consent API key";
const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

async fn consents(app: &TestApp, user: &str, key: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/subjects/{user}/consents")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn record(app: &TestApp, user: &str, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/subjects/{user}/consents")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn granted(doc: &Value, purpose: &str) -> Value {
    doc["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == purpose)
        .unwrap()["granted"]
        .clone()
}

async fn the_ledger(backend: Backend) {
    let hook = HttpCapture::start().await;
    let url = hook.url();
    let Some(app) = spawn_app_with(backend, move |c| {
        platform_hs256(c);
        c.consents.api_key = Some(rightsflow::config::Secret::new(KEY));
        c.consents.webhook_url = Some(url);
        c.consents.webhook_secret = Some(rightsflow::config::Secret::new(WEBHOOK_SECRET));
    })
    .await
    else {
        return crate::helpers::skip("consents::the_ledger");
    };
    let user = "platform-user-42";
    // The platform records grants made in its settings.
    for purpose in ["partner_sharing", "marketing_messages", "location_services"] {
        let res = record(
            &app,
            user,
            KEY,
            json!({ "purpose": purpose, "granted": true }),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let doc: Value = consents(&app, user, KEY).await.json().await.unwrap();
    assert_eq!(granted(&doc, "partner_sharing"), true);
    assert_eq!(
        granted(&doc, "personalised_recommendations"),
        Value::Null,
        "never recorded"
    );

    // A consent withdrawal signed by the platform: verified and approved at once, recorded.
    let token = platform_token(
        PLATFORM_SECRET,
        "https://weimacms.example",
        "rightsflow",
        300,
    );
    let body = json!({ "kind": "consent_withdrawal", "subject": { "email": "u42@example.cn" },
                       "details": { "consents": ["partner_sharing", "marketing_messages"] } });
    let res = app
        .client
        .post(app.url("/api/v1/requests"))
        .header("X-Platform-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let reference = res.json::<Value>().await.unwrap()["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut doc = Value::Null;
    for _ in 0..100 {
        doc = consents(&app, user, KEY).await.json().await.unwrap();
        if granted(&doc, "marketing_messages") == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(granted(&doc, "partner_sharing"), false, "{doc}");
    assert_eq!(granted(&doc, "marketing_messages"), false);
    assert_eq!(
        granted(&doc, "location_services"),
        true,
        "not named: unchanged"
    );
    let source = doc["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == "partner_sharing")
        .unwrap()["source"]
        .clone();
    assert_eq!(source, format!("request:{reference}"));
    assert_eq!(
        doc["history"].as_array().unwrap().len(),
        5,
        "grants and withdrawals kept"
    );
    // The request is completed by the system.
    let admin = app.admin_token().await;
    let view = app.find(&admin, &reference).await;
    assert_eq!(view["status"]["code"], "completed", "{view}");

    // The platform is told of each withdrawal, signed; not of its own grants.
    let calls = hook.wait_for(2, 10).await;
    assert_eq!(calls.len(), 2);
    for (headers, body) in &calls {
        let h = |k: &str| {
            headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let ts: i64 = h("x-rightsflow-timestamp").parse().unwrap();
        assert_eq!(
            h("x-rightsflow-signature"),
            rightsflow::auth::signing::signature(WEBHOOK_SECRET, ts, body)
        );
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["platform_user_id"], user);
        assert_eq!(event["granted"], false);
        assert!(
            event["email"].is_null(),
            "the account, not the email, names the subject"
        );
    }

    // Refusals change nothing.
    assert_eq!(
        consents(&app, user, "wrong key").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = record(
        &app,
        user,
        "wrong key",
        json!({ "purpose": "partner_sharing", "granted": true }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = record(
        &app,
        user,
        KEY,
        json!({ "purpose": "mind_reading", "granted": true }),
    )
    .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_purpose".into())
    );
    let res = record(
        &app,
        user,
        KEY,
        json!({ "purpose": "partner_sharing", "granted": true, "source": "<script>" }),
    )
    .await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_source".into())
    );
    let after: Value = consents(&app, user, KEY).await.json().await.unwrap();
    assert_eq!(after["history"].as_array().unwrap().len(), 5);
    // A Global Privacy Control signal, forwarded by the platform, with its source.
    let res = record(
        &app,
        user,
        KEY,
        json!({ "purpose": "personalised_recommendations", "granted": false, "source": "gpc" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let after: Value = consents(&app, user, KEY).await.json().await.unwrap();
    assert_eq!(granted(&after, "personalised_recommendations"), false);
}

async fn without_a_key_the_api_is_off(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return crate::helpers::skip("consents::without_a_key_the_api_is_off");
    };
    let res = consents(&app, "u1", "anything").await;
    assert_eq!(
        error_code(res).await,
        (StatusCode::NOT_FOUND, "not_enabled".into())
    );
}

#[tokio::test]
async fn the_ledger_on_sqlite() {
    the_ledger(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_ledger_on_postgres() {
    the_ledger(Backend::Postgres).await;
}

#[tokio::test]
async fn without_a_key_the_api_is_off_on_sqlite() {
    without_a_key_the_api_is_off(Backend::Sqlite).await;
}

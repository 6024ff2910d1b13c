//! Global Privacy Control: the platform forwards a signed-in user's `Sec-GPC` header with the
//! token it signed for them; `Sec-GPC: 1` withdraws sharing and personalised advertising in
//! the consent ledger (source `gpc`), once.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_code, TestApp};
use crate::on_both_backends;
use crate::verification::{platform_token, PLATFORM_SECRET};

const USER: &str = "platform-user-42";

async fn signal(app: &TestApp, token: &str, gpc: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/platform/gpc"))
        .header("X-Platform-Token", token);
    if let Some(v) = gpc {
        req = req.header("Sec-GPC", v);
    }
    req.send().await.unwrap()
}

/// The ledger's events for the user: (purpose, granted, source).
fn ledger(app: &TestApp) -> Vec<(String, bool, String)> {
    let (_, history) = rightsflow::fulfilment::consents::current(&app.services, USER).unwrap();
    history
        .into_iter()
        .map(|e| (e.purpose, e.granted, e.source))
        .collect()
}

async fn a_gpc_signal_withdraws_sharing_and_advertising_once(app: TestApp) {
    let token = platform_token(
        PLATFORM_SECRET,
        "https://weimacms.example",
        "rightsflow",
        300,
    );

    // No signal, or another value: nothing changes, and the answer says so.
    for gpc in [None, Some("0"), Some("yes")] {
        let res = signal(&app, &token, gpc).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["gpc"], false, "{body}");
        assert_eq!(body["withdrawn"].as_array().unwrap().len(), 0);
    }
    assert!(ledger(&app).is_empty());

    // A bad token is refused and records nothing, signal or not.
    let forged = platform_token(
        "another secret, also 32+ bytes long",
        "https://weimacms.example",
        "rightsflow",
        300,
    );
    let expired = platform_token(
        PLATFORM_SECRET,
        "https://weimacms.example",
        "rightsflow",
        -600,
    );
    for bad in [forged.as_str(), expired.as_str(), ""] {
        let res = signal(&app, bad, Some("1")).await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNAUTHORIZED, "invalid_platform_token".into())
        );
    }
    assert!(ledger(&app).is_empty());

    let res = signal(&app, &token, Some("1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["gpc"], true);
    assert_eq!(body["platform_user_id"], USER);
    assert_eq!(
        body["withdrawn"],
        serde_json::json!(["partner_sharing", "personalised_recommendations"])
    );
    let after_first = ledger(&app);
    assert_eq!(
        after_first,
        vec![
            ("partner_sharing".into(), false, "gpc".into()),
            ("personalised_recommendations".into(), false, "gpc".into()),
        ]
    );

    // The same signal again records nothing new.
    let body: Value = signal(&app, &token, Some("1")).await.json().await.unwrap();
    assert_eq!(body["withdrawn"].as_array().unwrap().len(), 0, "{body}");
    assert_eq!(body["already_withdrawn"].as_array().unwrap().len(), 2);
    assert_eq!(ledger(&app), after_first);

    // The user, told of the conflict, consents to sharing in the platform's pages: a later
    // signal keeps that choice.
    rightsflow::fulfilment::consents::record_from_platform(
        &app.services,
        USER,
        "partner_sharing",
        true,
        "platform",
        rightsflow::service::now(),
    )
    .unwrap();
    let body: Value = signal(&app, &token, Some("1")).await.json().await.unwrap();
    assert_eq!(
        body["kept"],
        serde_json::json!(["partner_sharing"]),
        "{body}"
    );
    assert_eq!(ledger(&app).len(), 3);
}

on_both_backends!(
    a_gpc_signal_withdraws_sharing_and_advertising_once,
    crate::verification::platform_hs256
);

async fn without_a_platform_key_a_signal_is_refused(app: TestApp) {
    let token = platform_token(
        PLATFORM_SECRET,
        "https://weimacms.example",
        "rightsflow",
        300,
    );
    let res = signal(&app, &token, Some("1")).await;
    assert_eq!(
        error_code(res).await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "platform_not_configured".into()
        )
    );
    assert!(ledger(&app).is_empty());
}

on_both_backends!(without_a_platform_key_a_signal_is_refused);

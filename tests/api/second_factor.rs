//! The staff second factor (TOTP) end to end over HTTP: an admin requires it, the account
//! enrols at its next console sign-in, codes work once, the API asks for them, an admin's
//! reset ends sessions, and staff can turn it on and off for themselves.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::console::{cookie_of, goes_to_sign_in, Console};
use crate::helpers::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, STAFF_PASSWORD};
use crate::on_both_backends;
use rightsflow::auth::totp;
use rightsflow::domain::Role;

const AGENT: &str = "agent@rightsflow.test";

/// The step now. Tests name steps explicitly: a code works once, so later codes use later
/// steps (within the ±1 step allowed), whatever moment the test reaches them.
fn step_now() -> i64 {
    totp::step_of(chrono::Utc::now().timestamp())
}

fn code(secret: &str, step: i64) -> String {
    totp::code_at(secret, step).unwrap()
}

/// The secret a page shows (grouped in fours for typing).
fn secret_on(html: &str) -> String {
    let after = html
        .split("id=\"totp-secret\"")
        .nth(1)
        .expect("a secret shown");
    let text = after.split('>').nth(1).unwrap().split('<').next().unwrap();
    text.replace(' ', "")
}

/// The password step of a console sign-in; the pending cookie kept for the code step.
async fn password_step<'a>(
    app: &'a TestApp,
    email: &str,
    password: &str,
) -> (Console<'a>, reqwest::Response) {
    let mut c = Console::at_sign_in(app).await;
    let res = c
        .post(
            "/console/sign-in",
            &[("email", email), ("password", password)],
        )
        .await;
    if let Some(pending) = cookie_of(&res, "rf_staff_pending") {
        c.cookies = format!("{}; rf_staff_pending={pending}", c.cookies);
    }
    (c, res)
}

/// The code step; on success the session cookie is kept.
async fn code_step(c: &mut Console<'_>, code: &str) -> reqwest::Response {
    let res = c
        .post(
            "/console/sign-in/code",
            &[("code", code), ("next", "/console/queue")],
        )
        .await;
    if let Some(staff) = cookie_of(&res, "rf_staff") {
        c.cookies = format!("{}; rf_staff={staff}", c.cookies);
    }
    res
}

async fn api_login(app: &TestApp, code: Option<&str>) -> (StatusCode, Value) {
    api_login_as(app, AGENT, code).await
}

async fn api_login_as(app: &TestApp, email: &str, code: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({ "email": email, "password": STAFF_PASSWORD });
    if let Some(code) = code {
        body["totp_code"] = json!(code);
    }
    let res = app.post_json("/api/v1/staff/login", &body, None).await;
    (res.status(), res.json().await.unwrap())
}

async fn sign_in_outcomes(app: &TestApp, id: &str) -> Vec<String> {
    let (db, id) = (app.services.db().clone(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        rightsflow::storage::staff::sign_ins(&mut db.conn().unwrap(), Some(&id), 20).unwrap()
    })
    .await
    .unwrap()
    .into_iter()
    .map(|(_, outcome, _)| outcome)
    .collect()
}

async fn an_admin_requires_a_second_factor_and_the_account_enrols(app: TestApp) {
    let (agent_id, _) = app.staff("agent", Role::Agent).await;
    let before = Console::sign_in(&app, AGENT, STAFF_PASSWORD).await;
    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = admin
        .post(
            &format!("/console/staff/{agent_id}"),
            &[("totp_required", "1")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Required and not set up: the open session ends, and the API refuses until enrolment.
    assert!(goes_to_sign_in(&before.get("/console/queue").await));
    let (status, body) = api_login(&app, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "totp_enrolment_required", "{body}");

    // The password step shows the enrolment: a QR code and the key; no session yet.
    let (mut c, res) = password_step(&app, AGENT, STAFF_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(cookie_of(&res, "rf_staff").is_none());
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains("设置两步验证"),
        "{html}"
    );
    let secret = secret_on(&html);
    // The same key again if the page is reloaded (a half-scanned code stays good).
    let (_, again) = password_step(&app, AGENT, STAFF_PASSWORD).await;
    assert_eq!(secret_on(&again.text().await.unwrap()), secret);
    // A wrong code: refused, recorded, the enrolment shown again; no session.
    let wrong = code_step(&mut c, "000000").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_of(&wrong, "rf_staff").is_none());
    assert_eq!(secret_on(&wrong.text().await.unwrap()), secret);
    // The right one: signed in, enrolled.
    let s0 = step_now();
    let ok = code_step(&mut c, &code(&secret, s0)).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/console/queue");
    assert_eq!(c.get("/console/queue").await.status(), StatusCode::OK);
    let account = c.get("/console/account").await.text().await.unwrap();
    assert!(
        account.contains("id=\"totp-state\"><strong>已开启"),
        "{account}"
    );
    assert!(
        account.contains("两步验证码错误"),
        "the wrong code is listed"
    );

    // Next sign-in: the code page, without the key. The code just used is refused (once only).
    let (mut c2, res) = password_step(&app, AGENT, STAFF_PASSWORD).await;
    let html = res.text().await.unwrap();
    assert!(!html.contains("totp-secret") && html.contains("name=\"code\""));
    let reused = code_step(&mut c2, &code(&secret, s0)).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    let ok = code_step(&mut c2, &code(&secret, s0 + 1)).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    // Without the pending cookie there is nothing to finish: back to the password.
    let mut stranger = Console::at_sign_in(&app).await;
    let res = code_step(&mut stranger, &code(&secret, s0 + 1)).await;
    assert_eq!(res.headers()["location"], "/console/sign-in?done=expired");

    // The API: the code is asked for, checked, and works once.
    let (status, body) = api_login(&app, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("totp_required"))
    );
    let (status, body) = api_login(&app, Some("123 45")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_totp"))
    );
    let (status, body) = api_login(&app, Some(&code(&secret, s0 + 1))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_totp")),
        "the step the console used"
    );
    // (The API's success needs a step the console has not used: shown after the reset below.)

    // An admin resets it (a lost phone): sessions end, and the next sign-in enrols anew.
    let res = admin
        .post(
            &format!("/console/staff/{agent_id}"),
            &[("totp_reset", "1")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(goes_to_sign_in(&c2.get("/console/queue").await));
    let (mut c3, res) = password_step(&app, AGENT, STAFF_PASSWORD).await;
    let new_secret = secret_on(&res.text().await.unwrap());
    assert_ne!(new_secret, secret);
    let t0 = step_now();
    assert_eq!(
        code_step(&mut c3, &code(&new_secret, t0)).await.status(),
        StatusCode::SEE_OTHER
    );
    let (status, body) = api_login(&app, Some(&code(&new_secret, t0 + 1))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api_login(&app, Some(&code(&new_secret, t0 + 1))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code works once");

    let outcomes = sign_in_outcomes(&app, &agent_id).await;
    assert_eq!(
        outcomes.iter().filter(|o| *o == "bad_totp").count(),
        5,
        "{outcomes:?}"
    );
}
// Many sign-ins and codes from one address: the limit is tested below.
on_both_backends!(
    an_admin_requires_a_second_factor_and_the_account_enrols,
    |c| c.rate_limits.staff_logins_per_ip = 100
);

async fn staff_turn_their_own_second_factor_on_and_off(app: TestApp) {
    let (reviewer_id, _) = app.staff("reviewer", Role::Reviewer).await;
    let c = Console::sign_in(&app, "reviewer@rightsflow.test", STAFF_PASSWORD).await;
    let page = c.get("/console/account").await.text().await.unwrap();
    assert!(page.contains("id=\"totp-begin\""), "offered to turn it on");
    let res = c
        .post("/console/account/totp", &[("action", "begin")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let secret = secret_on(&res.text().await.unwrap());
    // Not on until the first code proves the app has the key.
    let wrong = c
        .post(
            "/console/account/totp",
            &[("action", "confirm"), ("code", "999999")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        secret_on(&wrong.text().await.unwrap()),
        secret,
        "shown again"
    );
    let (status, _) = api_login_as(&app, "reviewer@rightsflow.test", None).await;
    assert_eq!(status, StatusCode::OK, "a pending key asks for nothing yet");
    let s0 = step_now();
    let ok = c
        .post(
            "/console/account/totp",
            &[("action", "confirm"), ("code", &code(&secret, s0))],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/console/account?done=enabled");
    // On: the API now asks for a code; turning it off needs one too.
    let (status, _) = api_login_as(&app, "reviewer@rightsflow.test", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let off = c
        .post("/console/account/totp", &[("action", "off"), ("code", "")])
        .await;
    assert_eq!(off.status(), StatusCode::UNAUTHORIZED);
    // While an admin requires it, it cannot be turned off.
    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = admin
        .post(
            &format!("/console/staff/{reviewer_id}"),
            &[("totp_required", "1")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // (Enrolled already: the session lives on.)
    let page = c.get("/console/account").await.text().await.unwrap();
    assert!(!page.contains("id=\"totp-off\""), "no way to turn it off");
    let off = c
        .post(
            "/console/account/totp",
            &[("action", "off"), ("code", &code(&secret, s0 + 1))],
        )
        .await;
    assert_eq!(off.status(), StatusCode::FORBIDDEN);
    admin
        .post(
            &format!("/console/staff/{reviewer_id}"),
            &[("totp_required", "0")],
        )
        .await;
    let off = c
        .post(
            "/console/account/totp",
            &[("action", "off"), ("code", &code(&secret, s0 + 1))],
        )
        .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let (status, _) = api_login_as(&app, "reviewer@rightsflow.test", None).await;
    assert_eq!(status, StatusCode::OK, "off: the password is enough again");
    // Only admins require or reset, and not for themselves.
    let res = c
        .post(
            &format!("/console/staff/{reviewer_id}"),
            &[("totp_reset", "1")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
// Many sign-ins and codes from one address: the limit is tested below.
on_both_backends!(staff_turn_their_own_second_factor_on_and_off, |c| c
    .rate_limits
    .staff_logins_per_ip =
    100);

async fn code_guesses_count_against_the_sign_in_limit(app: TestApp) {
    let (agent_id, _) = app.staff("agent", Role::Agent).await;
    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    admin
        .post(
            &format!("/console/staff/{agent_id}"),
            &[("totp_required", "1")],
        )
        .await;
    let (mut c, _) = password_step(&app, AGENT, STAFF_PASSWORD).await;
    let mut statuses = vec![];
    for guess in ["111111", "222222", "333333", "444444"] {
        let res = code_step(&mut c, guess).await;
        statuses.push((res.status(), res.headers().contains_key("retry-after")));
    }
    assert_eq!(statuses[0], (StatusCode::UNAUTHORIZED, false));
    assert_eq!(
        statuses[3],
        (StatusCode::TOO_MANY_REQUESTS, true),
        "{statuses:?}"
    );
}
// The limit (per address, per minute) counts the password steps of the test's sign-ins too.
on_both_backends!(code_guesses_count_against_the_sign_in_limit, |c| c
    .rate_limits
    .staff_logins_per_ip =
    4);

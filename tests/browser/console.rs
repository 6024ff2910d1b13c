//! The staff console in a real browser: an agent signs in, finds a new request, asks a question
//! the subject answers, prepares a deletion that a reviewer approves (the preparer cannot give
//! the second approval); a reviewer extends an `eu` request and sees the new date; an auditor
//! sees everything and can do nothing; an anonymous visitor reaches nothing.

use serde_json::json;

use crate::helpers::{TestApp, STAFF_PASSWORD};
use crate::webdriver::Browser;
use crate::{screenshot_path, start};
use rightsflow::domain::Role;

fn sign_in(app: &TestApp, b: &Browser, email: &str) {
    b.goto(&app.url("/console/sign-in"));
    b.fill("#f-email", email);
    b.fill("#f-password", STAFF_PASSWORD);
    b.submit("#sign-in");
    b.find("#queue");
}

fn sign_out(b: &Browser) {
    b.submit("#sign-out");
    b.find("#f-password");
}

fn status(b: &Browser) -> String {
    b.attribute("#status", "data-status").unwrap_or_default()
}

/// Opens a request from the queue by searching for its reference.
fn open_from_queue(app: &TestApp, b: &Browser, reference: &str) {
    b.goto(&app.url("/console/queue"));
    b.fill("#f-q", reference);
    b.submit("#apply-filters");
    b.submit(&format!("tr[data-reference='{reference}'] td.ref a"));
    b.wait_until("the request page", |b| b.text("#reference") == reference);
}

fn act(b: &Browser, form: &str, field: Option<(&str, &str)>, button: &str) {
    if let Some((css, text)) = field {
        b.fill(css, text);
    }
    b.submit(&format!("{form} {button}"));
}

#[tokio::test]
async fn an_agent_and_a_reviewer_take_a_deletion_through_four_eyes() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    app.staff("agent", Role::Agent).await;
    app.staff("reviewer", Role::Reviewer).await;
    let sub = app.submit("deletion", "cn").await;
    let session = app.verify_by_code(&sub.reference).await;

    sign_in(&app, &b, "agent@rightsflow.test");
    // The new request is in the default queue.
    assert!(b.exists(&format!("tr[data-reference='{}']", sub.reference)));
    b.screenshot(&screenshot_path("console-queue-desktop"));
    open_from_queue(&app, &b, &sub.reference);
    assert_eq!(status(&b), "awaiting_verification");
    // A code is not enough for deletion: the agent records the identity check.
    act(
        &b,
        "#action-verify",
        Some(("#f-evidence", "核对了身份证原件")),
        "button",
    );
    b.wait_until("verified", |b| status(b) == "in_review");
    act(&b, "#action-assign-me", None, "button");
    b.wait_until("assigned", |b| b.text("#assignee").contains("agent@"));
    assert!(
        b.exists("#action-done"),
        "the page says the action was done"
    );
    // Details in words, not codes.
    assert!(
        b.text("#details").contains("注销"),
        "{}",
        b.text("#details")
    );
    act(
        &b,
        "#action-request-info",
        Some(("#f-question", "请提供注册时使用的手机号。")),
        "button",
    );
    b.wait_until("asked", |b| status(b) == "awaiting_subject");

    // The subject answers through the API.
    let res = app
        .subject_post(
            &sub.reference,
            "reply",
            &session,
            &json!({ "message": "13800138000" }),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    b.reload();
    assert_eq!(status(&b), "in_review");
    assert!(b.text("#timeline").contains("13800138000"));

    // The agent prepares (first approval); the page then says who prepared it.
    act(
        &b,
        "#action-approve",
        Some(("#f-comment", "已核对，可删除")),
        "#approve-button",
    );
    b.wait_until("prepared", |b| b.text("#prepared-by").contains("agent@"));
    assert_eq!(status(&b), "in_review");
    // The preparer is offered no second approval, and a forged one is refused.
    assert!(!b.exists("#action-approve"));
    b.script(
        "var f = document.getElementById('action-note'); \
         f.querySelector('input[name=command]').value = 'approve'; f.submit(); return true;",
    );
    b.find("#action-error");
    assert_eq!(status(&b), "in_review");
    sign_out(&b);

    // A reviewer gives the second approval.
    sign_in(&app, &b, "reviewer@rightsflow.test");
    b.goto(&app.url("/console/queue?second=1"));
    assert!(
        b.exists(&format!("tr[data-reference='{}']", sub.reference)),
        "waiting for my approval"
    );
    open_from_queue(&app, &b, &sub.reference);
    assert!(
        b.text("#action-approve").contains("agent@"),
        "shows who prepared it"
    );
    act(&b, "#action-approve", None, "#approve-button");
    b.wait_until("approved", |b| status(b) == "in_progress");
    act(
        &b,
        "#action-complete",
        Some(("#f-summary", "账号已注销，数据已删除。")),
        "#complete-button",
    );
    b.wait_until("completed", |b| status(b) == "completed");
    b.screenshot(&screenshot_path("console-request-desktop"));
}

#[tokio::test]
async fn a_reviewer_extends_an_eu_request_after_seeing_the_new_date() {
    let Some((app, b)) = start("en-US").await else {
        return;
    };
    app.staff("reviewer", Role::Reviewer).await;
    let sub = app.submit("access", "eu").await;
    app.verify_by_code(&sub.reference).await;
    sign_in(&app, &b, "reviewer@rightsflow.test");
    open_from_queue(&app, &b, &sub.reference);
    let before = b.text("#due");
    act(
        &b,
        "#action-extend",
        Some(("#f-reason", "The records span several systems.")),
        "#extend-button",
    );
    // A preview first: the new date, nothing changed yet.
    b.find("#preview-due");
    let new_due = b.text("#preview-due");
    assert!(
        !new_due.is_empty() && !before.contains(&new_due),
        "{before} -> {new_due}"
    );
    let admin = app.admin_token().await;
    assert!(app.find(&admin, &sub.reference).await["extended_at"].is_null());
    b.submit("#confirm-action");
    b.wait_until("extended", |b| b.text("#due").contains(&new_due));
    assert!(!app.find(&admin, &sub.reference).await["extended_at"].is_null());
    assert!(!b.exists("#action-extend"), "an extension is taken once");
}

#[tokio::test]
async fn an_auditor_sees_everything_and_can_do_nothing() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    app.staff("auditor", Role::Auditor).await;
    let sub = app.submit("access", "cn").await;
    app.verify_by_code(&sub.reference).await;
    sign_in(&app, &b, "auditor@rightsflow.test");
    open_from_queue(&app, &b, &sub.reference);
    assert!(b.exists("#read-only"));
    assert!(b.find_all("form.action").is_empty(), "no action forms");
    assert!(!b.text("#subject").is_empty(), "can read the request");
    // Not the staff admin page either.
    b.goto(&app.url("/console/staff"));
    b.find("#error-code");
    assert_eq!(b.text("#error-code"), "not_permitted");
}

#[tokio::test]
async fn an_anonymous_visitor_reaches_nothing() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    let sub = app.submit("access", "cn").await;
    let admin = app.admin_token().await;
    let id = app.id_of(&admin, &sub.reference).await;
    for path in [
        "/console",
        "/console/queue",
        &format!("/console/requests/{id}"),
        "/console/staff",
    ] {
        b.goto(&app.url(path));
        b.find("#f-password");
        assert!(b.current_url().contains("/console/sign-in"), "{path}");
        assert!(!b.source().contains(&sub.reference), "{path} leaks nothing");
    }
    // Signing in returns to the page asked for.
    b.goto(&app.url(&format!("/console/requests/{id}")));
    b.fill("#f-email", crate::helpers::ADMIN_EMAIL);
    b.fill("#f-password", crate::helpers::ADMIN_PASSWORD);
    b.submit("#sign-in");
    b.wait_until("the request", |b| b.text("#reference") == sub.reference);
}

#[tokio::test]
async fn an_admin_requires_two_step_and_the_agent_sets_it_up_with_an_app() {
    use rightsflow::auth::totp;
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    app.staff("agent", Role::Agent).await;
    // The admin requires it from the staff page.
    b.goto(&app.url("/console/sign-in"));
    b.fill("#f-email", crate::helpers::ADMIN_EMAIL);
    b.fill("#f-password", crate::helpers::ADMIN_PASSWORD);
    b.submit("#sign-in");
    b.find("#queue");
    b.goto(&app.url("/console/staff"));
    b.submit("tr[data-email='agent@rightsflow.test'] .require-totp");
    b.wait_until("required", |b| {
        b.text("tr[data-email='agent@rightsflow.test'] .totp-state")
            .contains("待设置")
    });
    sign_out(&b);

    // The agent's password leads to the set-up: a QR code to scan and the key to type.
    b.fill("#f-email", "agent@rightsflow.test");
    b.fill("#f-password", STAFF_PASSWORD);
    b.submit("#sign-in");
    b.find(".qr svg");
    let size = b.script(
        "const r = document.querySelector('.qr svg').getBoundingClientRect(); return [r.width, r.height];",
    );
    assert!(
        size[0].as_f64().unwrap() >= 150.0 && size[1].as_f64().unwrap() >= 150.0,
        "{size}"
    );
    b.screenshot(&screenshot_path("console-two-step-set-up"));
    let secret = b.text("#totp-secret").replace(' ', "");
    // The phone's app (here, the same algorithm) gives the code.
    let step = totp::step_of(chrono::Utc::now().timestamp());
    b.fill("#f-code", "000000");
    b.submit("#code-submit");
    b.wait_until("refused", |b| b.exists("#code-error"));
    assert!(b.exists(".qr svg"), "the set-up is shown again");
    b.fill("#f-code", &totp::code_at(&secret, step).unwrap());
    b.submit("#code-submit");
    b.find("#queue");
    b.submit("#my-account");
    b.wait_until("the account page", |b| b.exists("#totp-state"));
    assert!(b.text("#totp-state").contains("已开启"));
    sign_out(&b);

    // Next time: password, then just the code.
    b.fill("#f-email", "agent@rightsflow.test");
    b.fill("#f-password", STAFF_PASSWORD);
    b.submit("#sign-in");
    b.find("#f-code");
    assert!(!b.exists("#totp-secret"), "the key is not shown again");
    b.fill("#f-code", &totp::code_at(&secret, step + 1).unwrap());
    b.submit("#code-submit");
    b.find("#queue");
}

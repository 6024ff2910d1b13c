//! For each of the seven rights: form -> code from the mail -> verified -> request page ->
//! staff act through the API -> the person sees the change, answers a question, and (for
//! access) downloads the result.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::webdriver::Browser;
use crate::{screenshot_path, start};
use rightsflow::domain::Role;

/// Fills the kind's own fields the way a person would.
fn fill_kind(b: &Browser, kind: &str) {
    match kind {
        "access" => {
            b.click("input[name=categories][value=account]");
            b.click("input[name=categories][value=orders]");
            b.click("input[name=format][value=csv]");
        }
        "correction" => {
            b.select("#f-field_1", "address");
            b.fill("#f-current_1", "北京市朝阳区旧地址 1 号");
            b.fill("#f-corrected_1", "上海市浦东新区新地址 2 号");
            b.fill("#f-evidence", "可以提供新的租房合同");
        }
        "deletion" => {
            b.click("input[name=scope][value=account]");
            b.click("#f-understand");
        }
        "restriction" => {
            b.fill("#f-processing", "用我的浏览记录做个性化推荐");
            b.click("input[name=ground][value=objection]");
        }
        "portability" => {
            b.click("input[name=categories][value=orders]");
            b.click("input[name=format][value=csv]");
        }
        "consent_withdrawal" => {
            b.click("input[name=consents][value=partner_sharing]");
            b.click("input[name=consents][value=marketing_messages]");
        }
        "complaint" => {
            b.fill("#f-subject", "Customer service did not answer");
            b.fill(
                "#f-account",
                "I asked for a correction in October and heard nothing.",
            );
        }
        other => panic!("no form filler for {other}"),
    }
}

/// Home -> the right's form -> submitted -> the code page. Returns the reference.
pub fn submit_from_home(app: &TestApp, b: &Browser, kind: &str, email: &str) -> String {
    b.goto(&app.url("/"));
    b.submit(&format!("#right-{kind} a.btn"));
    b.find("#request-form");
    fill_kind(b, kind);
    b.fill("#f-email", email);
    b.submit("#request-form button[type=submit]");
    b.find("#f-code");
    let reference = b.text("#reference");
    assert!(
        reference.starts_with("DSR-"),
        "reference shown: {reference}"
    );
    reference
}

/// Types the code from the mail, lands on the confirmation, opens the request page.
pub async fn verify_with_mailed_code(app: &TestApp, b: &Browser, reference: &str) {
    let code = app.code_for(reference).await;
    b.fill("#f-code", &code);
    b.submit("form[action$='/verify'] button[type=submit]");
    b.find(".due");
    assert_eq!(b.text("#reference"), reference);
}

fn status_code(b: &Browser) -> String {
    b.attribute("#status", "data-status").unwrap_or_default()
}

fn reload(b: &Browser) {
    b.reload();
}

async fn journey(kind: &str, language: &str) {
    let Some((app, b)) = start(language).await else {
        return;
    };
    let english = language.starts_with("en");
    let email = format!("{kind}@subjects.test");
    let reference = submit_from_home(&app, &b, kind, &email);
    // The page speaks the browser's language.
    let lang = b.attribute("html", "lang").unwrap();
    assert_eq!(lang, if english { "en" } else { "zh-CN" });
    verify_with_mailed_code(&app, &b, &reference).await;
    b.submit("#open-request");
    b.find("#timeline");

    let admin = app.admin_token().await;
    let (_, reviewer) = app.staff(&format!("reviewer-{kind}"), Role::Reviewer).await;
    let id = app.id_of(&admin, &reference).await;
    if matches!(kind, "deletion" | "portability") {
        // A code is not enough to delete or export: the page says we are checking.
        assert_eq!(status_code(&b), "awaiting_verification");
        app.staff_check(&admin, &id).await;
        reload(&b);
    }
    if kind == "consent_withdrawal" {
        // Approved as soon as the person is verified (and soon completed: see below).
        let status = status_code(&b);
        assert!(status == "in_progress" || status == "completed", "{status}");
    } else {
        assert_eq!(status_code(&b), "in_review", "{kind}");
        // Staff ask a question; the person sees it, answers it, and the answer is recorded.
        let question = if english {
            "Which account name do you use?"
        } else {
            "请问您注册时使用的用户名是什么？"
        };
        app.act_ok(
            &admin,
            &id,
            json!({ "command": "request_info", "question": question }),
        )
        .await;
        reload(&b);
        assert_eq!(status_code(&b), "awaiting_subject");
        assert_eq!(b.text("#question-text"), question);
        b.fill("#f-message", "weima_user_2026");
        b.submit("#send-reply");
        b.find(".notice");
        assert_eq!(status_code(&b), "in_review");
        assert!(b.text("#timeline").contains("weima_user_2026"));
        let staff_view = app.staff_get(&admin, &id).await;
        assert!(
            staff_view.to_string().contains("weima_user_2026"),
            "the reply reached staff"
        );
        if matches!(kind, "deletion" | "portability") {
            app.act_ok(
                &admin,
                &id,
                json!({ "command": "approve", "comment": "prepared" }),
            )
            .await;
        }
        app.act_ok(&reviewer, &id, json!({ "command": "approve" }))
            .await;
        reload(&b);
        assert_eq!(status_code(&b), "in_progress");
    }
    if kind == "access" {
        download_result(&app, &b, &admin, &id).await;
    }
    let summary = match (kind, english) {
        // The system records the withdrawals in the consent ledger and completes the request.
        ("consent_withdrawal", true) => "The consents you chose are withdrawn",
        ("consent_withdrawal", false) => "已撤回您选择的同意",
        (_, true) => "Done as you asked.",
        (_, false) => "已按您的要求处理完毕。",
    };
    if kind == "consent_withdrawal" {
        b.wait_until("completed by the system", |b| {
            reload(b);
            status_code(b) == "completed"
        });
    } else {
        app.act_ok(
            &admin,
            &id,
            json!({ "command": "complete", "summary": summary }),
        )
        .await;
        reload(&b);
    }
    assert_eq!(status_code(&b), "completed");
    assert!(b.text("#timeline").contains(summary));
    // The in-site messages list what was sent, in the person's language.
    let messages = b.text("#messages");
    assert!(messages.contains(&reference), "{messages}");
    b.screenshot(&screenshot_path(&format!("journey-{kind}-{language}")));
    // Without JavaScript-only controls: withdraw is gone once completed.
    assert!(!b.exists("#withdraw"));
}

/// Staff attach the report; the person downloads it from the request page.
async fn download_result(app: &TestApp, b: &Browser, admin: &str, id: &str) {
    let report = "category,item,source\naccount,email access@subjects.test,accounts db\norders,WM-1001,orders db\n";
    let res = app
        .client
        .post(app.url(&format!(
            "/api/v1/staff/requests/{id}/results?file_name=access-report.csv"
        )))
        .bearer_auth(admin)
        .header("Content-Type", "text/csv")
        .body(report)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    reload(b);
    b.find("#results a.btn");
    b.click("#results a.btn");
    let file = b.downloads.join("access-report.csv");
    b.wait_until("the download", |_| {
        std::fs::read_to_string(&file).is_ok_and(|t| t == report)
    });
    // The download was counted.
    let listed = app
        .services
        .db()
        .conn()
        .map(|mut c| {
            rightsflow::storage::results::live_for_request(
                &mut c,
                id,
                rightsflow::storage::to_db_time(rightsflow::service::now()),
            )
            .unwrap()
        })
        .unwrap();
    assert_eq!(listed[0].downloads, 1);
}

#[tokio::test]
async fn access_in_chinese() {
    journey("access", "zh-CN").await;
}

#[tokio::test]
async fn correction_in_chinese() {
    journey("correction", "zh-CN").await;
}

#[tokio::test]
async fn deletion_in_chinese() {
    journey("deletion", "zh-CN").await;
}

#[tokio::test]
async fn restriction_in_chinese() {
    journey("restriction", "zh-CN").await;
}

#[tokio::test]
async fn portability_in_english() {
    journey("portability", "en-US").await;
}

#[tokio::test]
async fn consent_withdrawal_in_english() {
    journey("consent_withdrawal", "en-US").await;
}

#[tokio::test]
async fn complaint_in_english() {
    journey("complaint", "en-US").await;
}

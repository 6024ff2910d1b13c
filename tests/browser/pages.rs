//! The portal's qualities in a real browser: a guardian's route, errors beside their fields
//! and in the visitor's language with the input kept, the language switch remembered, "find
//! my request", the resend countdown, the emailed link, withdrawing, the keyboard, and
//! screenshots at phone and desktop widths.

use crate::journeys::{submit_from_home, verify_with_mailed_code};
use crate::{screenshot_path, start, start_with};

#[tokio::test]
async fn a_guardian_acts_for_a_child_and_staff_check_the_relationship() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    b.goto(&app.url("/"));
    b.select("#kind-guardian", "deletion");
    b.submit("#representatives form:first-of-type button[type=submit]");
    b.find("input[name=representative][value=guardian]");
    assert!(
        b.text(".notice").contains("监护人"),
        "the form says who fills it in"
    );
    // Switching language keeps the visitor on the guardian's form.
    b.submit(".lang-switch a[lang=en]");
    b.wait_until("English", |b| {
        b.attribute("html", "lang").as_deref() == Some("en")
    });
    assert!(b.exists("input[name=representative][value=guardian]"));
    b.submit(".lang-switch a[lang=zh-CN]");
    b.wait_until("Chinese", |b| {
        b.attribute("html", "lang").as_deref() == Some("zh-CN")
    });
    b.click("input[name=scope][value=account]");
    b.click("#f-understand");
    // The child's date of birth (eight years old); not stored, only checked.
    let birth = (chrono::Utc::now().date_naive() - chrono::Duration::days(8 * 365)).to_string();
    b.script(&format!(
        "document.getElementById('f-birth_date').value = '{birth}'; return true;"
    ));
    b.fill("#f-email", "parent@subjects.test");
    b.submit("#request-form button[type=submit]");
    b.find("#f-code");
    let reference = b.text("#reference");
    verify_with_mailed_code(&app, &b, &reference).await;
    // A code proves the guardian's contact, not the relationship: staff check it first.
    assert!(b
        .attribute("#status", "class")
        .unwrap_or_default()
        .contains("status-attention"));
    assert!(b.text("main").contains("工作人员"), "{}", b.text("main"));
    let admin = app.admin_token().await;
    let staff_view = app.find(&admin, &reference).await;
    assert_eq!(staff_view["representative"], "guardian");
    assert_eq!(staff_view["status"]["code"], "awaiting_verification");
}

#[tokio::test]
async fn errors_sit_beside_their_fields_in_the_visitors_language_and_input_is_kept() {
    for (language, expected) in [("zh-CN", "至少选择一项"), ("en-US", "choose at least one")]
    {
        let Some((app, b)) = start(language).await else {
            return;
        };
        b.goto(&app.url("/rights/access"));
        b.fill("#f-name", "王小明");
        b.fill("#f-email", "not-an-email");
        b.submit("#request-form button[type=submit]");
        b.find(".error-summary");
        let categories_error = b.text("#f-categories-error");
        assert!(
            categories_error.contains(expected),
            "{language}: {categories_error}"
        );
        assert!(
            !b.text("#f-email-error").is_empty(),
            "the bad email is flagged"
        );
        assert_eq!(b.property("#f-name", "value"), "王小明", "input kept");
        assert_eq!(b.property("#f-email", "value"), "not-an-email");
        assert_eq!(
            b.attribute("#f-email", "aria-invalid").as_deref(),
            Some("true")
        );
        // The summary links to the field.
        b.click(".error-summary a[href='#f-categories']");
        // Nothing was created.
        let admin = app.admin_token().await;
        assert_eq!(app.list(&admin, "").await["total"], 0);
        b.screenshot(&screenshot_path(&format!("form-errors-{language}")));
    }
}

#[tokio::test]
async fn the_language_follows_the_browser_can_be_switched_and_is_remembered() {
    let Some((app, b)) = start("en-US").await else {
        return;
    };
    b.goto(&app.url("/"));
    assert_eq!(b.attribute("html", "lang").as_deref(), Some("en"));
    assert!(b.text("h1").is_ascii(), "English heading: {}", b.text("h1"));
    b.submit(".lang-switch a[lang=zh-CN]");
    b.wait_until("Chinese", |b| {
        b.attribute("html", "lang").as_deref() == Some("zh-CN")
    });
    // Remembered on the next page, though the browser still prefers English.
    b.goto(&app.url("/find"));
    assert_eq!(b.attribute("html", "lang").as_deref(), Some("zh-CN"));
    assert_eq!(b.text("h1"), "查找我的请求");
    b.submit(".lang-switch a[lang=en]");
    b.wait_until("English", |b| b.text("h1") == "Find my request");
}

#[tokio::test]
async fn a_returning_visitor_finds_the_request_with_reference_and_contact() {
    let Some((app, b)) = start_with("zh-CN", |c| c.verification.resend_seconds = 0).await else {
        return;
    };
    let reference = submit_from_home(&app, &b, "access", "returning@subjects.test");
    verify_with_mailed_code(&app, &b, &reference).await;
    let first_code = app.code_for(&reference).await;
    // Another day, another browser session: no cookie.
    b.delete_cookies();
    b.goto(&app.url(&format!("/requests/{reference}")));
    b.find("#f-contact");
    assert_eq!(
        b.property("#f-reference", "value"),
        reference.as_str(),
        "reference carried over"
    );
    // A wrong contact gets the same page but no code.
    b.fill("#f-contact", "someone-else@subjects.test");
    b.submit("form[action='/find'] button[type=submit]");
    b.find("#f-code");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.mail_texts(&reference)
            .iter()
            .filter(|t| crate::helpers::code_in(t).is_some())
            .count(),
        1
    );
    // The right one (in any case) sends a new code.
    b.goto(&app.url(&format!("/find?reference={reference}")));
    b.fill("#f-contact", "RETURNING@subjects.test");
    b.submit("form[action='/find'] button[type=submit]");
    b.find("#f-code");
    let second = app
        .wait_mail(&reference, |t| {
            crate::helpers::code_in(t).filter(|c| *c != first_code)
        })
        .await;
    b.fill("#f-code", &second);
    b.submit("form[action$='/verify'] button[type=submit]");
    b.find(".due");
    b.submit("#open-request");
    assert_eq!(b.text("#reference"), reference);
}

#[tokio::test]
async fn a_wrong_code_is_explained_and_the_resend_button_counts_down() {
    let Some((app, b)) = start("en-US").await else {
        return;
    };
    let reference = submit_from_home(&app, &b, "complaint", "codes@subjects.test");
    // Just sent: the script holds the resend button for the pause, counting down.
    b.wait_until("the countdown", |b| b.text("#resend").contains(" s"));
    assert_eq!(b.property("#resend", "disabled"), true);
    b.fill("#f-code", "000000");
    b.submit("form[action$='/verify'] button[type=submit]");
    b.find("#f-code-error");
    assert!(
        b.text("#f-code-error").contains("wrong"),
        "{}",
        b.text("#f-code-error")
    );
    // Without the countdown (page opened afresh) the button is ready.
    b.goto(&app.url(&format!("/requests/{reference}/verify")));
    assert_eq!(b.property("#resend", "disabled"), false);
}

#[tokio::test]
async fn the_emailed_link_verifies_after_a_click_and_leads_to_the_request() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    let reference = submit_from_home(&app, &b, "restriction", "link@subjects.test");
    let link = app
        .wait_mail(&reference, |t| {
            t.split_whitespace()
                .find(|w| w.contains("/verify?token="))
                .map(str::to_owned)
        })
        .await;
    let path = &link[link.find("/verify?").unwrap()..];
    b.delete_cookies();
    b.goto(&app.url(path));
    b.submit("#confirm-identity");
    b.find("#reference");
    assert_eq!(b.text("#reference"), reference);
    b.submit("main a.btn");
    b.find(".due");
    b.submit("#open-request");
    assert_eq!(
        b.attribute("#status", "data-status").as_deref(),
        Some("in_review")
    );
}

#[tokio::test]
async fn the_subject_withdraws_from_the_request_page() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    let reference = submit_from_home(&app, &b, "correction", "withdraw@subjects.test");
    verify_with_mailed_code(&app, &b, &reference).await;
    b.submit("#open-request");
    b.fill("#f-reason", "已自行修改");
    b.submit("#withdraw-button");
    b.find(".notice");
    assert_eq!(
        b.attribute("#status", "data-status").as_deref(),
        Some("withdrawn")
    );
    assert!(!b.exists("#withdraw"), "nothing more to withdraw");
    // Signing out ends the session: the page now asks for the reference and contact.
    b.submit("form[action='/sign-out'] button");
    b.find(".notice");
    b.goto(&app.url(&format!("/requests/{reference}")));
    b.find("#f-contact");
}

#[tokio::test]
async fn a_form_can_be_filled_and_sent_with_the_keyboard_alone() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    b.goto(&app.url("/rights/consent_withdrawal"));
    // The first Tab reaches the skip link.
    b.keys_active("\u{E004}");
    assert_eq!(
        b.script("return document.activeElement.className"),
        "skip-link"
    );
    // Tab on through the page: every consent and the contact fields are reachable.
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let focused = b.script(
            "var e = document.activeElement; return (e.name || e.id || e.className || e.tagName) + ':' + (e.value || '');",
        );
        reached.insert(focused.as_str().unwrap_or_default().to_owned());
        b.keys_active("\u{E004}");
    }
    for wanted in ["consents:partner_sharing", "email:", "jurisdiction:cn"] {
        assert!(
            reached.iter().any(|r| r == wanted),
            "{wanted} not reached: {reached:?}"
        );
    }
    // Space ticks a box, Enter sends the form.
    b.script("document.querySelector('input[value=marketing_messages]').focus(); return true;");
    b.keys_active(" ");
    b.script("document.getElementById('f-email').focus(); return true;");
    b.keys_active("keys@subjects.test\u{E007}");
    b.find("#f-code");
    let reference = b.text("#reference");
    let admin = app.admin_token().await;
    let view = app.find(&admin, &reference).await;
    assert_eq!(
        view["details"]["consents"],
        serde_json::json!(["marketing_messages"])
    );
}

/// The main pages at a phone's and a desktop's width. Saved under target/screenshots/; with
/// RIGHTSFLOW_DOCS_SCREENSHOTS=1 one of each is also written to docs/screenshots/ for the
/// README.
#[tokio::test]
async fn screenshots_of_the_main_pages_at_phone_and_desktop_widths() {
    let Some((app, b)) = start("zh-CN").await else {
        return;
    };
    let reference = submit_from_home(&app, &b, "access", "shots@subjects.test");
    let verify_url = b.current_url();
    verify_with_mailed_code(&app, &b, &reference).await;
    let pages = [
        ("home", app.url("/")),
        ("form-access", app.url("/rights/access")),
        ("verify", verify_url),
        ("request", app.url(&format!("/requests/{reference}"))),
        ("find", app.url("/find")),
    ];
    let docs = std::env::var("RIGHTSFLOW_DOCS_SCREENSHOTS").as_deref() == Ok("1");
    for (width, height, device) in [(390, 844, "phone"), (1280, 900, "desktop")] {
        b.set_window(width, height);
        for (name, url) in &pages {
            b.goto(url);
            b.find("main");
            // Nothing wider than the screen: no sideways scrolling on a phone.
            let overflow =
                b.script("return document.documentElement.scrollWidth - window.innerWidth");
            assert!(
                overflow.as_i64().unwrap_or(0) <= 0,
                "{name} overflows at {width}px by {overflow}"
            );
            let file = format!("portal-{name}-{device}");
            b.screenshot(&screenshot_path(&file));
            if docs && (*name == "home" || *name == "request") {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("docs/screenshots")
                    .join(format!("{file}.png"));
                b.screenshot(&path);
            }
        }
    }
}

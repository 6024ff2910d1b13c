//! The portal over plain HTTP: security headers, CSRF, static assets, language choice, form
//! errors, and that a form posts exactly the details the API would take. (The browser suite in
//! tests/browser drives the same pages in Chromium.)

use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;
use crate::on_both_backends;

/// A visitor without a browser: keeps the CSRF cookie and token of the last page read.
struct Visitor<'a> {
    app: &'a TestApp,
    cookie: String,
    token: String,
}

impl<'a> Visitor<'a> {
    async fn open(app: &'a TestApp, path: &str) -> (Visitor<'a>, String) {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let cookie = set_cookie(&res, "rf_csrf").expect("a fresh visitor gets a form token");
        let html = res.text().await.unwrap();
        let token = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap_or_default()
            .to_owned();
        (Visitor { app, cookie, token }, html)
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)], with_token: bool) -> Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if with_token {
            form.push(("csrf", &self.token));
        }
        self.app
            .client
            .post(self.app.url(path))
            .header("Cookie", format!("rf_csrf={}", self.cookie))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

fn set_cookie(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

async fn total(app: &TestApp) -> i64 {
    let admin = app.admin_token().await;
    app.list(&admin, "").await["total"].as_i64().unwrap()
}

async fn every_page_carries_the_security_headers(app: TestApp) {
    for path in [
        "/",
        "/rights/access",
        "/rights/deletion?for=guardian",
        "/find",
        "/requests/DSR-ABCD-EFGH/verify",
        "/verify?token=x",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = |n: &str| {
            res.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = h("content-security-policy");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline"),
            "{path}: no inline script or style"
        );
        assert_eq!(h("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        let html = res.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{path}: nothing inline"
        );
    }
}
on_both_backends!(every_page_carries_the_security_headers);

async fn a_form_without_its_token_is_refused_and_changes_nothing(app: TestApp) {
    let (visitor, _) = Visitor::open(&app, "/rights/consent_withdrawal").await;
    let fields = [
        ("consents", "partner_sharing"),
        ("email", "csrf@subjects.test"),
        ("jurisdiction", "cn"),
    ];
    let res = visitor
        .post("/rights/consent_withdrawal", &fields, false)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("csrf_failed"));
    // A token from another visitor does not match this cookie either.
    let (other, _) = Visitor::open(&app, "/").await;
    let forged = Visitor {
        app: &app,
        cookie: visitor.cookie.clone(),
        token: other.token.clone(),
    };
    assert_eq!(
        forged
            .post("/rights/consent_withdrawal", &fields, true)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(total(&app).await, 0);
    // With it, the request is made and the visitor goes on to the code page.
    let res = app
        .client
        .post(app.url("/rights/consent_withdrawal"))
        .header("Cookie", format!("rf_csrf={}", visitor.cookie))
        .form(&[
            fields[0],
            fields[1],
            fields[2],
            ("csrf", visitor.token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "followed the redirect");
    assert!(res.url().path().ends_with("/verify"), "{}", res.url());
    assert_eq!(total(&app).await, 1);
}
on_both_backends!(a_form_without_its_token_is_refused_and_changes_nothing);

async fn static_assets_are_embedded_and_cache_busted(app: TestApp) {
    let html = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let css = html
        .split("href=\"/static/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        css.starts_with("portal.") && css.ends_with(".css") && css.len() > "portal..css".len() + 8,
        "{css}"
    );
    let res = app
        .client
        .get(app.url(&format!("/static/{css}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(res.text().await.unwrap().contains(".btn"));
    // An old or unknown name is not served (a stale page cannot get a newer file).
    let res = app
        .client
        .get(app.url("/static/portal.000000000000.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
on_both_backends!(static_assets_are_embedded_and_cache_busted);

async fn the_language_comes_from_the_switch_then_the_cookie_then_the_browser(app: TestApp) {
    let lang_of = |html: &str| {
        html.split("<html lang=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let get = |path: &str, accept: &str, cookie: Option<String>| {
        let mut req = app
            .client
            .get(app.url(path))
            .header("Accept-Language", accept);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send()
    };
    let res = get("/", "", None).await.unwrap();
    assert_eq!(
        lang_of(&res.text().await.unwrap()),
        "zh-CN",
        "Chinese by default"
    );
    let res = get("/", "en-GB,en;q=0.9", None).await.unwrap();
    assert_eq!(lang_of(&res.text().await.unwrap()), "en");
    let res = get("/find?lang=en", "zh-CN", None).await.unwrap();
    let remembered = set_cookie(&res, "rf_lang").expect("the choice is remembered");
    assert_eq!(lang_of(&res.text().await.unwrap()), "en");
    let res = get("/", "zh-CN", Some(format!("rf_lang={remembered}")))
        .await
        .unwrap();
    assert_eq!(
        lang_of(&res.text().await.unwrap()),
        "en",
        "the cookie beats Accept-Language"
    );
}
on_both_backends!(the_language_comes_from_the_switch_then_the_cookie_then_the_browser);

async fn form_errors_name_the_field_and_keep_the_input(app: TestApp) {
    let (v, _) = Visitor::open(&app, "/rights/correction").await;
    let res = v
        .post(
            "/rights/correction",
            &[
                ("field_1", "address"),
                ("current_1", "旧地址"),
                ("field_2", "phone"),
                ("email", "someone@subjects.test"),
                ("phone", "12"),
                ("jurisdiction", "cn"),
            ],
            true,
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    for id in [
        "f-corrected_1-error",
        "f-corrected_2-error",
        "f-phone-error",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id} missing");
    }
    assert!(
        html.contains("value=\"旧地址\"") && html.contains("value=\"someone@subjects.test\""),
        "input kept"
    );
    assert!(
        html.contains("<option value=\"phone\" selected>"),
        "choice kept"
    );
    assert_eq!(total(&app).await, 0);
    // Unknown rights and representatives are a 404 page, not a form.
    let res = app
        .client
        .get(app.url("/rights/teleportation"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .client
        .get(app.url("/rights/access?for=landlord"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
on_both_backends!(form_errors_name_the_field_and_keep_the_input);

async fn the_forms_post_the_details_the_api_takes(app: TestApp) {
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, serde_json::Value);
    let cases: [Case; 3] = [
        (
            "correction",
            vec![
                ("field_1", "address"),
                ("current_1", "旧地址"),
                ("corrected_1", "新地址"),
                ("field_2", "name"),
                ("corrected_2", "王小明"),
                ("evidence", "租房合同"),
            ],
            json!({ "fields": [
                { "field": "address", "current_value": "旧地址", "corrected_value": "新地址" },
                { "field": "name", "current_value": null, "corrected_value": "王小明" }
            ], "evidence": "租房合同" }),
        ),
        (
            "deletion",
            vec![
                ("scope", "categories"),
                ("categories", "location"),
                ("categories", "search_history"),
                ("understand", "yes"),
            ],
            json!({ "scope": "categories", "categories": ["location", "search_history"] }),
        ),
        (
            "portability",
            vec![
                ("categories", "orders"),
                ("format", "json"),
                ("recipient", "另一家电商平台"),
            ],
            json!({ "categories": ["orders"], "format": "json", "recipient": "另一家电商平台" }),
        ),
    ];
    let admin = app.admin_token().await;
    for (kind, mut fields, expected) in cases {
        let email = format!("{kind}-form@subjects.test");
        fields.push(("email", &email));
        fields.push(("jurisdiction", "eu"));
        let (v, _) = Visitor::open(&app, &format!("/rights/{kind}")).await;
        let res = v.post(&format!("/rights/{kind}"), &fields, true).await;
        assert_eq!(res.status(), StatusCode::OK, "{kind}");
        let reference = res.url().path().split('/').nth(2).unwrap().to_owned();
        let view = app.find(&admin, &reference).await;
        assert_eq!(view["details"], expected, "{kind}");
        assert_eq!(view["jurisdiction"], "eu");
        assert_eq!(view["subject"]["email"], email.as_str());
        assert_eq!(view["channel"], "online");
    }
}
on_both_backends!(the_forms_post_the_details_the_api_takes);

//! The staff console over plain HTTP: every route with every role (and none), sign-in records
//! and limits, sign-out and disabling end sessions at once, forms need their token.

use reqwest::{redirect::Policy, Client, StatusCode};

use crate::helpers::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, STAFF_PASSWORD};
use crate::on_both_backends;
use rightsflow::domain::Role;

/// A browser-less console user: no redirects followed, cookies kept by hand.
pub(crate) struct Console<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) http: Client,
    pub(crate) cookies: String,
    pub(crate) csrf: String,
}

pub(crate) fn cookie_of(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

impl<'a> Console<'a> {
    pub(crate) fn anonymous(app: &'a TestApp) -> Console<'a> {
        Console {
            app,
            http: Client::builder().redirect(Policy::none()).build().unwrap(),
            cookies: String::new(),
            csrf: String::new(),
        }
    }

    /// A visitor on the sign-in page: holding its form token, not signed in.
    pub(crate) async fn at_sign_in(app: &'a TestApp) -> Console<'a> {
        let mut c = Console::anonymous(app);
        let res = c
            .http
            .get(app.url("/console/sign-in"))
            .send()
            .await
            .unwrap();
        c.cookies = format!("rf_csrf={}", cookie_of(&res, "rf_csrf").unwrap());
        let html = res.text().await.unwrap();
        let field = html.split("name=\"csrf\" value=\"").nth(1).unwrap();
        c.csrf = field.split('"').next().unwrap().to_owned();
        c
    }

    /// Signs in through the form; panics unless it worked.
    pub(crate) async fn sign_in(app: &'a TestApp, email: &str, password: &str) -> Console<'a> {
        let mut c = Console::at_sign_in(app).await;
        let fields = [("email", email), ("password", password)];
        let res = c.post("/console/sign-in", &fields).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "signed in as {email}");
        let staff = cookie_of(&res, "rf_staff").expect("a session cookie");
        c.cookies = format!("{}; rf_staff={staff}", c.cookies);
        c
    }

    /// A page's HTML.
    pub(crate) async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.app.url(path))
            .header("Cookie", &self.cookies)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &self.csrf));
        self.http
            .post(self.app.url(path))
            .header("Cookie", &self.cookies)
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

pub(crate) fn goes_to_sign_in(res: &reqwest::Response) -> bool {
    res.status() == StatusCode::SEE_OTHER
        && res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/console/sign-in")
}

async fn every_route_with_every_role(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    app.verify_by_code(&sub.reference).await;
    let admin_token = app.admin_token().await;
    let id = app.id_of(&admin_token, &sub.reference).await;
    let (target_id, _) = app.staff("target", Role::Agent).await;
    for role in [Role::Agent, Role::Reviewer, Role::Auditor] {
        app.staff(role.as_str(), role).await;
    }
    let request = format!("/console/requests/{id}");
    let actions = format!("/console/requests/{id}/actions");
    let staff_one = format!("/console/staff/{target_id}");
    // Anonymous: every route sends the visitor to sign in and shows nothing.
    let anon = Console::anonymous(&app);
    let home = anon.get("/console").await;
    assert_eq!(home.headers()["location"], "/console/queue");
    for path in [
        "/console/queue",
        &request,
        "/console/staff",
        "/console/account",
        "/console/systems",
    ] {
        let res = anon.get(path).await;
        assert!(goes_to_sign_in(&res), "GET {path}");
        assert!(!res.text().await.unwrap().contains(&sub.reference));
    }
    for path in [
        actions.as_str(),
        "/console/staff",
        &staff_one,
        "/console/sign-out",
        "/console/account/totp",
        &format!("/console/requests/{id}/tasks/x/waive"),
        &format!("/console/requests/{id}/tasks/x/done"),
        &format!("/console/requests/{id}/restriction/lift"),
    ] {
        let res = anon.post(path, &[("command", "note"), ("text", "x")]).await;
        assert!(goes_to_sign_in(&res), "POST {path}");
    }
    // Each role: (role, may act on requests, is admin).
    for (email, password, acts, admin) in [
        ("agent@rightsflow.test", STAFF_PASSWORD, true, false),
        ("reviewer@rightsflow.test", STAFF_PASSWORD, true, false),
        ("auditor@rightsflow.test", STAFF_PASSWORD, false, false),
        (ADMIN_EMAIL, ADMIN_PASSWORD, true, true),
    ] {
        let c = Console::sign_in(&app, email, password).await;
        assert_eq!(
            c.get("/console/queue").await.status(),
            StatusCode::OK,
            "{email} queue"
        );
        let page = c.get(&request).await;
        assert_eq!(page.status(), StatusCode::OK, "{email} request");
        let html = page.text().await.unwrap();
        assert_eq!(
            html.contains("id=\"action-note\""),
            acts,
            "{email}: note form offered"
        );
        let note = c
            .post(&actions, &[("command", "note"), ("text", "看过")])
            .await;
        let expected = if acts {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(note.status(), expected, "{email} note");
        let staff_page = c.get("/console/staff").await.status();
        assert_eq!(
            staff_page == StatusCode::OK,
            admin,
            "{email} staff page: {staff_page}"
        );
        let add = c
            .post(
                "/console/staff",
                &[("email", "new@rightsflow.test"), ("role", "agent")],
            )
            .await;
        assert_eq!(add.status() == StatusCode::OK, admin, "{email} add staff");
        for path in [
            "/console/dashboard",
            "/console/queue.csv",
            "/console/account",
        ] {
            assert_eq!(c.get(path).await.status(), StatusCode::OK, "{email} {path}");
        }
        let bulk = c
            .post(
                "/console/queue/bulk",
                &[("ids", id.as_str()), ("bulk", "remind")],
            )
            .await;
        let expected = if acts {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(bulk.status(), expected, "{email} bulk");
        let role = c.post(&staff_one, &[("role", "reviewer")]).await;
        let expected = if admin {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(role.status(), expected, "{email} change role");
        let totp = c.post(&staff_one, &[("totp_required", "1")]).await;
        assert_eq!(totp.status(), expected, "{email} require two-step");
        let out = c.post("/console/sign-out", &[]).await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER, "{email} sign-out");
        assert!(
            goes_to_sign_in(&c.get("/console/queue").await),
            "{email} signed out"
        );
    }
    // Auditors' refusals changed nothing; the others' notes are in the log.
    let view = app.staff_get(&admin_token, &id).await;
    let notes = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["command"] == "note")
        .count();
    assert_eq!(notes, 3);
}
on_both_backends!(every_route_with_every_role);

async fn sign_out_and_disabling_end_sessions_at_once(app: TestApp) {
    let (agent_id, _) = app.staff("agent", Role::Agent).await;
    let agent = Console::sign_in(&app, "agent@rightsflow.test", STAFF_PASSWORD).await;
    assert_eq!(agent.get("/console/queue").await.status(), StatusCode::OK);
    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = admin
        .post(&format!("/console/staff/{agent_id}"), &[("active", "0")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The same cookie no longer opens anything.
    assert!(goes_to_sign_in(&agent.get("/console/queue").await));
    // Nor can the account sign in again, until re-enabled.
    let c = Console::at_sign_in(&app).await;
    let res = c
        .post(
            "/console/sign-in",
            &[
                ("email", "agent@rightsflow.test"),
                ("password", STAFF_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Signing out ends the admin's session for every copy of the cookie.
    let res = admin.post("/console/sign-out", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(goes_to_sign_in(&admin.get("/console/queue").await));
    // Every attempt is on record: the failures with their reason, without the typed email.
    let db = app.services.db().clone();
    let recorded = tokio::task::spawn_blocking(move || {
        rightsflow::storage::staff::sign_ins(&mut db.conn().unwrap(), Some(&agent_id), 10).unwrap()
    })
    .await
    .unwrap();
    let outcomes: Vec<&str> = recorded.iter().map(|(_, o, _)| o.as_str()).collect();
    // Newest first: refused while disabled; the console sign-in; the API sign-in of `staff()`.
    assert_eq!(outcomes, vec!["disabled", "ok", "ok"]);
}
on_both_backends!(sign_out_and_disabling_end_sessions_at_once);

async fn console_forms_need_their_token_and_admins_cannot_lock_themselves_out(app: TestApp) {
    let sub = app.submit("access", "cn").await;
    let token = app.admin_token().await;
    let id = app.id_of(&token, &sub.reference).await;
    let mut admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    admin.csrf = "forged".into();
    let res = admin
        .post(
            &format!("/console/requests/{id}/actions"),
            &[("command", "note"), ("text", "x")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let me = app
        .services
        .db()
        .conn()
        .map(|mut c| {
            rightsflow::storage::staff::find_by_email(&mut c, ADMIN_EMAIL)
                .unwrap()
                .unwrap()
                .id
        })
        .unwrap();
    let res = admin
        .post(&format!("/console/staff/{me}"), &[("active", "0")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(admin.get("/console/queue").await.status(), StatusCode::OK);
}
on_both_backends!(console_forms_need_their_token_and_admins_cannot_lock_themselves_out);

async fn failed_sign_ins_are_limited(app: TestApp) {
    let c = Console::at_sign_in(&app).await;
    let mut statuses = vec![];
    let mut retry_after = None;
    for _ in 0..4 {
        let res = c
            .post(
                "/console/sign-in",
                &[("email", ADMIN_EMAIL), ("password", "wrong-password")],
            )
            .await;
        statuses.push(res.status());
        retry_after = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
    }
    assert_eq!(
        statuses[..2],
        [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED]
    );
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
    assert!(
        retry_after.is_some_and(|s| s.parse::<u64>().is_ok()),
        "Retry-After on the page"
    );
    // The refused attempt is on record too (no account named: the email is not kept).
    let db = app.services.db().clone();
    let unknown = tokio::task::spawn_blocking(move || {
        rightsflow::storage::staff::sign_ins(&mut db.conn().unwrap(), None, 10).unwrap()
    })
    .await
    .unwrap();
    assert!(unknown
        .iter()
        .any(|(_, outcome, _)| outcome == "rate_limited"));
}
on_both_backends!(failed_sign_ins_are_limited, |c| c
    .rate_limits
    .staff_logins_per_ip =
    3);

async fn the_queue_exports_what_the_screen_shows_and_bulk_actions_work(app: TestApp) {
    let (agent_id, _) = app.staff("agent", Role::Agent).await;
    let admin_token = app.admin_token().await;
    let mut ids = vec![];
    for kind in ["access", "correction"] {
        let sub = app.submit(kind, "cn").await;
        app.verify_by_code(&sub.reference).await;
        ids.push((
            sub.reference.clone(),
            app.id_of(&admin_token, &sub.reference).await,
        ));
    }
    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // Assign both to the agent in one go.
    let fields = [
        ("ids", ids[0].1.as_str()),
        ("ids", ids[1].1.as_str()),
        ("assignee", agent_id.as_str()),
        ("bulk", "assign"),
        ("back", "/console/queue?kind=access"),
    ];
    let res = admin.post("/console/queue/bulk", &fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "/console/queue?kind=access&done=2&refused=0"
    );
    for (reference, _) in &ids {
        assert_eq!(
            app.find(&admin_token, reference).await["assignee_id"],
            agent_id.as_str()
        );
    }
    // Remind the assignee of the first.
    let fields = [("ids", ids[0].1.as_str()), ("bulk", "remind")];
    let res = admin.post("/console/queue/bulk", &fields).await;
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("done=1&refused=0"));
    // The assignee's reminder is in the mailbox (the file mailbox here).
    app.wait_mail(&ids[0].0, |t| {
        (t.contains(&ids[0].0) && (t.contains("提醒") || t.contains("follow up"))).then_some(())
    })
    .await;
    let view = app.staff_get(&admin_token, &ids[0].1).await;
    assert!(view.to_string().contains("reminder sent to the assignee"));
    // The CSV: the filtered rows, the screen's columns, no contact data.
    let csv = admin.get("/console/queue.csv?kind=access").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "header and one access request: {text}");
    assert!(lines[1].starts_with(&ids[0].0) && lines[1].contains("agent@rightsflow.test"));
    assert!(
        !text.contains("li.lei@example.com") && !text.contains("李雷"),
        "no contact data"
    );
    // Auditors read the export but cannot act in bulk.
    app.staff("auditor", Role::Auditor).await;
    let auditor = Console::sign_in(&app, "auditor@rightsflow.test", STAFF_PASSWORD).await;
    assert_eq!(
        auditor.get("/console/queue.csv").await.status(),
        StatusCode::OK
    );
    let res = auditor
        .post(
            "/console/queue/bulk",
            &[("ids", ids[1].1.as_str()), ("bulk", "remind")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        auditor.get("/console/dashboard").await.status(),
        StatusCode::OK
    );
    // Pages before the first or past any list are refused, not overflowed into a 500.
    for page in ["0", "1000001", "2598320686578654208"] {
        let res = auditor.get(&format!("/console/queue?page={page}")).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "page={page}"
        );
    }
}
on_both_backends!(the_queue_exports_what_the_screen_shows_and_bulk_actions_work);

async fn the_dashboard_counts_what_is_open_and_how_fast_requests_were_answered(app: TestApp) {
    let admin_token = app.admin_token().await;
    for _ in 0..2 {
        let sub = app.submit("access", "cn").await;
        app.verify_by_code(&sub.reference).await;
        let id = app.id_of(&admin_token, &sub.reference).await;
        app.act_ok(
            &admin_token,
            &id,
            serde_json::json!({ "command": "approve" }),
        )
        .await;
        app.act_ok(
            &admin_token,
            &id,
            serde_json::json!({ "command": "complete", "summary": "done" }),
        )
        .await;
    }
    let open = app.submit("complaint", "cn").await;
    app.verify_by_code(&open.reference).await;
    app.submit("deletion", "eu").await;
    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let res = admin.get("/console/dashboard?lang=en").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let number = |id: &str| -> String {
        html.split(&format!("id=\"{id}\">"))
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(number("open-total"), "2");
    assert_eq!(number("received-total"), "4");
    // Both access requests answered, both on time (the second table: the period's figures).
    let figures = html.split("id=\"figures\"").nth(1).unwrap();
    assert!(
        figures.contains("<th scope=\"row\">Access to personal data</th><td>2</td><td>100%</td>"),
        "{figures}"
    );
    assert!(figures.contains("<th scope=\"row\">Complaint</th><td>0</td><td>—</td>"));
    assert!(
        html.matches("<rect").count() >= 13,
        "one bar per week of the 90 days"
    );
    let res = admin
        .get("/console/dashboard?from=2026-12-01&to=2026-01-01")
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
on_both_backends!(the_dashboard_counts_what_is_open_and_how_fast_requests_were_answered);

//! A Data Rights Protocol 1.0 agent, black-box: its own Ed25519 key, key set-up, requests,
//! status polling, revoke, every validation failure the specification lists, and a status
//! callback received on loopback with its signature checked against our public key.

use base64::Engine as _;
use chrono::{Duration, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use reqwest::StatusCode;
use rightsflow::domain::{Actor, Role};
use serde_json::{json, Value};

use crate::helpers::{last_audit, TestApp};
use crate::on_both_backends;

const BUSINESS: &str = "WEIMACMS";
/// Our business key's seed in these tests (never a real key).
const BUSINESS_SEED: [u8; 32] = [42; 32];
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn configure(c: &mut rightsflow::config::Config) {
    c.drp.business_id = Some(BUSINESS.into());
    c.drp.signing_key = Some(rightsflow::config::Secret::new(B64.encode(BUSINESS_SEED)));
}

/// The agent side of the protocol.
struct Agent {
    id: String,
    key: SigningKey,
    token: Option<String>,
}

impl Agent {
    fn new(id: &str, seed: u8) -> Agent {
        Agent {
            id: id.into(),
            key: SigningKey::from_bytes(&[seed; 32]),
            token: None,
        }
    }

    fn verify_key(&self) -> String {
        B64.encode(self.key.verifying_key().as_bytes())
    }

    /// libsodium combined mode: signature then message, base64.
    fn seal(&self, message: &Value) -> String {
        let bytes = message.to_string().into_bytes();
        let mut buf = self.key.sign(&bytes).to_bytes().to_vec();
        buf.extend_from_slice(&bytes);
        B64.encode(buf)
    }

    /// The four claims every signed message carries, issued and expiring around now.
    fn claims(&self, extra: Value) -> Value {
        let now = Utc::now();
        let mut m = json!({
            "agent-id": self.id, "business-id": BUSINESS,
            "issued-at": (now - Duration::seconds(5)).to_rfc3339(),
            "expires-at": (now + Duration::minutes(10)).to_rfc3339(),
            "drp.version": "1.0",
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }

    async fn send(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, String) {
        let mut req = app
            .client
            .request(method, app.url(path))
            .header("Content-Type", "text/plain");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// §2.06 for this agent's own id.
    async fn info(&self, app: &TestApp) -> StatusCode {
        let path = format!("/drp/v1/agent/{}", self.id);
        self.send(app, reqwest::Method::GET, &path, None).await.0
    }

    async fn key_setup(&mut self, app: &TestApp) {
        let body = self.seal(&self.claims(json!({})));
        let path = format!("/drp/v1/agent/{}", self.id);
        let (status, text) = self
            .send(app, reqwest::Method::POST, &path, Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["agent-id"], self.id.as_str());
        self.token = Some(v["token"].as_str().unwrap().to_owned());
    }

    async fn exercise(&self, app: &TestApp, body: String) -> (StatusCode, Value) {
        let (status, text) = self
            .send(
                app,
                reqwest::Method::POST,
                "/drp/v1/data-rights-request",
                Some(body),
            )
            .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn status(&self, app: &TestApp, id: &str) -> (StatusCode, Value) {
        let path = format!("/drp/v1/data-rights-request/{id}");
        let (status, text) = self.send(app, reqwest::Method::GET, &path, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn revoke(&self, app: &TestApp, id: &str, reason: &str) -> (StatusCode, Value) {
        let body = self.seal(&self.claims(json!({ "reason": reason })));
        let path = format!("/drp/v1/data-rights-request/{id}");
        let (status, text) = self
            .send(app, reqwest::Method::DELETE, &path, Some(body))
            .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn register(app: &TestApp, agent: &Agent) {
    register_with_callbacks(app, agent, None);
}

/// Registers (or changes) the agent with the origin its status callbacks may go to.
fn register_with_callbacks(app: &TestApp, agent: &Agent, origin: Option<&str>) {
    rightsflow::interop::drp::service::register_agent(
        app.services.db(),
        &Actor::System,
        &agent.id,
        "Test Agent",
        &agent.verify_key(),
        origin,
        Utc::now(),
    )
    .unwrap();
}

/// `scheme://host:port` of a URL (the callback listener's).
fn origin_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap();
    format!("{}://{}", rest.0, rest.1.split('/').next().unwrap())
}

/// An HTTP listener on loopback that answers 200 and hands over every body it receives.
async fn callback_listener() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (url, mut calls) = crate::helpers::callback_listener("/drp/status").await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(call) = calls.recv().await {
            let _ = tx.send(call.body);
        }
    });
    (url, rx)
}

/// Opens a callback with our business's public key: the status object, or a failed test.
fn open_callback(body: &str) -> Value {
    let ours: VerifyingKey = SigningKey::from_bytes(&BUSINESS_SEED).verifying_key();
    let raw = B64.decode(body.trim()).expect("a callback is base64");
    let (sig, msg) = raw.split_at(64);
    let sig = Signature::from_bytes(sig.try_into().unwrap());
    ours.verify_strict(msg, &sig)
        .expect("the callback is signed with our business key");
    serde_json::from_slice(msg).unwrap()
}

async fn requests_total(app: &TestApp, admin: &str) -> i64 {
    app.list(admin, "").await["total"].as_i64().unwrap()
}

fn reference_of(status: &Value) -> String {
    let url = status["user_verification_url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

async fn an_agent_deletes_through_drp_and_is_told_when_it_is_done(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, staff_agent) = app.staff("agent", Role::Agent).await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let mut agent = Agent::new("CR_AGENT", 7);
    register(&app, &agent);
    agent.key_setup(&app).await;
    let token = agent.token.clone().unwrap();
    let (status, text) = agent
        .send(&app, reqwest::Method::GET, "/drp/v1/agent/CR_AGENT", None)
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "{}"));
    let (status, _) = agent
        .send(&app, reqwest::Method::GET, "/drp/v1/agent/OTHER", None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a token is its own agent's only"
    );

    let (callback, mut received) = callback_listener().await;
    register_with_callbacks(&app, &agent, Some(&origin_of(&callback)));
    let before = requests_total(&app, &admin).await;
    let (status, created) = agent
        .exercise(
            &app,
            agent.seal(&agent.claims(json!({
                "exercise": "deletion", "regime": "ccpa", "agent-request-id": "agent-42",
                "status_callback": callback,
                "name": "Ada Lovelace", "email": "ada@example.test", "email_verified": true,
            }))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(requests_total(&app, &admin).await, before + 1);
    let drp_id = created["request_id"].as_str().unwrap().to_owned();
    assert_eq!(created["agent_request_id"], "agent-42");
    // The agent's word is not enough to delete: the user confirms with our code.
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["reason"], "need_user_verification");
    assert!(created["received_at"].is_string() && created["expected_by"].is_string());
    assert!(created["expires_at"].is_string());
    let reference = reference_of(&created);
    assert_eq!(
        created["user_verification_url"],
        format!("https://privacy.weimacms.test/requests/{reference}")
    );

    // The user proves the address with our code; with the agent's attestation that is enough.
    app.verify_by_code(&reference).await;
    let id = app.id_of(&staff_agent, &reference).await;
    // Staff see where it came from, in both languages.
    let console = crate::console::Console::sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let page = console.page(&format!("/console/requests/{id}")).await;
    assert!(
        page.contains("经数据权利协议（DRP）代理 <code>CR_AGENT</code>"),
        "{page}"
    );
    let page = console
        .page(&format!("/console/requests/{id}?lang=en"))
        .await;
    assert!(page.contains("through the Data Rights Protocol, agent <code>CR_AGENT</code>"));
    let view = app.staff_get(&staff_agent, &id).await;
    assert_eq!(view["status"]["code"], "in_review", "{view}");
    let (_, polled) = agent.status(&app, &drp_id).await;
    assert_eq!(polled["status"], "in_progress");
    assert!(polled.get("reason").is_none(), "{polled}");

    app.approve_by_two(&staff_agent, &reviewer, &id).await;
    app.act_ok(
        &staff_agent,
        &id,
        json!({ "command": "complete", "summary": "Your account is deleted." }),
    )
    .await;
    let (status, done) = agent.status(&app, &drp_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["status"], "fulfilled", "{done}");
    assert_eq!(
        done["results_url"],
        format!("https://privacy.weimacms.test/requests/{reference}")
    );

    // Callbacks come signed, one per change: in_progress (verified) and fulfilled. The outbox
    // sends on several lanes at once, so they may arrive in either order (INTEROP.md).
    let mut seen: Vec<Value> = vec![];
    let has = |seen: &[Value], s: &str| seen.iter().any(|v| v["status"] == s);
    while !(has(&seen, "in_progress") && has(&seen, "fulfilled")) {
        let body = tokio::time::timeout(std::time::Duration::from_secs(20), received.recv())
            .await
            .unwrap_or_else(|_| panic!("a status callback arrives; so far {seen:?}"))
            .unwrap();
        let status = open_callback(&body);
        assert_eq!(status["request_id"], drp_id.as_str());
        seen.push(status);
    }
    let fulfilled = seen.iter().find(|v| v["status"] == "fulfilled").unwrap();
    assert_eq!(
        fulfilled["results_url"],
        format!("https://privacy.weimacms.test/requests/{reference}")
    );

    // A fulfilled request cannot be revoked; another agent cannot even see it.
    let (status, body) = agent.revoke(&app, &drp_id, "changed my mind").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_revocable"))
    );
    let mut other = Agent::new("OTHER_AGENT", 8);
    register(&app, &other);
    other.key_setup(&app).await;
    let (status, _) = other.status(&app, &drp_id).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_ne!(other.token, Some(token));
}

on_both_backends!(
    an_agent_deletes_through_drp_and_is_told_when_it_is_done,
    super::configure
);

async fn an_agent_revokes_an_open_request(app: TestApp) {
    let mut agent = Agent::new("CR_AGENT", 9);
    register(&app, &agent);
    agent.key_setup(&app).await;
    // Not attested: even an access request waits for the user's own code.
    let (status, created) = agent
        .exercise(
            &app,
            agent.seal(&agent.claims(json!({
                "exercise": "access", "email": "grace@example.test",
            }))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["reason"], "need_user_verification");
    let id = created["request_id"].as_str().unwrap();
    let (status, revoked) = agent.revoke(&app, id, "I don't want this any more").await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    let (_, polled) = agent.status(&app, id).await;
    assert_eq!(polled["status"], "revoked");
    let (status, _) = agent.status(&app, "no-such-request").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An attested access request needs nothing more from the user.
    let (_, attested) = agent
        .exercise(
            &app,
            agent.seal(&agent.claims(json!({
                "exercise": "access", "email": "grace@example.test", "email_verified": true,
            }))),
        )
        .await;
    assert_eq!(attested["status"], "in_progress");
    assert!(attested.get("reason").is_none(), "{attested}");

    // An opt-in to sale is a consent grant, recorded at once for an attested address only.
    let (_, granted) = agent
        .exercise(
            &app,
            agent.seal(&agent.claims(json!({
                "exercise": "sale:opt-in", "email": "grace@example.test", "email_verified": true,
            }))),
        )
        .await;
    assert_eq!(granted["status"], "fulfilled", "{granted}");
    let (_, refused) = agent
        .exercise(
            &app,
            agent.seal(
                &agent.claims(json!({ "exercise": "sale:opt_in", "email": "grace@example.test" })),
            ),
        )
        .await;
    assert_eq!(
        (refused["status"].as_str(), refused["reason"].as_str()),
        (Some("denied"), Some("insuf_verification"))
    );
}

on_both_backends!(an_agent_revokes_an_open_request, super::configure);

async fn every_validation_failure_is_answered_as_the_specification_says(app: TestApp) {
    let admin = app.admin_token().await;
    let mut agent = Agent::new("CR_AGENT", 11);
    register(&app, &agent);

    // Key set-up: any failure is a 403 with no body.
    let forged = Agent::new("CR_AGENT", 12);
    let path = "/drp/v1/agent/CR_AGENT";
    for body in [
        forged.seal(&forged.claims(json!({}))),
        agent.seal(&agent.claims(json!({ "business-id": "SOMEONE_ELSE" }))),
        agent.seal(&agent.claims(json!({ "agent-id": "OTHER" }))),
        "%%% not base64".to_owned(),
    ] {
        let (status, text) = agent
            .send(&app, reqwest::Method::POST, path, Some(body))
            .await;
        assert_eq!((status, text.as_str()), (StatusCode::FORBIDDEN, ""));
    }
    let unknown = Agent::new("NOBODY", 13);
    let (status, text) = unknown
        .send(
            &app,
            reqwest::Method::POST,
            "/drp/v1/agent/NOBODY",
            Some(unknown.seal(&unknown.claims(json!({})))),
        )
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::FORBIDDEN, ""));

    // Without a token nothing is read.
    let body =
        agent.seal(&agent.claims(json!({ "exercise": "access", "email": "a@example.test" })));
    let (status, answer) = agent.exercise(&app, body.clone()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    agent.key_setup(&app).await;

    let before = requests_total(&app, &admin).await;
    let now = Utc::now();
    let good = json!({ "exercise": "deletion", "email": "a@example.test", "email_verified": true });
    let with = |extra: Value| {
        let mut m = agent.claims(good.clone());
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let mut raw = B64.decode(agent.seal(&with(json!({})))).unwrap();
    let last = raw.len() - 3;
    raw[last] ^= 0x01;
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (forged.seal(&with(json!({}))), StatusCode::FORBIDDEN, "bad_signature"),
        (B64.encode(&raw), StatusCode::FORBIDDEN, "bad_signature"),
        (agent.seal(&with(json!({ "agent-id": "OTHER_AGENT" }))), StatusCode::FORBIDDEN, "wrong_agent"),
        (agent.seal(&with(json!({ "business-id": "ACME" }))), StatusCode::FORBIDDEN, "wrong_business"),
        (
            agent.seal(&with(json!({ "issued-at": (now + Duration::minutes(5)).to_rfc3339(), "expires-at": (now + Duration::minutes(10)).to_rfc3339() }))),
            StatusCode::FORBIDDEN,
            "not_yet_issued",
        ),
        (
            agent.seal(&with(json!({ "issued-at": (now - Duration::minutes(20)).to_rfc3339(), "expires-at": (now - Duration::minutes(10)).to_rfc3339() }))),
            StatusCode::FORBIDDEN,
            "expired",
        ),
        ("this is not base64!".into(), StatusCode::BAD_REQUEST, "invalid_encoding"),
        (B64.encode(b"short"), StatusCode::BAD_REQUEST, "invalid_encoding"),
        (
            {
                let bytes = b"{not json".to_vec();
                let mut buf = agent.key.sign(&bytes).to_bytes().to_vec();
                buf.extend_from_slice(&bytes);
                B64.encode(buf)
            },
            StatusCode::BAD_REQUEST,
            "invalid_claims",
        ),
        (agent.seal(&with(json!({ "issued-at": "yesterday" }))), StatusCode::BAD_REQUEST, "invalid_claims"),
        (agent.seal(&with(json!({ "exercise": "erasure" }))), StatusCode::BAD_REQUEST, "unsupported"),
        (agent.seal(&with(json!({ "regime": "gdpr" }))), StatusCode::BAD_REQUEST, "unsupported"),
        (agent.seal(&with(json!({ "email": "not an address", "phone_number": null }))), StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
        (agent.seal(&with(json!({ "status_callback": "ftp://agent.test/x" }))), StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
    ];
    for (body, want_status, want_code) in cases {
        let (status, answer) = agent.exercise(&app, body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (want_status, Some(want_code)),
            "{answer}"
        );
        assert_eq!(answer["code"], want_status.as_u16().to_string());
        assert_eq!(answer["fatal"], false);
    }
    assert_eq!(
        requests_total(&app, &admin).await,
        before,
        "a refusal changes nothing"
    );

    // The same checks guard a revoke.
    let (_, created) = agent.exercise(&app, agent.seal(&with(json!({})))).await;
    let id = created["request_id"].as_str().unwrap();
    let late = with(
        json!({ "issued-at": (now - Duration::minutes(20)).to_rfc3339(), "expires-at": (now - Duration::minutes(10)).to_rfc3339() }),
    );
    let (status, answer) = agent
        .send(
            &app,
            reqwest::Method::DELETE,
            &format!("/drp/v1/data-rights-request/{id}"),
            Some(agent.seal(&late)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (_, still) = agent.status(&app, id).await;
    assert_eq!(still["status"], "in_progress");
}

on_both_backends!(
    every_validation_failure_is_answered_as_the_specification_says,
    super::configure
);

/// Status callbacks go only to the origin an admin registered for the agent: without one the
/// agent polls, and a callback elsewhere (our own network included) is refused unchanged.
async fn callbacks_go_only_to_the_origin_registered_for_the_agent(app: TestApp) {
    let admin = app.admin_token().await;
    let mut agent = Agent::new("CR_AGENT", 41);
    register(&app, &agent);
    agent.key_setup(&app).await;
    let ask = |callback: &str| {
        agent.seal(&agent.claims(json!({
            "exercise": "access", "regime": "ccpa", "status_callback": callback,
            "email": "grace@example.test", "email_verified": true,
        })))
    };
    let before = requests_total(&app, &admin).await;
    // No origin registered yet: no callbacks at all.
    let (status, answer) = agent.exercise(&app, ask("https://agent.test/status")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_value")),
        "{answer}"
    );

    register_with_callbacks(&app, &agent, Some("https://agent.test"));
    for callback in [
        "http://127.0.0.1:5432/",
        "http://agent.test/status",
        "https://agent.test:8443/status",
        "https://agent.test.evil.example/status",
        "https://user:pw@agent.test/status",
        "ftp://agent.test/status",
    ] {
        let (status, answer) = agent.exercise(&app, ask(callback)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_value")),
            "{callback}: {answer}"
        );
    }
    assert_eq!(
        requests_total(&app, &admin).await,
        before,
        "a refused callback address stores nothing"
    );
    let (status, answer) = agent
        .exercise(&app, ask("https://agent.test/drp/status?x=1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(requests_total(&app, &admin).await, before + 1);

    // The origin an admin registers is an origin, nothing more.
    for bad in [
        "https://agent.test/path",
        "agent.test",
        "https://agent.test/?q=1",
        "javascript:alert(1)",
    ] {
        let refused = rightsflow::interop::drp::service::register_agent(
            app.services.db(),
            &Actor::System,
            &agent.id,
            "Test Agent",
            &agent.verify_key(),
            Some(bad),
            Utc::now(),
        );
        assert!(
            matches!(
                refused,
                Err(rightsflow::interop::drp::service::DrpError::Invalid(_))
            ),
            "{bad}"
        );
    }
}

on_both_backends!(
    callbacks_go_only_to_the_origin_registered_for_the_agent,
    super::configure
);

async fn an_operator_registers_and_disables_agents_from_the_command_line(app: TestApp) {
    let mut agent = Agent::new("CLI_AGENT", 21);
    let key = agent.verify_key();
    let (ok, out, err) = app.cli(
        &[
            "drp",
            "agent-add",
            "--id",
            "CLI_AGENT",
            "--name",
            "Agent by CLI",
            "--verify-key",
            &key,
        ],
        &[],
    );
    assert!(ok, "{out}{err}");
    let logged = last_audit(&app, rightsflow::storage::drp::AGENT_REGISTERED).unwrap();
    assert_eq!(logged["agent_id"], "CLI_AGENT");
    agent.key_setup(&app).await;
    let (ok, out, _) = app.cli(&["drp", "agents"], &[]);
    assert!(
        ok && out.contains("CLI_AGENT\tAgent by CLI") && out.contains("active"),
        "{out}"
    );

    // A bad key is refused and changes nothing.
    let (ok, _, err) = app.cli(
        &[
            "drp",
            "agent-add",
            "--id",
            "CLI_AGENT",
            "--name",
            "X",
            "--verify-key",
            "AAAA",
        ],
        &[],
    );
    assert!(!ok && err.contains("verify key"), "{err}");

    // Disabled: its token stops working at once, and so does a new key set-up.
    let (ok, out, err) = app.cli(
        &["drp", "agent-set", "--id", "CLI_AGENT", "--active", "false"],
        &[],
    );
    assert!(ok, "{out}{err}");
    let logged = last_audit(&app, rightsflow::storage::drp::AGENT_CHANGED).unwrap();
    assert_eq!(logged["active"], false);
    let status = agent.info(&app).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = agent
        .send(
            &app,
            reqwest::Method::POST,
            "/drp/v1/agent/CLI_AGENT",
            Some(agent.seal(&agent.claims(json!({})))),
        )
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::FORBIDDEN, ""));

    // The business key: a fresh pair, and the configured key's public half.
    let (ok, out, _) = app.cli(&["drp", "keygen"], &[]);
    assert!(ok && out.contains("verify key"), "{out}");
    let seed = B64.encode(BUSINESS_SEED);
    let (ok, out, _) = app.cli(
        &["drp", "public-key"],
        &[
            ("RIGHTSFLOW_DRP_BUSINESS_ID", BUSINESS),
            ("RIGHTSFLOW_DRP_SIGNING_KEY", &seed),
        ],
    );
    let ours = B64.encode(
        SigningKey::from_bytes(&BUSINESS_SEED)
            .verifying_key()
            .as_bytes(),
    );
    assert!(ok);
    assert_eq!(out.trim(), ours);
}

on_both_backends!(
    an_operator_registers_and_disables_agents_from_the_command_line,
    super::configure
);

async fn admins_register_agents_in_the_console_in_both_languages(app: TestApp) {
    use crate::console::{goes_to_sign_in, Console};
    use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, STAFF_PASSWORD};
    let mut agent = Agent::new("CONSOLE_AGENT", 31);
    let anon = Console::anonymous(&app);
    assert!(goes_to_sign_in(&anon.get("/console/drp-agents").await));

    let admin = Console::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let zh = admin.page("/console/drp-agents").await;
    assert!(
        zh.contains("数据权利协议代理") && zh.contains("尚未登记任何代理"),
        "{zh}"
    );
    let ours = B64.encode(
        SigningKey::from_bytes(&BUSINESS_SEED)
            .verifying_key()
            .as_bytes(),
    );
    assert!(
        zh.contains(&handlebars::html_escape(&ours)),
        "the page shows the key agents check callbacks with"
    );
    let en = admin.page("/console/drp-agents?lang=en").await;
    assert!(
        en.contains("Data Rights Protocol agents") && en.contains("No agent is registered yet"),
        "{en}"
    );

    // A bad key: 422 and the page says why; nothing registered.
    let bad = admin
        .post(
            "/console/drp-agents",
            &[
                ("id", "CONSOLE_AGENT"),
                ("name", "Agent"),
                ("verify_key", "AAAA"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(last_audit(&app, rightsflow::storage::drp::AGENT_REGISTERED).is_none());

    let key = agent.verify_key();
    let added = admin
        .post(
            "/console/drp-agents",
            &[
                ("id", "CONSOLE_AGENT"),
                ("name", "Console Agent"),
                ("verify_key", &key),
                ("callback_origin", "https://console-agent.test/"),
            ],
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let logged = last_audit(&app, rightsflow::storage::drp::AGENT_REGISTERED).unwrap();
    assert_eq!(logged["agent_id"], "CONSOLE_AGENT");
    assert_eq!(logged["callback_origin"], "https://console-agent.test");
    let listed = admin.page("/console/drp-agents").await;
    assert!(listed.contains("Console Agent"));
    assert!(listed.contains("<code>https://console-agent.test</code>"));
    // An origin with a path is not an origin: refused, nothing changed.
    let refused = admin
        .post(
            "/console/drp-agents",
            &[
                ("id", "CONSOLE_AGENT"),
                ("name", "Console Agent"),
                ("verify_key", &key),
                ("callback_origin", "https://console-agent.test/status"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        last_audit(&app, rightsflow::storage::drp::AGENT_CHANGED),
        None,
        "nothing changed"
    );
    agent.key_setup(&app).await;

    // Other roles may not look, let alone change.
    app.staff("reviewer", Role::Reviewer).await;
    let reviewer = Console::sign_in(&app, "reviewer@rightsflow.test", STAFF_PASSWORD).await;
    assert_eq!(
        reviewer.get("/console/drp-agents").await.status(),
        StatusCode::FORBIDDEN
    );
    let refused = reviewer
        .post("/console/drp-agents/CONSOLE_AGENT", &[("active", "0")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let status = agent.info(&app).await;
    assert_eq!(status, StatusCode::OK, "still active");

    let off = admin
        .post("/console/drp-agents/CONSOLE_AGENT", &[("active", "0")])
        .await;
    assert_eq!(off.status(), StatusCode::SEE_OTHER);
    let status = agent.info(&app).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled agent's token ends"
    );
}

on_both_backends!(
    admins_register_agents_in_the_console_in_both_languages,
    super::configure
);

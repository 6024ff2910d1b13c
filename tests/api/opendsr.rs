//! An OpenDSR 2.0 controller, black-box: discovery, requests created, polled through to
//! completed and cancelled, every validation failure answered in the specification's error
//! shape, and status callbacks received on loopback with their signatures checked against the
//! public key discovery points at.

use base64::Engine as _;
use chrono::Utc;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePrivateKey, LineEnding};
use reqwest::StatusCode;
use rightsflow::domain::{Actor, Role};
use serde_json::{json, Value};

use crate::helpers::{last_audit, TestApp};
use crate::on_both_backends;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const DOMAIN: &str = "privacy.weimacms.test";

/// Our signing key in these tests (a fixed scalar, never a real key).
fn signing_key_pem() -> String {
    let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

pub fn configure(c: &mut rightsflow::config::Config) {
    c.opendsr.signing_key = Some(rightsflow::config::Secret::new(signing_key_pem()));
}

/// The controller side of the protocol.
struct Controller {
    id: String,
    token: String,
}

impl Controller {
    fn register(app: &TestApp, id: &str) -> Controller {
        Controller::register_with_callbacks(app, id, None)
    }

    /// Registers the controller with the origin its status callbacks may go to.
    fn register_with_callbacks(app: &TestApp, id: &str, origin: Option<&str>) -> Controller {
        let token = rightsflow::interop::opendsr::service::register_controller(
            app.services.db(),
            &Actor::System,
            id,
            "Test Controller",
            origin,
            Utc::now(),
        )
        .unwrap();
        Controller {
            id: id.into(),
            token,
        }
    }

    async fn send(
        &self,
        app: &TestApp,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/json");
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, res.text().await.unwrap())
    }

    async fn create(&self, app: &TestApp, route: &str, body: &Value) -> (StatusCode, Value) {
        let path = format!("/opendsr/v1/{route}");
        let (status, _, text) = self
            .send(app, reqwest::Method::POST, &path, Some(body.to_string()))
            .await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn status(&self, app: &TestApp, id: &str) -> (StatusCode, Value) {
        let path = format!("/opendsr/v1/requests/{id}");
        let (status, _, text) = self.send(app, reqwest::Method::GET, &path, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn cancel(&self, app: &TestApp, route: &str, id: &str) -> (StatusCode, Value) {
        let path = format!("/opendsr/v1/{route}/{id}");
        let (status, _, text) = self.send(app, reqwest::Method::DELETE, &path, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn request(kind: &str, email: &str, callbacks: &[&str]) -> Value {
    json!({
        "subject_request_id": uuid::Uuid::new_v4().to_string(),
        "regulation": "gdpr",
        "subject_request_type": kind,
        "submitted_time": Utc::now().to_rfc3339(),
        "subject_identities": [{ "identity_type": "email", "identity_value": email, "identity_format": "raw" }],
        "api_version": "2.0",
        "status_callback_urls": callbacks,
    })
}

/// The key discovery's certificate URL serves (no certificate configured: the public key).
async fn processor_key(app: &TestApp) -> VerifyingKey {
    let (_, _, discovered) = anonymous_get(app, "/opendsr/v1/discovery").await;
    let discovered: Value = serde_json::from_str(&discovered).unwrap();
    let url = discovered["processor_certificate"].as_str().unwrap();
    let path = url.strip_prefix("https://privacy.weimacms.test").unwrap();
    let (status, _, pem) = anonymous_get(app, path).await;
    assert_eq!(status, StatusCode::OK);
    VerifyingKey::from_public_key_pem(&pem).unwrap()
}

async fn anonymous_get(
    app: &TestApp,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let res = app.client.get(app.url(path)).send().await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

/// Checks a base64 DER signature of `body` under `key`.
fn assert_signed(key: &VerifyingKey, signature: &str, body: &[u8]) {
    let der = B64
        .decode(signature.trim())
        .expect("the signature is base64");
    let sig = DerSignature::from_bytes(&der).expect("a DER ECDSA signature");
    key.verify(body, &sig)
        .expect("signed with the key discovery publishes");
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers[name].to_str().unwrap().to_owned()
}

async fn requests_total(app: &TestApp, admin: &str) -> i64 {
    app.list(admin, "").await["total"].as_i64().unwrap()
}

fn reference_of(status: &Value) -> String {
    let url = status["extensions"][DOMAIN]["user_verification_url"]
        .as_str()
        .unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

async fn a_controller_erases_through_opendsr_and_is_told_when_it_is_done(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, staff_agent) = app.staff("agent", Role::Agent).await;
    let (_, reviewer) = app.staff("reviewer", Role::Reviewer).await;
    let (callback, mut received) = crate::helpers::callback_listener("/opendsr/callbacks").await;
    let origin = callback.split("/opendsr/").next().unwrap();
    let controller = Controller::register_with_callbacks(&app, "ACME_CONTROLLER", Some(origin));

    // Discovery needs no token and is signed.
    let (status, headers, text) = anonymous_get(&app, "/opendsr/v1/discovery").await;
    assert_eq!(status, StatusCode::OK);
    let key = processor_key(&app).await;
    assert_signed(
        &key,
        &header(&headers, "X-OpenDSR-Signature"),
        text.as_bytes(),
    );
    assert_eq!(header(&headers, "X-OpenDSR-Processor-Domain"), DOMAIN);
    assert_eq!(header(&headers, "X-OpenGDPR-Processor-Domain"), DOMAIN);
    let discovered: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(discovered["api_version"], "2.0");
    assert_eq!(
        discovered["supported_subject_request_types"],
        json!(["access", "portability", "erasure"])
    );
    assert_eq!(
        discovered["supported_identities"],
        json!([{ "identity_type": "email", "identity_format": "raw" }])
    );

    let before = requests_total(&app, &admin).await;
    let sent = request("erasure", "ada@example.test", &[&callback]);
    let id = sent["subject_request_id"].as_str().unwrap().to_owned();
    let (status, headers, text) = controller
        .send(
            &app,
            reqwest::Method::POST,
            "/opendsr/v1/requests",
            Some(sent.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_signed(
        &key,
        &header(&headers, "X-OpenDSR-Signature"),
        text.as_bytes(),
    );
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(requests_total(&app, &admin).await, before + 1);
    assert_eq!(created["controller_id"], "ACME_CONTROLLER");
    assert_eq!(created["subject_request_id"], id.as_str());
    assert!(
        created["received_time"].is_string() && created["expected_completion_time"].is_string()
    );
    assert_eq!(
        B64.decode(created["encoded_request"].as_str().unwrap())
            .unwrap(),
        sent.to_string().into_bytes()
    );
    // processor_signature signs the body without itself.
    let mut unsigned = created.clone();
    let receipt = unsigned
        .as_object_mut()
        .unwrap()
        .remove("processor_signature")
        .unwrap();
    assert_signed(
        &key,
        receipt.as_str().unwrap(),
        unsigned.to_string().as_bytes(),
    );

    // The controller's word is not enough to erase: the user confirms with our code.
    let (status, polled) = controller.status(&app, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(polled["request_status"], "pending", "{polled}");
    assert_eq!(
        polled["extensions"][DOMAIN]["status"],
        "awaiting_verification"
    );
    let reference = reference_of(&polled);
    app.verify_by_code(&reference).await;
    let staff_id = app.id_of(&staff_agent, &reference).await;
    let console = crate::console::Console::sign_in(
        &app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;
    let page = console.page(&format!("/console/requests/{staff_id}")).await;
    assert!(
        page.contains("经 OpenDSR 控制者 <code>ACME_CONTROLLER</code>"),
        "{page}"
    );
    app.approve_by_two(&staff_agent, &reviewer, &staff_id).await;
    let (_, polled) = controller.status(&app, &id).await;
    assert_eq!(polled["request_status"], "in_progress", "{polled}");

    // No longer pending: the cancellation is refused in the specification's error shape.
    let (status, refused) = controller.cancel(&app, "requests", &id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["code"], 400);
    assert_eq!(refused["error"]["errors"][0]["reason"], "not_cancellable");

    app.act_ok(
        &staff_agent,
        &staff_id,
        json!({ "command": "complete", "summary": "Your account is erased." }),
    )
    .await;
    let (_, done) = controller.status(&app, &id).await;
    assert_eq!(done["request_status"], "completed", "{done}");
    assert_eq!(
        done["results_url"],
        format!("https://privacy.weimacms.test/requests/{reference}")
    );
    // The OpenGDPR route name reads the same request.
    let path = format!("/opendsr/v1/opengdpr_requests/{id}");
    let (status, _, text) = controller
        .send(&app, reqwest::Method::GET, &path, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["request_status"],
        "completed"
    );

    // Callbacks come signed, one per change. Two rows of one request may be sent at once and
    // arrive in either order (the extension's `sequence` orders them); a delivery that fails
    // is retried after the worker's back-off, hence the long wait.
    let mut seen: Vec<Value> = vec![];
    let statuses = |seen: &[Value]| -> Vec<String> {
        seen.iter()
            .map(|v| v["request_status"].as_str().unwrap().to_owned())
            .collect()
    };
    while !["in_progress", "completed"]
        .iter()
        .all(|s| statuses(&seen).iter().any(|t| t == s))
    {
        let call = tokio::time::timeout(std::time::Duration::from_secs(60), received.recv())
            .await
            .expect("a status callback arrives")
            .unwrap();
        let signature = call
            .header("X-OpenDSR-Signature")
            .expect("a signature header");
        assert_signed(&key, &signature, call.body.as_bytes());
        assert_eq!(call.header("X-OpenGDPR-Signature"), Some(signature));
        assert_eq!(
            call.header("X-OpenDSR-Processor-Domain").as_deref(),
            Some(DOMAIN)
        );
        let body: Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(body["subject_request_id"], id.as_str());
        assert_eq!(body["controller_id"], "ACME_CONTROLLER");
        assert_eq!(body["status_callback_url"], callback.as_str());
        assert!(body["expected_completion_time"].is_string());
        assert!(body["extensions"][DOMAIN]["sequence"].is_i64(), "{body}");
        seen.push(body);
    }
    seen.sort_by_key(|v| v["extensions"][DOMAIN]["sequence"].as_i64());
    assert_eq!(
        seen.last().unwrap()["request_status"],
        "completed",
        "the latest by sequence is the completion"
    );
}

on_both_backends!(
    a_controller_erases_through_opendsr_and_is_told_when_it_is_done,
    super::configure
);

async fn a_controller_cancels_a_pending_request(app: TestApp) {
    let controller = Controller::register(&app, "ACME");
    // The OpenGDPR route name, without `regulation` (v1 had none: gdpr).
    let mut sent = request("access", "grace@example.test", &[]);
    sent.as_object_mut().unwrap().remove("regulation");
    let id = sent["subject_request_id"].as_str().unwrap().to_owned();
    let (status, created) = controller.create(&app, "opengdpr_requests", &sent).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // An access request on the controller's word goes straight to our staff: still pending.
    let (_, polled) = controller.status(&app, &id).await;
    assert_eq!(polled["request_status"], "pending");
    assert_eq!(
        polled["extensions"][DOMAIN]["status"], "in_review",
        "{polled}"
    );
    assert!(polled["extensions"][DOMAIN]
        .get("user_verification_url")
        .is_none());

    let (status, cancelled) = controller.cancel(&app, "opengdpr_requests", &id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cancelled}");
    assert_eq!(cancelled["subject_request_id"], id.as_str());
    assert!(cancelled["processor_signature"].is_string());
    let (_, polled) = controller.status(&app, &id).await;
    assert_eq!(polled["request_status"], "cancelled");
    assert_eq!(polled["extensions"][DOMAIN]["status"], "withdrawn");
    // Cancelled is not pending: a second cancellation is refused.
    let (status, again) = controller.cancel(&app, "requests", &id).await;
    assert_eq!(
        (status, again["error"]["errors"][0]["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("not_cancellable"))
    );
}

on_both_backends!(a_controller_cancels_a_pending_request, super::configure);

async fn every_validation_failure_is_answered_in_the_specifications_shape(app: TestApp) {
    let admin = app.admin_token().await;
    let controller = Controller::register(&app, "ACME");
    let other = Controller::register(&app, "OTHER");
    let (_, first) = controller
        .create(&app, "requests", &request("access", "a@example.test", &[]))
        .await;
    let existing = first["subject_request_id"].as_str().unwrap().to_owned();
    let before = requests_total(&app, &admin).await;

    // Without a token, or with one we never gave: 401.
    for token in ["", "not-a-token"] {
        let stranger = Controller {
            id: "X".into(),
            token: token.into(),
        };
        let (status, answer) = stranger
            .create(&app, "requests", &request("access", "a@example.test", &[]))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        assert_eq!(answer["error"]["errors"][0]["reason"], "unauthorized");
        let (status, _) = stranger.status(&app, &existing).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    let with = |change: Value| {
        let mut r = request("erasure", "a@example.test", &[]);
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                r.as_object_mut().unwrap().remove(k);
            } else {
                r[k] = v.clone();
            }
        }
        r.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "invalid_json"),
        ("[1, 2]".into(), "invalid_json"),
        (
            with(json!({ "subject_request_type": "rectification" })),
            "unsupported_request_type",
        ),
        (
            with(json!({ "subject_request_type": null })),
            "missing_field",
        ),
        (with(json!({ "regulation": null })), "missing_field"),
        (
            with(json!({ "regulation": "lgpd" })),
            "unsupported_regulation",
        ),
        (
            with(json!({ "subject_request_id": "not-a-uuid" })),
            "invalid_subject_request_id",
        ),
        (
            with(json!({ "subject_request_id": existing })),
            "duplicate_request",
        ),
        (
            with(json!({ "submitted_time": "yesterday" })),
            "invalid_value",
        ),
        (
            with(
                json!({ "subject_identities": [{ "identity_type": "email", "identity_value": "ab12", "identity_format": "sha256" }] }),
            ),
            "unsupported_identity",
        ),
        (
            with(
                json!({ "subject_identities": [{ "identity_type": "email", "identity_value": "not an address", "identity_format": "raw" }] }),
            ),
            "invalid_identity",
        ),
        (
            with(json!({ "status_callback_urls": ["ftp://controller.test/cb"] })),
            "invalid_callback_url",
        ),
        (
            with(json!({ "status_callback_urls": "https://controller.test/cb" })),
            "invalid_callback_url",
        ),
        // No callback origin is registered for this controller: it polls.
        (
            with(json!({ "status_callback_urls": ["https://controller.test/cb"] })),
            "invalid_callback_url",
        ),
    ];
    for (body, reason) in cases {
        let (status, _, text) = controller
            .send(
                &app,
                reqwest::Method::POST,
                "/opendsr/v1/requests",
                Some(body),
            )
            .await;
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (status, answer["error"]["errors"][0]["reason"].as_str()),
            (StatusCode::BAD_REQUEST, Some(reason)),
            "{answer}"
        );
        assert_eq!(answer["error"]["code"], 400);
        assert_eq!(answer["error"]["errors"][0]["domain"], "Validation");
    }
    assert_eq!(
        requests_total(&app, &admin).await,
        before,
        "a refusal changes nothing"
    );

    // Callbacks go only to the origin registered for the controller.
    let fenced =
        Controller::register_with_callbacks(&app, "FENCED", Some("https://controller.test"));
    for url in [
        "https://evil.test/cb",
        "http://controller.test/cb",
        "http://127.0.0.1:5432/",
    ] {
        let (status, answer) = fenced
            .create(
                &app,
                "requests",
                &request("access", "a@example.test", &[url]),
            )
            .await;
        assert_eq!(
            (status, answer["error"]["errors"][0]["reason"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_callback_url")),
            "{url}: {answer}"
        );
    }
    assert_eq!(requests_total(&app, &admin).await, before);
    let (status, answer) = fenced
        .create(
            &app,
            "requests",
            &request(
                "access",
                "a@example.test",
                &["https://controller.test/opendsr/cb"],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(requests_total(&app, &admin).await, before + 1);

    // Unknown ids, and another controller's request, are not found.
    for (who, id) in [
        (&controller, uuid::Uuid::new_v4().to_string()),
        (&other, existing.clone()),
    ] {
        let (status, answer) = who.status(&app, &id).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(answer["error"]["errors"][0]["reason"], "not_found");
        let (status, _) = who.cancel(&app, "requests", &id).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, still) = controller.status(&app, &existing).await;
    assert_eq!(still["request_status"], "pending");

    // A disabled controller's token stops working at once.
    rightsflow::interop::opendsr::service::set_controller_active(
        app.services.db(),
        &Actor::System,
        "ACME",
        false,
        Utc::now(),
    )
    .unwrap();
    let (status, _) = controller.status(&app, &existing).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

on_both_backends!(
    every_validation_failure_is_answered_in_the_specifications_shape,
    super::configure
);

async fn without_a_signing_key_opendsr_is_not_there(app: TestApp) {
    let (status, _, text) = anonymous_get(&app, "/opendsr/v1/discovery").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["error"]["errors"][0]["reason"], "not_found");
}

on_both_backends!(without_a_signing_key_opendsr_is_not_there);

async fn create_access(app: &TestApp, controller: &Controller) -> StatusCode {
    let body = request("access", "cli@example.test", &[]);
    controller.create(app, "requests", &body).await.0
}

async fn an_operator_registers_and_disables_controllers_from_the_command_line(app: TestApp) {
    let (ok, out, err) = app.cli(
        &[
            "opendsr",
            "controller-add",
            "--id",
            "CLI_CTL",
            "--name",
            "Controller by CLI",
        ],
        &[],
    );
    assert!(ok, "{out}{err}");
    let token = out.trim().rsplit(' ').next().unwrap().to_owned();
    let logged = last_audit(&app, rightsflow::storage::opendsr::CONTROLLER_REGISTERED).unwrap();
    assert_eq!(logged["controller_id"], "CLI_CTL");
    assert!(
        !logged.to_string().contains(&token),
        "the token is never logged"
    );
    let controller = Controller {
        id: "CLI_CTL".into(),
        token,
    };
    let status = create_access(&app, &controller).await;
    assert_eq!(status, StatusCode::CREATED, "{}", controller.id);
    let (ok, out, _) = app.cli(&["opendsr", "controllers"], &[]);
    assert!(
        ok && out.contains("CLI_CTL\tController by CLI\tactive"),
        "{out}"
    );

    let (ok, out, err) = app.cli(
        &[
            "opendsr",
            "controller-set",
            "--id",
            "CLI_CTL",
            "--active",
            "false",
        ],
        &[],
    );
    assert!(ok, "{out}{err}");
    let logged = last_audit(&app, rightsflow::storage::opendsr::CONTROLLER_CHANGED).unwrap();
    assert_eq!(logged["active"], false);
    let status = create_access(&app, &controller).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (ok, _, err) = app.cli(
        &[
            "opendsr",
            "controller-add",
            "--id",
            "bad id!",
            "--name",
            "X",
        ],
        &[],
    );
    assert!(!ok && err.contains("controller id"), "{err}");

    // Our key: a fresh one, and the configured key's public half.
    let (ok, out, _) = app.cli(&["opendsr", "keygen"], &[]);
    assert!(
        ok && out.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{out}"
    );
    let pem = signing_key_pem();
    let (ok, out, err) = app.cli(
        &["opendsr", "public-key"],
        &[("RIGHTSFLOW_OPENDSR_SIGNING_KEY", &pem)],
    );
    assert!(ok, "{err}");
    let ours = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    assert_eq!(
        VerifyingKey::from_public_key_pem(&out).unwrap(),
        *ours.verifying_key()
    );
}

on_both_backends!(
    an_operator_registers_and_disables_controllers_from_the_command_line,
    super::configure
);

//! `spawn_app`: every test gets its own application on a random port, with its own database —
//! a fresh SQLite file, or a fresh PostgreSQL database created for the test and dropped after.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Client, Response, StatusCode};
use rightsflow::config::{Config, MailTransportKind, Secret, WorkerConfig};
use rightsflow::domain::{EmailAddress, Role};
use rightsflow::service::{now, staff, Services};
use rightsflow::startup::Application;
use serde_json::{json, Value};

pub const ADMIN_EMAIL: &str = "admin@rightsflow.test";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const STAFF_PASSWORD: &str = "staff-password-for-tests";
/// The key every test application signs its tokens with (the attack battery forges with it).
pub const JWT_SECRET: &str = "a test secret of at least thirty-two bytes";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A PostgreSQL database made for one test, dropped when the test ends.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub services: Services,
    pub notifier: std::sync::Arc<rightsflow::notifications::Notifier>,
    pub shutdown: rightsflow::notifications::Shutdown,
    server: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The SMTP server the app mails to, when it has one (else the file mailbox is used).
    pub sink: Option<crate::smtp::SmtpSink>,
    pub backend: Backend,
    database_url: String,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

/// The PostgreSQL server for tests, if one is configured. Without it PostgreSQL tests are
/// skipped with a message, unless `RIGHTSFLOW_TEST_REQUIRE_POSTGRES=1` (as in CI) makes a
/// missing server a failure.
fn postgres_url() -> Option<String> {
    match std::env::var("RIGHTSFLOW_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var("RIGHTSFLOW_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "RIGHTSFLOW_TEST_REQUIRE_POSTGRES=1 but RIGHTSFLOW_TEST_POSTGRES_URL is not set"
            );
            None
        }
    }
}

/// Says on the terminal (not in captured test output) that a test was skipped and why.
pub fn skip(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test} on PostgreSQL: set RIGHTSFLOW_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run it"
    );
}

fn fresh_postgres(base: &str) -> PgDatabase {
    let name = format!("rf_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::establish(base)
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at RIGHTSFLOW_TEST_POSTGRES_URL: {e}"));
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .unwrap();
    PgDatabase {
        admin_url: base.to_owned(),
        name,
    }
}

fn database_url_for(base: &str, name: &str) -> String {
    let (without_query, query) = base
        .split_once('?')
        .map_or((base, None), |(a, q)| (a, Some(q)));
    let root = without_query
        .rsplit_once('/')
        .map_or(without_query, |(root, _)| root);
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// A fresh, empty PostgreSQL database of its own (dropped with the guard), for tests that
/// need one besides the application's: `None` when no server is configured.
pub fn scratch_postgres() -> Option<(String, impl Drop)> {
    let base = postgres_url()?;
    let db = fresh_postgres(&base);
    Some((database_url_for(&base, &db.name), db))
}

/// Starts an application on `backend`; `None` when PostgreSQL is asked for but not available.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("test.db").display()),
            None,
        ),
        Backend::Postgres => {
            let base = postgres_url()?;
            let db = fresh_postgres(&base);
            (database_url_for(&base, &db.name), Some(db))
        }
    };
    // Log lines show with a failing test's output (RUST_LOG picks the level; default warn).
    if std::env::var("RUST_LOG").is_err() {
        std::env::set_var("RUST_LOG", "warn");
    }
    rightsflow::telemetry::init(rightsflow::config::LogFormat::Pretty);
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url),
        database_pool_size: 4,
        listen: "127.0.0.1:0".into(),
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        admin_email: ADMIN_EMAIL.into(),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        expiry_sweep_seconds: 0,
        reminder_sweep_seconds: 0,
        public_url: Some("https://privacy.weimacms.test".into()),
        worker: WorkerConfig {
            poll_millis: 50,
            ..WorkerConfig::default()
        },
        ..Config::default()
    };
    // Tests that fulfil in a data system turn the demo platform on themselves; elsewhere
    // staff complete requests by hand, as the tests expect.
    config.fulfilment.demo_platform = false;
    tweak(&mut config);
    let db_url = config.database_url();
    // The application runs on a thread and runtime of its own, as in production; the test
    // stops it and waits for it when it ends (see `Drop for TestApp`).
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Application::build(config).await.unwrap();
            let _ = tx.send((
                app.port(),
                app.services().clone(),
                app.notifier().clone(),
                app.shutdown_handle(),
                app.server_handle(),
            ));
            let _ = app.run_until_stopped().await;
        });
    });
    let (port, services, notifier, shutdown, server) =
        tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
    Some(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        // Idle connections are dropped before the server's keep-alive (5 s) closes them, so a
        // test that pauses (a browser at work) never reuses a connection the server has shut.
        client: Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap(),
        services,
        notifier,
        shutdown,
        server: Some(server),
        thread: Some(thread),
        sink: None,
        backend,
        database_url: db_url,
        _dir: dir,
        _pg: pg,
    })
}

impl Drop for TestApp {
    /// Stops the application and waits for it, before the test's database goes away: nothing
    /// may still use the database (or libpq) when the process exits.
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(server) = self.server.take() {
            // Sends the stop command at once; the returned future only waits for it.
            drop(server.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An application mailing to a real SMTP server on loopback.
pub async fn spawn_app_with_sink(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let sink = crate::smtp::SmtpSink::start().await;
    let s = sink.clone();
    let mut app = spawn_app_with(backend, move |c| {
        mail_to(&s, c);
        tweak(c);
    })
    .await?;
    app.sink = Some(sink);
    Some(app)
}

/// Sends the application's email to `sink` over SMTP.
pub fn mail_to(sink: &crate::smtp::SmtpSink, config: &mut Config) {
    config.mail_transport = Some(MailTransportKind::Smtp);
    config.smtp_url = Some(Secret::new(sink.url()));
    config.mail_from = "WEIMACMS 隐私团队 <privacy@weimacms.test>".into();
}

/// Runs `$test(app)` once on SQLite and once on PostgreSQL, optionally with the config
/// changed by `$tweak(&mut Config)`.
#[macro_export]
macro_rules! on_both_backends {
    ($test:ident) => {
        $crate::on_both_backends!($test, |_| {});
    };
    ($test:ident, $tweak:expr) => {
        mod $test {
            use $crate::helpers::{skip, spawn_app_with, Backend};

            #[tokio::test]
            async fn sqlite() {
                let app = spawn_app_with(Backend::Sqlite, $tweak).await.unwrap();
                super::$test(app).await;
            }

            #[tokio::test]
            async fn postgres() {
                match spawn_app_with(Backend::Postgres, $tweak).await {
                    Some(app) => super::$test(app).await,
                    None => skip(module_path!()),
                }
            }
        }
    };
}

pub struct Submitted {
    pub reference: String,
    pub body: Value,
}

/// A sample of valid details for each kind.
pub fn details_for(kind: &str) -> Value {
    match kind {
        "access" => json!({ "categories": ["account", "orders"], "format": "json" }),
        "correction" => {
            json!({ "fields": [{ "field": "收货地址", "current_value": "旧地址", "corrected_value": "上海市浦东新区" }] })
        }
        "deletion" => json!({ "scope": "account" }),
        "restriction" => json!({ "processing": "个性化推荐", "ground": "objection" }),
        "portability" => json!({ "categories": ["orders"], "format": "csv" }),
        "consent_withdrawal" => json!({ "consents": ["partner_sharing", "marketing_messages"] }),
        "complaint" => {
            json!({ "subject": "客服未回复", "account": "我在十月提交了更正请求，至今未获答复。" })
        }
        other => panic!("no sample for {other}"),
    }
}

impl TestApp {
    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Runs the `rightsflow` binary on this app's data folder and database (with `env` on top):
    /// whether it succeeded, its standard output, its standard error.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rightsflow"))
            .args(args)
            .env("RIGHTSFLOW_DATA_DIR", self.data_dir())
            .env("RIGHTSFLOW_DATABASE_URL", self.database_url())
            .env_remove("RIGHTSFLOW_CONFIG")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The request tallies the triggers keep (status, kind, dated; open requests per due day;
    /// the overdue figure) equal a count of the requests themselves. The two are read one after
    /// the other while the application's worker may still move a request (fulfilment), so a
    /// difference is read again for up to two seconds; a tally that drifted stays different.
    pub fn assert_tallies_true(&self) {
        use rightsflow::storage::tallies;
        let mut conn = self.services.db().conn().unwrap();
        let mut last = String::new();
        for _ in 0..20 {
            let kept = tallies::all(&mut conn).unwrap();
            assert!(!kept.is_empty(), "no tallies kept");
            let counted = tallies::counted(&mut conn).unwrap();
            let (due_kept, due_counted) = tallies::due_days(&mut conn).unwrap();
            let now = rightsflow::service::now();
            let overdue = (
                tallies::overdue(&mut conn, now).unwrap(),
                rightsflow::storage::reports::open_due_between(&mut conn, None, now).unwrap(),
            );
            if kept == counted && due_kept == due_counted && overdue.0 == overdue.1 {
                return;
            }
            last = format!(
                "kept {kept:?}\ncounted {counted:?}\ndue kept {due_kept:?}\ndue counted {due_counted:?}\noverdue {overdue:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the tallies differ from a count:\n{last}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// A GET with a bearer token (a staff token or a subject session).
    pub async fn get_with(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Submits a request as a subject and checks it was accepted.
    pub async fn submit(&self, kind: &str, jurisdiction: &str) -> Submitted {
        let body = json!({
            "kind": kind,
            "jurisdiction": jurisdiction,
            "subject": { "name": "李雷", "email": "li.lei@example.com" },
            "details": details_for(kind),
        });
        let res = self.post_json("/api/v1/requests", &body, None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        Submitted {
            reference: body["reference"].as_str().unwrap().to_owned(),
            body,
        }
    }

    /// A request's fulfilment tasks with their outbox rows' state, read from the database.
    pub async fn tasks_of(&self, request_id: &str) -> Vec<rightsflow::storage::tasks::TaskView> {
        let (s, id) = (self.services.clone(), request_id.to_owned());
        tokio::task::spawn_blocking(move || {
            rightsflow::storage::tasks::for_request(&mut s.db().conn().unwrap(), &id).unwrap()
        })
        .await
        .unwrap()
    }

    /// The request as the subject sees it, in their session.
    pub async fn subject_get(&self, reference: &str, session: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/requests/{reference}")))
            .bearer_auth(session)
            .send()
            .await
            .unwrap()
    }

    pub async fn subject_post(
        &self,
        reference: &str,
        action: &str,
        session: &str,
        body: &Value,
    ) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/requests/{reference}/{action}")))
            .bearer_auth(session)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/staff/login",
            &json!({ "email": email, "password": password }),
            None,
        )
        .await
    }

    pub async fn token_for(&self, email: &str, password: &str) -> String {
        let res = self.login(email, password).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a staff account (there is no HTTP route for it until the console) and signs in.
    /// Returns (staff id, token).
    pub async fn staff(&self, name: &str, role: Role) -> (String, String) {
        let email = format!("{name}@rightsflow.test");
        let db = self.services.db().clone();
        let parsed = EmailAddress::parse(&email).unwrap();
        let row = tokio::task::spawn_blocking(move || {
            staff::add(
                &db,
                &rightsflow::domain::Actor::System,
                &parsed,
                role,
                rightsflow::domain::Locale::ZhCn,
                STAFF_PASSWORD,
                now(),
            )
        })
        .await
        .unwrap()
        .unwrap();
        (row.id, self.token_for(&email, STAFF_PASSWORD).await)
    }

    /// The staff view of the request with this reference (found through the queue).
    pub async fn find(&self, token: &str, reference: &str) -> Value {
        let list = self.list(token, "limit=200").await;
        let item = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["reference"] == reference)
            .cloned();
        let id = item.unwrap_or_else(|| panic!("{reference} not in the queue"))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.staff_get(token, &id).await
    }

    /// The text bodies of the messages sent about `reference` so far: from the SMTP server when
    /// the app has one, else from the file mailbox, as a person would read their mail.
    pub fn mail_texts(&self, reference: &str) -> Vec<String> {
        match &self.sink {
            Some(sink) => sink
                .messages()
                .iter()
                .filter(|m| m.subject().contains(reference))
                .filter_map(|m| m.part("text/plain"))
                .collect(),
            None => {
                rightsflow::notifications::mail::DevMail::read_all(&self.data_dir().join("mail"))
                    .into_iter()
                    .filter(|m| m.subject.contains(reference))
                    .map(|m| m.text)
                    .collect()
            }
        }
    }

    /// Waits for a message about `reference` whose text `pick` accepts; returns what it picked.
    pub async fn wait_mail<T>(&self, reference: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(found) = self.mail_texts(reference).iter().find_map(|t| pick(t)) {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no such message arrived for {reference}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// The newest verification code sent for `reference`.
    pub async fn code_for(&self, reference: &str) -> String {
        self.wait_mail(reference, code_in).await
    }

    /// Verifies `reference` with the code from the mailbox; returns the session token.
    pub async fn verify_by_code(&self, reference: &str) -> String {
        let code = self.code_for(reference).await;
        let res = self
            .post_json(
                &format!("/api/v1/requests/{reference}/verification"),
                &json!({ "code": code }),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "verifying {reference}");
        let body: Value = res.json().await.unwrap();
        body["session"]["token"].as_str().unwrap().to_owned()
    }

    /// The staff-side id of the request with this reference.
    pub async fn id_of(&self, token: &str, reference: &str) -> String {
        self.find(token, reference).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn list(&self, token: &str, query: &str) -> Value {
        let res = self
            .client
            .get(self.url(&format!("/api/v1/staff/requests?{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "list {query}");
        res.json().await.unwrap()
    }

    pub async fn staff_get(&self, token: &str, id: &str) -> Value {
        let res = self
            .client
            .get(self.url(&format!("/api/v1/staff/requests/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    pub async fn act(&self, token: &str, id: &str, command: Value) -> Response {
        self.post_json(
            &format!("/api/v1/staff/requests/{id}/actions"),
            &command,
            Some(token),
        )
        .await
    }

    /// Applies a command that must be refused; returns the status and error code.
    pub async fn act_err(&self, token: &str, id: &str, command: Value) -> (StatusCode, String) {
        error_code(self.act(token, id, command).await).await
    }

    /// A staff check of identity evidence, which must be accepted; returns the request after it.
    pub async fn staff_check(&self, token: &str, id: &str) -> Value {
        let check =
            json!({ "command": "verify", "method": "staff_check", "evidence": "核对了身份证原件" });
        self.act_ok(token, id, check).await
    }

    /// Applies a command that must succeed, returning the request after it.
    /// A deletion's four eyes: `first` prepares (approves with a comment), `second` releases.
    pub async fn approve_by_two(&self, first: &str, second: &str, id: &str) {
        self.act_ok(first, id, json!({ "command": "approve", "comment": "ok" }))
            .await;
        self.act_ok(second, id, json!({ "command": "approve" }))
            .await;
    }

    pub async fn act_ok(&self, token: &str, id: &str, command: Value) -> Value {
        let res = self.act(token, id, command.clone()).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{command} → {body}");
        body
    }
}

/// The one-time code in a message body: a line of exactly six digits.
pub fn code_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
}

/// Reads an error response and returns its code, checking the one error shape.
pub async fn error_code(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res
        .json()
        .await
        .unwrap_or_else(|e| panic!("error body is not JSON ({status}): {e}"));
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"))
        .to_owned();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    (status, code)
}

/// A MySQL/MariaDB database of its own for a test (the connector's third kind of target),
/// dropped afterwards; `None` without `RIGHTSFLOW_TEST_MYSQL_URL` (e.g.
/// `mysql://root@127.0.0.1:3306/test`), unless `RIGHTSFLOW_TEST_REQUIRE_MYSQL=1` (as in CI) makes
/// that a failure.
pub fn scratch_mysql() -> Option<(String, impl Drop)> {
    let base = match std::env::var("RIGHTSFLOW_TEST_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => url,
        None => {
            assert!(
                std::env::var("RIGHTSFLOW_TEST_REQUIRE_MYSQL").as_deref() != Ok("1"),
                "RIGHTSFLOW_TEST_REQUIRE_MYSQL=1 but RIGHTSFLOW_TEST_MYSQL_URL is not set"
            );
            return None;
        }
    };
    struct MysqlDatabase {
        admin_url: String,
        name: String,
    }
    impl Drop for MysqlDatabase {
        fn drop(&mut self) {
            if let Ok(mut c) = diesel::MysqlConnection::establish(&self.admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE `{}`", self.name)).execute(&mut c);
            }
        }
    }
    let name = format!("rf_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = diesel::MysqlConnection::establish(&base)
        .unwrap_or_else(|e| panic!("cannot reach MySQL at RIGHTSFLOW_TEST_MYSQL_URL: {e}"));
    diesel::sql_query(format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut conn)
    .unwrap();
    let url = match base.rfind('/') {
        Some(i) if i > "mysql://".len() => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    };
    Some((
        url,
        MysqlDatabase {
            admin_url: base,
            name,
        },
    ))
}

/// One HTTP request a [`callback_listener`] received: its header lines and its body.
pub struct Call {
    pub head: String,
    pub body: String,
}

impl Call {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// An HTTP listener on loopback (a protocol's callback receiver) that answers 200 and hands
/// over every request it receives; the URL ends in `path`.
pub async fn callback_listener(path: &str) -> (String, tokio::sync::mpsc::UnboundedReceiver<Call>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let call = Call {
                        head: text[..end].to_owned(),
                        body: String::new(),
                    };
                    let len = call
                        .header("content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]);
                        let _ = tx.send(Call {
                            body: body.to_string(),
                            ..call
                        });
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

/// The details of the audit log's last entry of `action`, if any.
pub fn last_audit(app: &TestApp, action: &str) -> Option<Value> {
    let mut conn = app.services.db().conn().unwrap();
    rightsflow::storage::audit_log::last_of(&mut conn, action)
        .unwrap()
        .map(|row| serde_json::from_str(&row.details).unwrap())
}

//! Crash safety under load (issue #9). PostgreSQL, three `rightsflow serve` processes on one
//! database (each running the outbox worker, so the queue is claimed by three processes under
//! leases) and the test SMTP sink, all real and on loopback. A mixed load — submissions,
//! verifications with the code the sink received, a few withdrawals, staff actions — is spread
//! over the three in turn for a bounded time; in the middle one process is killed with SIGKILL
//! and, a little later, started again on the same port with the same configuration. Then the
//! load stops, the outbox drains, the processes stop, and the database and the sink are
//! checked:
//!
//! 1. every submission answered 201 exists exactly once; one whose answer was lost exists at
//!    most once; one whose connection was refused does not exist; nothing else exists;
//! 2. every audit chain verifies (`rightsflow audit verify`);
//! 3. every email row that is done reached the sink, every message the sink holds is an email
//!    row (by its Message-ID, which is the row's id), no row is left queued, and no message was
//!    sent under two Message-IDs. SMTP gives at-least-once at a crash: a message the sink took
//!    just before the kill, whose row was not yet marked done, is sent again by the worker that
//!    takes the row over — with the same Message-ID and the same content. Such resends are
//!    counted, and allowed only for rows the killed process held when it died;
//! 4. no request is in a state the core forbids: the core's invariants hold, the version is
//!    the length of the event log, the events chain status to status by transitions the core
//!    makes, the last one ends in the stored status, and nothing but notes follows an end.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use reqwest::{Client, RequestBuilder, StatusCode};
use rightsflow::config::Config;
use rightsflow::domain::{Event, Status};
use rightsflow::storage::outbox::{OutboxRow, DONE, FAILED, PENDING, PROCESSING};
use rightsflow::storage::schema::{outbox, requests as requests_table};
use rightsflow::storage::{requests, Database};
use serde_json::{json, Value};

use crate::helpers::{code_in, details_for, scratch_postgres, skip};
use crate::smtp::{Received, SmtpSink};

const INSTANCES: usize = 3;
/// The instance that is killed and started again.
const VICTIM: usize = 1;
/// How long the load runs, and when in it the victim dies and comes back.
const LOAD: Duration = Duration::from_secs(12);
const KILL_AT: Duration = Duration::from_secs(4);
/// Submissions sent to the victim at once just before it is killed.
const BURST: usize = 12;
const RESTART_AT: Duration = Duration::from_secs(7);
/// How long a worker's claim on an outbox row lasts: the killed process's rows are taken over
/// after it.
const LEASE_SECONDS: u64 = 6;
const MAIL_DOMAIN: &str = "crash.test";
const ADMIN_EMAIL: &str = "admin@crash.test";
const ADMIN_PASSWORD: &str = "admin-password-for-the-crash-test";
/// Kinds that go through review without four eyes, and two that do not (deletion needs a staff
/// check and two approvers; consent withdrawal is approved as soon as it is verified).
const KINDS: [&str; 6] = [
    "access",
    "correction",
    "complaint",
    "restriction",
    "deletion",
    "consent_withdrawal",
];

const JURISDICTIONS: [&str; 2] = ["cn", "eu"];

/// The one configuration file the three processes (and `audit verify`, and this test's own
/// reads) share. Keys are given, so no process generates its own; rate limits are raised (one
/// address sends everything); scheduled jobs are off (nothing would fall due in seconds);
/// retries come after a second, so the drain is short.
fn config_text(data_dir: &Path, database_url: &str, smtp_url: &str) -> String {
    let limit = 100_000_000;
    format!(
        r#"data_dir = {data_dir:?}
database_url = {database_url:?}
database_pool_size = 5
jwt_secret = "a crash test secret of at least thirty-two bytes"
data_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
index_key = "an index key of at least thirty-two characters"
admin_email = "{ADMIN_EMAIL}"
admin_password = "{ADMIN_PASSWORD}"
expiry_sweep_seconds = 0
reminder_sweep_seconds = 0
mail_transport = "smtp"
smtp_url = {smtp_url:?}
mail_from = "Rightsflow <privacy@{MAIL_DOMAIN}>"
public_url = "https://privacy.{MAIL_DOMAIN}"
log_format = "json"

[worker]
in_serve = true
batch = 10
concurrency = 4
poll_millis = 100
lease_seconds = {LEASE_SECONDS}
max_attempts = 8
retry_base_seconds = 1
retry_max_seconds = 2

[rate_limits]
requests_per_ip = {limit}
submissions_per_ip = {limit}
code_checks_per_ip = {limit}
code_checks_per_reference = {limit}
resends_per_ip = {limit}
staff_logins_per_ip = {limit}
callbacks_per_ip = {limit}

[fulfilment]
demo_platform = false
"#,
        data_dir = data_dir.display().to_string(),
    )
}

/// A port nothing listens on now (bound and let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The three `serve` processes; whatever still runs is killed when the test ends.
struct Cluster {
    config: PathBuf,
    logs: PathBuf,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    fn log(&self, i: usize) -> PathBuf {
        self.logs.join(format!("instance-{i}.log"))
    }

    /// Starts instance `i` on its port (its log appended to its file).
    fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rightsflow"));
        command.arg("--config").arg(&self.config).arg("serve");
        // The file says everything; nothing from the test's own environment overrides it.
        for (name, _) in std::env::vars() {
            if name.starts_with("RIGHTSFLOW_") {
                command.env_remove(name);
            }
        }
        let child = command
            .env("RIGHTSFLOW_LISTEN", format!("127.0.0.1:{}", self.ports[i]))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    fn pid(&self, i: usize) -> u32 {
        self.children[i].as_ref().unwrap().id()
    }

    /// Waits until instance `i` answers `/readyz`; fails the test (with its log) if it exits or
    /// takes more than a minute.
    async fn ready(&mut self, i: usize, client: &Client) -> Duration {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/readyz", self.ports[i]);
        loop {
            if let Ok(res) = client.get(&url).send().await {
                if res.status() == StatusCode::OK {
                    return started.elapsed();
                }
            }
            let exited = self.children[i].as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && started.elapsed() < Duration::from_secs(60),
                "instance {i} did not become ready ({exited:?}); its log:\n{}",
                std::fs::read_to_string(self.log(i)).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no chance to finish or give anything back.
    fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM to every instance, then waits (up to 20 s each, then SIGKILL): how many stopped
    /// cleanly.
    fn stop_all(&mut self) -> usize {
        let mut clean = 0;
        for i in 0..self.children.len() {
            let Some(mut child) = self.children[i].take() else {
                continue;
            };
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait().unwrap() {
                    Some(status) => {
                        clean += usize::from(status.success());
                        break;
                    }
                    None if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    None => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        clean
    }
}

/// What became of one HTTP call.
enum Answer {
    /// An answer, its body as JSON (null when it is not).
    Got(StatusCode, Value),
    /// The connection was refused: nothing was sent.
    Unsent,
    /// Sent, but the answer never came whole (the process died, the connection broke).
    Lost,
}

async fn call(request: RequestBuilder) -> Answer {
    match request.send().await {
        Ok(res) => {
            let status = res.status();
            match res.bytes().await {
                Ok(body) => Answer::Got(status, serde_json::from_slice(&body).unwrap_or_default()),
                Err(_) => Answer::Lost,
            }
        }
        Err(e) if e.is_connect() => Answer::Unsent,
        Err(_) => Answer::Lost,
    }
}

/// What the load saw, for the checks and the summary.
#[derive(Default)]
struct Tally {
    /// (reference, subject's address) of each submission answered 201.
    accepted: Vec<(String, String)>,
    /// Addresses of submissions whose answer was lost: they may exist, at most once.
    lost: Vec<String>,
    /// Addresses of submissions whose connection was refused: they must not exist.
    unsent: Vec<String>,
    /// Any other answer to a call: (what, status, error code). Expected to stay empty.
    unexpected: Vec<(&'static str, u16, String)>,
    verified: usize,
    /// Accepted requests left unverified on purpose, or whose code did not arrive in time.
    not_verified: usize,
    /// Requests their subject withdrew.
    withdrawn: usize,
    staff_done: usize,
    /// Staff commands the core refused because another actor got there first (409/422).
    staff_raced: usize,
    /// Calls (any kind but submissions) that got no answer or no connection.
    calls_failed: usize,
}

struct Load {
    client: Client,
    ports: Vec<u16>,
    next: AtomicUsize,
    submitted: AtomicUsize,
    stop: AtomicBool,
    token: String,
    tally: Mutex<Tally>,
    to_verify: Mutex<VecDeque<String>>,
    /// The newest code the sink received, per reference.
    codes: Mutex<HashMap<String, String>>,
}

impl Load {
    /// The next instance in turn.
    fn base(&self) -> String {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.ports.len();
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn unexpected(&self, what: &'static str, status: StatusCode, body: &Value) {
        let code = body["error"]["code"].as_str().unwrap_or("?").to_owned();
        self.tally
            .lock()
            .unwrap()
            .unexpected
            .push((what, status.as_u16(), code));
    }
}

/// One submission to `base`, recorded by what became of it.
async fn submit_one(load: &Load, base: &str) {
    let n = load.submitted.fetch_add(1, Ordering::SeqCst);
    let kind = KINDS[n % KINDS.len()];
    let email = format!("load.{n}@example.com");
    let body = json!({
        "kind": kind,
        "jurisdiction": JURISDICTIONS[n % JURISDICTIONS.len()],
        "subject": { "name": "压测用户", "email": email },
        "details": details_for(kind),
    });
    let url = format!("{base}/api/v1/requests");
    match call(load.client.post(url).json(&body)).await {
        Answer::Got(StatusCode::CREATED, body) => {
            let reference = body["reference"].as_str().unwrap().to_owned();
            // One in five is left unverified, as some people never come back.
            if n % 5 != 4 {
                load.to_verify.lock().unwrap().push_back(reference.clone());
            } else {
                load.tally.lock().unwrap().not_verified += 1;
            }
            load.tally.lock().unwrap().accepted.push((reference, email));
        }
        Answer::Got(status, body) => load.unexpected("submission", status, &body),
        Answer::Unsent => load.tally.lock().unwrap().unsent.push(email),
        Answer::Lost => load.tally.lock().unwrap().lost.push(email),
    }
}

async fn submitter(load: Arc<Load>) {
    while !load.stopped() {
        submit_one(&load, &load.base()).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Reads each new message the sink took and keeps the codes, by the reference in the subject.
async fn mail_reader(load: Arc<Load>, sink: SmtpSink, done: Arc<AtomicBool>) {
    let mut seen = 0;
    while !done.load(Ordering::SeqCst) {
        for m in sink.messages_since(seen) {
            seen += 1;
            let code = m.part("text/plain").as_deref().and_then(code_in);
            if let (Some(code), Some(reference)) = (code, reference_in(&m.subject())) {
                load.codes.lock().unwrap().insert(reference, code);
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The `DSR-XXXX-XXXX` reference in a subject line.
fn reference_in(subject: &str) -> Option<String> {
    let start = subject.find("DSR-")?;
    Some(
        subject[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect(),
    )
}

async fn verifier(load: Arc<Load>) {
    while !load.stopped() {
        let next = load.to_verify.lock().unwrap().pop_front();
        let Some(reference) = next else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        // The code comes through the outbox: from whichever worker claimed it, or, if that was
        // the killed process, from another once its lease ran out.
        let waiting = Instant::now();
        let code = loop {
            if let Some(code) = load.codes.lock().unwrap().get(&reference).cloned() {
                break Some(code);
            }
            if load.stopped() || waiting.elapsed() > Duration::from_secs(LEASE_SECONDS + 4) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        };
        let Some(code) = code else {
            load.tally.lock().unwrap().not_verified += 1;
            continue;
        };
        let url = format!("{}/api/v1/requests/{reference}/verification", load.base());
        match call(load.client.post(url).json(&json!({ "code": code }))).await {
            Answer::Got(StatusCode::OK, body) => {
                let verified = {
                    let mut tally = load.tally.lock().unwrap();
                    tally.verified += 1;
                    tally.verified
                };
                // Now and then the subject changes their mind, racing the reviewers.
                if verified % 8 == 0 {
                    let session = body["session"]["token"].as_str().unwrap_or_default();
                    withdraw(&load, &reference, session).await;
                }
            }
            Answer::Got(status, body) => load.unexpected("verification", status, &body),
            Answer::Unsent | Answer::Lost => {
                let mut tally = load.tally.lock().unwrap();
                tally.calls_failed += 1;
                tally.not_verified += 1;
            }
        }
    }
}

/// The subject withdraws their request in their session.
async fn withdraw(load: &Load, reference: &str, session: &str) {
    let url = format!("{}/api/v1/requests/{reference}/withdraw", load.base());
    let answer = call(load.client.post(url).bearer_auth(session).json(&json!({}))).await;
    match answer {
        Answer::Got(StatusCode::OK, _) => load.tally.lock().unwrap().withdrawn += 1,
        // A reviewer got there first (rejected it, or fulfilment began).
        Answer::Got(StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY, _) => {}
        Answer::Got(status, body) => load.unexpected("withdrawal", status, &body),
        Answer::Unsent | Answer::Lost => load.tally.lock().unwrap().calls_failed += 1,
    }
}

/// What a reviewer does with a request from the queue, if anything: only commands the core
/// lists as allowed for it.
fn choose(item: &Value, turn: usize) -> Option<Value> {
    let allowed: Vec<&str> = item["allowed_actions"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let status = item["status"]["code"].as_str()?;
    let code_proved = item["verified_methods"]
        .as_array()?
        .iter()
        .any(|m| m == "email_code");
    match status {
        // A strong-identity kind proved by code waits for a staff check.
        "awaiting_verification" if code_proved && allowed.contains(&"verify") => Some(
            json!({ "command": "verify", "method": "staff_check", "evidence": "核对了身份证原件" }),
        ),
        "in_review" => match turn % 10 {
            0 if allowed.contains(&"reject") => Some(
                json!({ "command": "reject", "reason": "manifestly_unfounded", "explanation": "压力测试" }),
            ),
            1 if allowed.contains(&"request_info") => {
                Some(json!({ "command": "request_info", "question": "请补充订单号" }))
            }
            2 => Some(json!({ "command": "note", "text": "已查看" })),
            _ if allowed.contains(&"approve") => Some(json!({ "command": "approve" })),
            _ => None,
        },
        "in_progress" if allowed.contains(&"complete") => {
            Some(json!({ "command": "complete", "summary": "已办理" }))
        }
        _ => None,
    }
}

async fn reviewer(load: Arc<Load>, offset: usize) {
    let statuses = ["in_review", "in_progress", "awaiting_verification"];
    let mut turn = offset;
    while !load.stopped() {
        turn += 1;
        let status = statuses[turn % statuses.len()];
        let url = format!(
            "{}/api/v1/staff/requests?status={status}&limit=10&sort=-received",
            load.base()
        );
        let list = match call(load.client.get(url).bearer_auth(&load.token)).await {
            Answer::Got(StatusCode::OK, list) => list,
            Answer::Got(status, body) => {
                load.unexpected("staff list", status, &body);
                continue;
            }
            Answer::Unsent | Answer::Lost => {
                load.tally.lock().unwrap().calls_failed += 1;
                continue;
            }
        };
        let items = list["items"].as_array().cloned().unwrap_or_default();
        for (k, item) in items.iter().take(4).enumerate() {
            let Some(command) = choose(item, turn + k) else {
                continue;
            };
            let id = item["id"].as_str().unwrap();
            let url = format!("{}/api/v1/staff/requests/{id}/actions", load.base());
            let answer = call(
                load.client
                    .post(url)
                    .bearer_auth(&load.token)
                    .json(&command),
            )
            .await;
            match answer {
                Answer::Got(StatusCode::OK, _) => load.tally.lock().unwrap().staff_done += 1,
                // Another reviewer, the subject or the worker changed it since the list.
                Answer::Got(StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY, _) => {
                    load.tally.lock().unwrap().staff_raced += 1
                }
                Answer::Got(status, body) => load.unexpected("staff action", status, &body),
                Answer::Unsent | Answer::Lost => load.tally.lock().unwrap().calls_failed += 1,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Outbox rows not yet settled (pending, including retries, or claimed).
fn unsettled(db: &Database) -> i64 {
    outbox::table
        .filter(outbox::status.eq_any([PENDING, PROCESSING]))
        .count()
        .get_result(&mut *db.conn().unwrap())
        .unwrap()
}

/// The transitions the core makes: for each command, the statuses it may leave from and those
/// it may go to. Mirrors `domain::transition::apply` (a command it does not know fails).
fn transition_allowed(command: &str, from: Status, to: Status) -> bool {
    use Status::*;
    let open = [AwaitingVerification, InReview, AwaitingSubject, InProgress];
    let (sources, targets): (&[Status], &[Status]) = match command {
        "verify" => (
            &[AwaitingVerification],
            &[AwaitingVerification, InReview, InProgress],
        ),
        "verification_failed" => (&[AwaitingVerification], &[AwaitingVerification]),
        "expire" => (&[AwaitingVerification], &[Expired]),
        "request_info" => (&[InReview], &[AwaitingSubject]),
        "subject_reply" => (&[AwaitingSubject], &[InReview]),
        "approve" => (&[InReview], &[InReview, InProgress]),
        "reject" => (
            &[AwaitingVerification, InReview, AwaitingSubject],
            &[Rejected],
        ),
        "start_fulfilment" => (&[InProgress], &[InProgress]),
        "complete" => (&[InProgress], &[Completed]),
        "withdraw" => (&open, &[Withdrawn]),
        // Change nothing but their own fields; notes are allowed in every state.
        "assign" | "extend" => return open.contains(&from) && from == to,
        "note" => return from == to,
        _ => return false,
    };
    sources.contains(&from) && targets.contains(&to)
}

/// Checks one request against what the core allows; the reasons it fails.
fn request_problems(
    state: &rightsflow::domain::RequestState,
    events: &[(i64, Event)],
) -> Vec<String> {
    let mut problems = vec![];
    if let Err(e) = state.check_invariants() {
        problems.push(e);
    }
    if state.version != events.len() as i64 {
        problems.push(format!(
            "version {} but {} events",
            state.version,
            events.len()
        ));
    }
    for (i, (seq, event)) in events.iter().enumerate() {
        if *seq != i as i64 + 1 {
            problems.push(format!("event {i} has seq {seq}"));
        }
        match (i, event.from) {
            (0, None) if event.command == "submit" && event.to == Status::AwaitingVerification => {}
            (0, _) => problems.push(format!(
                "first event is {} from {:?}",
                event.command, event.from
            )),
            (_, Some(from)) => {
                let before = events[i - 1].1.to;
                if from != before {
                    problems.push(format!(
                        "event {seq} ({}) leaves {from}, the one before ended in {before}",
                        event.command
                    ));
                }
                if before.is_final() && event.command != "note" {
                    problems.push(format!("{} after the end ({before})", event.command));
                }
                if !transition_allowed(&event.command, from, event.to) {
                    problems.push(format!("{} from {from} to {}", event.command, event.to));
                }
            }
            (_, None) => problems.push(format!("event {seq} ({}) has no from", event.command)),
        }
    }
    if events
        .iter()
        .filter(|(_, e)| e.command == "start_fulfilment")
        .count()
        > 1
    {
        problems.push("fulfilment started twice".into());
    }
    if events.iter().filter(|(_, e)| e.command == "extend").count() > 1 {
        problems.push("extended twice".into());
    }
    match events.last() {
        Some((_, last)) if last.to == state.status => {}
        last => problems.push(format!(
            "status {} but the last event ends in {:?}",
            state.status,
            last.map(|(_, e)| e.to)
        )),
    }
    problems
}

/// A message as a person reads it: to whom, about what, what it says.
fn content(m: &Received) -> (Vec<String>, String, String) {
    (
        m.to.clone(),
        m.subject(),
        m.part("text/plain").unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_under_load_lose_nothing() {
    let Some((database_url, _database)) = scratch_postgres() else {
        return skip("crash_safety");
    };
    let started = Instant::now();
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("rightsflow.toml");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(
        &config_path,
        config_text(&data_dir, &database_url, &sink.url()),
    )
    .unwrap();
    // Declared after the database guard, so dropped (processes killed) before it.
    let mut cluster = Cluster {
        config: config_path.clone(),
        logs: dir.path().to_path_buf(),
        ports: (0..INSTANCES).map(|_| free_port()).collect(),
        children: (0..INSTANCES).map(|_| None).collect(),
    };
    let client = Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    // The first instance migrates the fresh database; then the other two join it.
    cluster.start(0);
    cluster.ready(0, &client).await;
    for i in 1..INSTANCES {
        cluster.start(i);
    }
    for i in 1..INSTANCES {
        cluster.ready(i, &client).await;
    }
    let config = Config::load_with(Some(&config_path), |_| None).unwrap();
    let db = rightsflow::startup::open_database(&config).unwrap();

    let login = client
        .post(format!(
            "http://127.0.0.1:{}/api/v1/staff/login",
            cluster.ports[0]
        ))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let load = Arc::new(Load {
        client: client.clone(),
        ports: cluster.ports.clone(),
        next: AtomicUsize::new(0),
        submitted: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        token,
        tally: Mutex::default(),
        to_verify: Mutex::default(),
        codes: Mutex::default(),
    });
    let reading = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(mail_reader(load.clone(), sink.clone(), reading.clone()));
    let load_started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..4 {
        tasks.push(tokio::spawn(submitter(load.clone())));
    }
    for _ in 0..3 {
        tasks.push(tokio::spawn(verifier(load.clone())));
    }
    for offset in 0..2 {
        tasks.push(tokio::spawn(reviewer(load.clone(), offset)));
    }

    tokio::time::sleep(KILL_AT).await;
    // A burst of submissions to the victim, so that some are in flight when it dies: their
    // answers are lost, and each may or may not have been stored.
    let victim_base = format!("http://127.0.0.1:{}", cluster.ports[VICTIM]);
    let burst: Vec<_> = (0..BURST)
        .map(|i| {
            let (load, base) = (load.clone(), victim_base.clone());
            tokio::spawn(async move {
                // Spread out, so the kill finds them at different points of their work.
                tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
                submit_one(&load, &base).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5 * BURST as u64 / 2)).await;
    let victim = cluster.pid(VICTIM);
    cluster.kill(VICTIM);
    // What the dead process held when it died: exactly the rows whose claim names its process
    // id (a worker's id is host/pid/uuid), still in processing. Only these may have been sent
    // without being marked done, so only these may reach the sink twice.
    let held: HashSet<String> = outbox::table
        .filter(outbox::status.eq(PROCESSING))
        .filter(outbox::claimed_by.like(format!("%/{victim}/%")))
        .select(outbox::id)
        .load(&mut *db.conn().unwrap())
        .unwrap()
        .into_iter()
        .collect();
    let killed_after = load_started.elapsed();
    for task in burst {
        task.await.unwrap();
    }
    tokio::time::sleep(RESTART_AT.saturating_sub(load_started.elapsed())).await;
    cluster.start(VICTIM);
    let restart = cluster.ready(VICTIM, &client).await;
    tokio::time::sleep(LOAD.saturating_sub(load_started.elapsed())).await;
    load.stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let load_time = load_started.elapsed();

    // Everything queued goes out (the dead process's claims after their lease).
    let drain_started = Instant::now();
    while unsettled(&db) > 0 {
        assert!(
            drain_started.elapsed() < Duration::from_secs(40),
            "the outbox did not drain: {} rows still pending or claimed",
            unsettled(&db)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain = drain_started.elapsed();
    reading.store(true, Ordering::SeqCst);
    reader.await.unwrap();
    drop(client);
    let clean_stops = cluster.stop_all();
    let tally = std::mem::take(&mut *load.tally.lock().unwrap());

    assert!(
        tally.unexpected.is_empty(),
        "answers no client should get: {:?}",
        tally.unexpected
    );
    assert!(
        tally.accepted.len() >= 50 && tally.verified >= 20 && tally.staff_done >= 20,
        "too little load to say anything: {} accepted, {} verified, {} staff actions",
        tally.accepted.len(),
        tally.verified,
        tally.staff_done
    );

    // 1. Submissions: each accepted one exactly once, a lost one at most once, no others.
    let mut conn = db.conn().unwrap();
    let ids: Vec<String> = requests_table::table
        .select(requests_table::id)
        .load(&mut *conn)
        .unwrap();
    let mut by_reference: HashMap<String, usize> = HashMap::new();
    let mut by_email: HashMap<String, usize> = HashMap::new();
    let mut broken = vec![];
    for id in &ids {
        let request = requests::find_by_id(&mut conn, id).unwrap();
        *by_reference
            .entry(request.reference.to_string())
            .or_default() += 1;
        let email = request
            .contact
            .email
            .as_ref()
            .map(|e| e.as_str().to_owned());
        *by_email.entry(email.unwrap_or_default()).or_default() += 1;
        // 4. The request as the core allows it.
        let events = requests::events(&mut conn, id).unwrap();
        let problems = request_problems(&request.state, &events);
        if !problems.is_empty() {
            broken.push((request.reference.to_string(), problems));
        }
    }
    let accepted_refs: HashSet<&str> = tally.accepted.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        accepted_refs.len(),
        tally.accepted.len(),
        "two accepted submissions were given one reference"
    );
    for (reference, email) in &tally.accepted {
        assert_eq!(
            by_reference.get(reference),
            Some(&1),
            "accepted {reference}"
        );
        assert_eq!(
            by_email.get(email),
            Some(&1),
            "the request accepted as {reference}"
        );
    }
    let lost_stored = tally
        .lost
        .iter()
        .map(|email| {
            let n = by_email.get(email).copied().unwrap_or(0);
            assert!(
                n <= 1,
                "a submission whose answer was lost is stored {n} times"
            );
            n
        })
        .sum::<usize>();
    for email in &tally.unsent {
        assert!(
            !by_email.contains_key(email),
            "a submission whose connection was refused is stored"
        );
    }
    assert_eq!(
        ids.len(),
        tally.accepted.len() + lost_stored,
        "requests no submission accounts for"
    );

    // 4 (checked above, while reading): no request in a state the core forbids.
    assert!(
        broken.is_empty(),
        "requests the core would not have: {broken:?}"
    );

    // 3. Mail: the email rows against what the sink took.
    let rows: Vec<OutboxRow> = outbox::table
        .filter(outbox::kind.eq("email"))
        .select(OutboxRow::as_select())
        .load(&mut *conn)
        .unwrap();
    let notify_open: i64 = outbox::table
        .filter(outbox::kind.eq("notify"))
        .filter(outbox::status.ne(DONE))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    // Any other work the queue parked (fulfilment, webhooks) must say why, for staff to act.
    let parked: Vec<(String, String, Option<String>)> = outbox::table
        .filter(outbox::status.eq(FAILED))
        .select((outbox::id, outbox::kind, outbox::last_error))
        .load(&mut *conn)
        .unwrap();
    drop(conn);
    for (id, kind, error) in &parked {
        assert!(error.is_some(), "{kind} row {id} parked without a reason");
    }
    let received = sink.messages();
    let mut copies: HashMap<String, Vec<&Received>> = HashMap::new();
    for m in &received {
        let message_id = m.message_id();
        let row = message_id
            .strip_prefix('<')
            .and_then(|id| id.strip_suffix(&format!("@{MAIL_DOMAIN}>")))
            .unwrap_or_else(|| {
                panic!("a message with a Message-ID not from the outbox: {message_id}")
            });
        copies.entry(row.to_owned()).or_default().push(m);
    }
    let row_status: HashMap<&str, &OutboxRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    for id in copies.keys() {
        let row = row_status
            .get(id.as_str())
            .unwrap_or_else(|| panic!("the sink got {id}, which is no email row"));
        assert_eq!(
            row.status, DONE,
            "{id} reached the sink but is recorded {}",
            row.status
        );
    }
    let mut failed = 0;
    for row in &rows {
        match row.status.as_str() {
            DONE => assert!(
                copies.contains_key(&row.id),
                "{} is done but never reached the sink",
                row.id
            ),
            FAILED => {
                assert!(
                    row.last_error.is_some(),
                    "{} failed without a reason",
                    row.id
                );
                failed += 1;
            }
            other => panic!("{} is still {other} after the drain", row.id),
        }
    }
    assert_eq!(notify_open, 0, "notifications not turned into deliveries");
    let mut redelivered = 0;
    for (id, sent) in &copies {
        if sent.len() > 1 {
            redelivered += sent.len() - 1;
            assert!(
                held.contains(id),
                "{id} was sent {} times but the killed process did not hold it: a live worker's lease ran out mid-send, or a row was sent twice",
                sent.len()
            );
            assert!(
                sent.iter().all(|m| content(m) == content(sent[0])),
                "the copies of {id} differ"
            );
        }
    }
    // One message, one Message-ID: the same words to the same person never went out as two
    // different rows.
    let mut ids_per_content: HashMap<(Vec<String>, String, String), HashSet<&str>> = HashMap::new();
    for (id, sent) in &copies {
        ids_per_content
            .entry(content(sent[0]))
            .or_default()
            .insert(id.as_str());
    }
    for (content, ids) in &ids_per_content {
        assert_eq!(ids.len(), 1, "\"{}\" went out under {ids:?}", content.1);
    }

    // 2. Every audit chain (and the staff audit log) verifies.
    let mut verify = Command::new(env!("CARGO_BIN_EXE_rightsflow"));
    for (name, _) in std::env::vars() {
        if name.starts_with("RIGHTSFLOW_") {
            verify.env_remove(name);
        }
    }
    let out = verify
        .arg("--config")
        .arg(&config_path)
        .args(["audit", "verify"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "audit verify: {said}");

    println!(
        "crash safety: {} submissions accepted, {} answers lost ({} of them stored), {} refused while down; {} verified, {} left unverified, {} withdrawn; {} staff actions, {} lost to a race; {} calls without answer",
        tally.accepted.len(),
        tally.lost.len(),
        lost_stored,
        tally.unsent.len(),
        tally.verified,
        tally.not_verified,
        tally.withdrawn,
        tally.staff_done,
        tally.staff_raced,
        tally.calls_failed,
    );
    println!(
        "crash safety: instance {VICTIM} killed at {:.1} s holding {} outbox rows, ready again {:.1} s after its restart; load {:.1} s, drain {:.1} s; {} email rows, {} failed ({} outbox rows of any kind), {} messages received, {} resent with the same Message-ID; {clean_stops}/{INSTANCES} stopped cleanly; {}",
        killed_after.as_secs_f64(),
        held.len(),
        restart.as_secs_f64(),
        load_time.as_secs_f64(),
        drain.as_secs_f64(),
        rows.len(),
        failed,
        parked.len(),
        received.len(),
        redelivered,
        said.lines().next().unwrap_or_default(),
    );
    println!(
        "crash safety: {} requests checked, whole test {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
}

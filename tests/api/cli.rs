//! The `rightsflow` binary's subcommands, run as a user would run them.

use std::process::Command;

fn rightsflow(args: &[&str], data_dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rightsflow"))
        .args(args)
        .env("RIGHTSFLOW_DATA_DIR", data_dir)
        .env_remove("RIGHTSFLOW_DATABASE_URL")
        .env_remove("RIGHTSFLOW_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in:\n{text}"))
}

#[test]
fn deadline_counts_fifteen_chinese_working_days_around_the_2026_holidays() {
    let dir = tempfile::tempdir().unwrap();
    // National Day: 1–7 October off, Saturday 10 October worked.
    let (ok, out, err) = rightsflow(
        &[
            "deadline",
            "--jurisdiction",
            "cn",
            "--from",
            "2026-09-28T10:00:00+08:00",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(
        line(&out, "due:"),
        "due: 2026-10-23 (ends 2026-10-23T23:59:59+08:00)"
    );
    assert!(line(&out, "extended:").contains("none"));
    // Spring Festival: Saturday 14 February and Saturday 28 February worked, 15–23 February off.
    let (_, out, _) = rightsflow(
        &["deadline", "--from", "2026-02-09T10:00:00+08:00"],
        dir.path(),
    );
    assert_eq!(
        line(&out, "due:"),
        "due: 2026-03-06 (ends 2026-03-06T23:59:59+08:00)"
    );
    // Late on 28 September in UTC is already 29 September in Shanghai.
    let (_, out, _) = rightsflow(&["deadline", "--from", "2026-09-28T20:00:00Z"], dir.path());
    assert!(
        line(&out, "from:").contains("local day 2026-09-29"),
        "{out}"
    );
}

#[test]
fn deadline_warns_when_a_year_has_no_calendar_and_uses_one_an_operator_adds() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "deadline",
        "--jurisdiction",
        "cn",
        "--from",
        "2026-12-20T10:00:00+08:00",
    ];
    let (_, out, _) = rightsflow(&args, dir.path());
    assert!(line(&out, "warning:").contains("2027"), "{out}");
    let weekends_only = line(&out, "due:").to_owned();

    // An operator adds 2027 without a rebuild: 1 January 2027 off.
    std::fs::create_dir_all(dir.path().join("calendars")).unwrap();
    std::fs::write(
        dir.path().join("calendars/cn-2027.toml"),
        "region = \"cn\"\nyear = 2027\nsource = \"test\"\ndays_off = [\"2027-01-01\"]\nmake_up_workdays = []\n",
    )
    .unwrap();
    let (ok, out, err) = rightsflow(&args, dir.path());
    assert!(ok, "{err}");
    assert!(!out.contains("warning:"), "{out}");
    assert_ne!(
        line(&out, "due:"),
        weekends_only,
        "the added holiday moved the due date"
    );
}

#[test]
fn deadline_for_eu_and_california_shows_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out, _) = rightsflow(
        &[
            "deadline",
            "--jurisdiction",
            "eu",
            "--from",
            "2026-01-31T12:00:00Z",
        ],
        dir.path(),
    );
    assert!(line(&out, "due:").starts_with("due: 2026-03-02 "), "{out}");
    assert!(
        line(&out, "extended:").starts_with("extended: 2026-04-30 "),
        "{out}"
    );
    let (_, out, _) = rightsflow(
        &[
            "deadline",
            "--jurisdiction",
            "us-ca",
            "--from",
            "2026-03-01T18:00:00Z",
            "--json",
        ],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["due"]["date"].as_str(), v["extended"]["date"].as_str()),
        (Some("2026-04-15"), Some("2026-05-30"))
    );
    let (ok, _, err) = rightsflow(&["deadline", "--jurisdiction", "mars"], dir.path());
    assert!(!ok && err.contains("jurisdiction"), "{err}");
}

#[test]
fn staff_add_and_migrate_work_on_a_fresh_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = rightsflow(&["migrate"], dir.path());
    assert!(ok, "{err}");
    assert!(out.contains("sqlite"));
    let (ok, out, err) = rightsflow(
        &[
            "staff",
            "add",
            "--email",
            "dpo@example.com",
            "--role",
            "reviewer",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("added dpo@example.com as reviewer"));
    assert!(line(&out, "password:").len() > "password: ".len() + 12);
    let (ok, _, err) = rightsflow(
        &[
            "staff",
            "add",
            "--email",
            "dpo@example.com",
            "--role",
            "reviewer",
        ],
        dir.path(),
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, out, err) = rightsflow(
        &[
            "staff",
            "add",
            "--email",
            "en@example.com",
            "--role",
            "agent",
            "--locale",
            "en",
        ],
        dir.path(),
    );
    assert!(ok && out.contains("added en@example.com as agent"), "{err}");
    let (ok, _, err) = rightsflow(
        &[
            "staff",
            "add",
            "--email",
            "y@example.com",
            "--role",
            "agent",
            "--locale",
            "fr",
        ],
        dir.path(),
    );
    assert!(!ok && err.contains("--locale"), "{err}");
    let (ok, _, err) = rightsflow(
        &["staff", "add", "--email", "x@example.com", "--role", "boss"],
        dir.path(),
    );
    assert!(!ok && err.contains("--role"), "{err}");
}

/// Starts `rightsflow` with no arguments (so `serve`), JSON logs on stderr, on a free port.
/// Returns the child and the port it reports.
fn start_server(
    data_dir: &std::path::Path,
) -> (std::process::Child, u16, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rightsflow"))
        .env("RIGHTSFLOW_DATA_DIR", data_dir)
        .env("RIGHTSFLOW_LISTEN", "127.0.0.1:0")
        .env("RIGHTSFLOW_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env_remove("RIGHTSFLOW_DATABASE_URL")
        .env_remove("RIGHTSFLOW_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(1)) else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["message"] == "listening" {
            return (child, event["port"].as_u64().unwrap() as u16, rx);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not report its port");
}

#[tokio::test]
async fn serve_is_the_default_and_its_logs_hold_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, logs) = start_server(dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let body = serde_json::json!({
        "kind": "correction",
        "subject": { "name": "王秀英", "email": "wang.xiuying@example.cn", "phone": "+86 139 1234 5678" },
        "details": { "fields": [{ "field": "住址", "corrected_value": "北京市朝阳区建国路88号" }] },
    });
    let res = client
        .post(format!("{base}/api/v1/requests"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.unwrap();
    let reference = created["reference"].as_str().unwrap().to_owned();
    // The code arrives in the development mailbox; entering it opens a session.
    let code = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mails =
                rightsflow::notifications::mail::DevMail::read_all(&dir.path().join("mail"));
            if let Some(code) = mails.iter().find_map(|m| crate::helpers::code_in(&m.text)) {
                break code;
            }
            assert!(std::time::Instant::now() < deadline, "no code arrived");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let verified: serde_json::Value = client
        .post(format!("{base}/api/v1/requests/{reference}/verification"))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = verified["session"]["token"].as_str().unwrap().to_owned();
    let url = format!("{base}/api/v1/requests/{reference}?email=wang.xiuying@example.cn");
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Staff take it through: an officer added at the command line signs in, opens it, notes
    // what was checked (with the subject's name and address in the note), approves, completes.
    let (ok, added, err) = rightsflow(
        &[
            "staff",
            "add",
            "--email",
            "officer@example.org",
            "--role",
            "admin",
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let staff_password = line(&added, "password:")
        .trim_start_matches("password:")
        .trim()
        .to_owned();
    let signed_in: serde_json::Value = client
        .post(format!("{base}/api/v1/staff/login"))
        .json(&serde_json::json!({ "email": "officer@example.org", "password": staff_password }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let staff = signed_in["token"].as_str().unwrap().to_owned();
    let queue: serde_json::Value = client
        .get(format!("{base}/api/v1/staff/requests"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = queue["items"][0]["id"].as_str().unwrap().to_owned();
    let opened = client
        .get(format!("{base}/api/v1/staff/requests/{id}"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    for command in [
        serde_json::json!({ "command": "note", "text": "王秀英 本人来电确认，住址为北京市朝阳区建国路88号" }),
        serde_json::json!({ "command": "approve" }),
        serde_json::json!({ "command": "complete", "summary": "已为王秀英更正住址" }),
    ] {
        let res = client
            .post(format!("{base}/api/v1/staff/requests/{id}/actions"))
            .bearer_auth(&staff)
            .json(&command)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{command}");
    }
    let bad = serde_json::json!({ "kind": "access", "subject": { "email": "wang.xiuying@" } });
    assert_eq!(
        client
            .post(format!("{base}/api/v1/requests"))
            .json(&bad)
            .send()
            .await
            .unwrap()
            .status(),
        422
    );

    child.kill().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let _ = child.wait();
    let lines: Vec<String> = logs.try_iter().collect();
    let all = lines.join("\n");
    for secret in [
        "王秀英",
        "wang.xiuying",
        "xiuying@",
        "1391234",
        "13912345678",
        "朝阳区",
        &token,
        &code,
        &staff,
        &staff_password,
        "officer@example.org",
    ] {
        assert!(!all.contains(secret), "the log leaks {secret:?}:\n{all}");
    }
    // What the log does carry: the reference and request ids, the route template.
    assert!(all.contains(&reference), "{all}");
    assert!(
        all.contains("/api/v1/requests/{reference}") && all.contains("request_id"),
        "{all}"
    );
    // The first admin's password went to stdout, once, not into the log.
    let password = line(&out, "  password:")
        .trim_start_matches("  password:")
        .trim()
        .to_owned();
    assert!(password.len() >= 20 && !all.contains(&password));
}

/// The console benchmark runs end to end on a small table and prints its figures (the real
/// run uses 1,000,000 requests; see docs/PERFORMANCE.md).
#[test]
fn the_console_benchmark_seeds_signs_in_and_prints_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    console_benchmark_on(db.to_str().unwrap(), &dir);
}

/// The same on PostgreSQL, whose compaction after seeding (VACUUM) runs outside a transaction.
#[test]
fn the_console_benchmark_runs_on_postgres() {
    let Some((url, _database)) = crate::helpers::scratch_postgres() else {
        return crate::helpers::skip("console benchmark on postgres");
    };
    console_benchmark_on(&url, &tempfile::tempdir().unwrap());
}

fn console_benchmark_on(database_url: &str, dir: &tempfile::TempDir) {
    let json = dir.path().join("figures.json");
    let (ok, out, err) = rightsflow(
        &[
            "bench",
            "console",
            "--requests",
            "300",
            "--samples",
            "10",
            "--database-url",
            database_url,
            "--json",
            json.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("300 new rows"), "{err}");
    for page in [
        "GET /healthz (floor)",
        "GET /console/queue",
        "GET /console/dashboard, first view",
        "GET /console/dashboard (90 days)",
    ] {
        assert!(line(&out, page).split_whitespace().count() >= 5, "{out}");
    }
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(figures["requests"], 300);
    // The floor, the queue, the dashboard's first view and the dashboard.
    assert_eq!(figures["figures"].as_array().unwrap().len(), 4);
    assert!(figures["figures"][1]["p99_ms"].as_f64().unwrap() > 0.0);
}

/// The clock-sweep benchmark seeds open requests, finds those needing a reminder (no more than
/// the plain range read returns), and after they are recorded finds none again.
#[test]
fn the_sweep_benchmark_finds_the_reminders_then_none() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("figures.json");
    let (ok, out, err) = rightsflow(
        &[
            "bench",
            "sweep",
            "--requests",
            "3000",
            "--samples",
            "2",
            "--json",
            json.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{out}\n{err}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let found = |i: usize| figures["figures"][i]["found"].as_u64().unwrap();
    // About 5% of 3,000 are due within three working days or overdue.
    assert!(found(1) > 20, "{out}");
    assert!(found(1) <= found(0), "{out}");
    assert_eq!(found(2), 0, "{out}");
}

/// The outbox benchmark delivers every row to its SMTP sink once (it fails otherwise) and
/// prints both rates.
#[test]
fn the_outbox_benchmark_delivers_every_row_once_and_prints_its_rates() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("figures.json");
    let (ok, out, err) = rightsflow(
        &[
            "bench",
            "outbox",
            "--messages",
            "300",
            "--json",
            json.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("every row arrived once"), "{out}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(figures["messages"], 300);
    assert!(figures["worker_per_s"].as_f64().unwrap() > 0.0);
    assert!(figures["ceiling_per_s"].as_f64().unwrap() > 0.0);
}

/// The intake benchmark runs both servers as child processes on a fresh database, drives them,
/// and prints and writes its figures (the real run: 64 clients for 10 s; docs/PERFORMANCE.md).
#[test]
fn the_intake_benchmark_drives_the_service_and_its_ceiling_and_prints_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("intake.db");
    let json = dir.path().join("intake.json");
    let (ok, out, err) = rightsflow(
        &[
            "bench",
            "intake",
            "--seconds",
            "1",
            "--concurrency",
            "4",
            "--database-url",
            db.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{out}\n{err}");
    for row in [
        "POST /api/v1/requests (the service)",
        "ceiling: one insert of the body",
    ] {
        assert!(line(&out, row).split_whitespace().count() >= 5, "{out}");
    }
    assert!(out.contains("service / ceiling: "), "{out}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for server in ["service", "ceiling"] {
        assert!(figures[server]["ok"].as_u64().unwrap() > 0, "{figures}");
        assert_eq!(figures[server]["errors"], 0, "{figures}");
        assert!(figures[server]["p99_ms"].as_f64().unwrap() > 0.0);
    }
    assert!(figures["startup_ms"].as_f64().unwrap() > 0.0);
    assert!(figures["rss_idle_mib"].as_f64().unwrap() > 1.0);
    // What was answered was stored: every counted submission and ceiling insert is in the
    // database (more, with the warm-up's).
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    for (table, server) in [("requests", "service"), ("bench_ceiling", "ceiling")] {
        let stored = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<Count>(&mut c)
            .unwrap()
            .n;
        assert!(
            stored as u64 >= figures[server]["ok"].as_u64().unwrap(),
            "{table}: {stored} rows, {figures}"
        );
    }
}

#[test]
fn production_mode_refuses_to_start_without_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rightsflow"))
            .arg("serve")
            .env("RIGHTSFLOW_DATA_DIR", dir.path())
            .env("RIGHTSFLOW_PRODUCTION", "1")
            .env("RIGHTSFLOW_LISTEN", "127.0.0.1:0")
            .env_remove("RIGHTSFLOW_DATABASE_URL")
            .env_remove("RIGHTSFLOW_CONFIG")
            .env_remove("RIGHTSFLOW_JWT_SECRET")
            .env_remove("RIGHTSFLOW_DATA_KEY")
            .env_remove("RIGHTSFLOW_INDEX_KEY")
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = serve(&[]);
    assert!(!ok);
    assert!(
        err.contains("RIGHTSFLOW_JWT_SECRET is not set: in production mode"),
        "{err}"
    );
    let (ok, err) = serve(&[(
        "RIGHTSFLOW_JWT_SECRET",
        "a production secret of at least thirty-two bytes",
    )]);
    assert!(!ok);
    assert!(
        err.contains("RIGHTSFLOW_DATA_KEY is not set: in production mode"),
        "{err}"
    );
    let data_key = "ab".repeat(32);
    let (ok, err) = serve(&[
        (
            "RIGHTSFLOW_JWT_SECRET",
            "a production secret of at least thirty-two bytes",
        ),
        ("RIGHTSFLOW_DATA_KEY", &data_key),
    ]);
    assert!(!ok);
    assert!(
        err.contains("RIGHTSFLOW_INDEX_KEY is not set: in production mode"),
        "{err}"
    );
    // Nothing was generated in their place.
    for file in ["jwt-secret", "data-key", "index-key"] {
        assert!(!dir.path().join(file).exists(), "{file}");
    }
    // A bad value for the mode itself is refused, naming the variable.
    let (ok, err) = serve(&[("RIGHTSFLOW_PRODUCTION", "yes")]);
    assert!(!ok);
    assert!(err.contains("RIGHTSFLOW_PRODUCTION"), "{err}");
}

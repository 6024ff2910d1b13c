//! Delivery guarantees: a crash between sending and marking done, a killed worker process,
//! graceful shutdown, several workers draining one PostgreSQL queue, reminders sent once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use rightsflow::config::{Config, Secret};
use rightsflow::domain::Role;
use rightsflow::notifications::{Notifier, Shutdown, Worker};
use rightsflow::service::now;
use rightsflow::storage::{outbox, DbConnection};
use serde_json::{json, Value};

use crate::helpers::{mail_to, skip, spawn_app_with, Backend, TestApp};
use crate::smtp::SmtpSink;

fn manual_worker(config: &mut Config) {
    config.worker.in_serve = false;
    config.worker.lease_seconds = 1;
}

async fn app_with_sink(backend: Backend, tweak: fn(&mut Config)) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start().await;
    let s = sink.clone();
    let app = spawn_app_with(backend, move |c| {
        mail_to(&s, c);
        tweak(c);
    })
    .await?;
    Some((app, sink))
}

/// Runs a blocking closure with a database connection of the app.
async fn with_db<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut DbConnection) -> T + Send + 'static,
) -> T {
    let db = app.services.db().clone();
    tokio::task::spawn_blocking(move || f(&mut db.conn().unwrap()))
        .await
        .unwrap()
}

async fn a_crash_after_sending_resends_the_same_message_and_loses_none(backend: Backend) {
    let Some((app, sink)) = app_with_sink(backend, manual_worker).await else {
        return skip("delivery::crash");
    };
    // The submission queues two messages: "received" and the verification code.
    app.submit("access", "cn").await;
    let worker = std::sync::Arc::new(Worker::new(app.services.clone(), app.notifier.clone()));
    let w = worker.clone();
    // Pass 1 expands the notifications; then the worker claims the emails, sends them, and
    // "crashes" before recording that it did.
    tokio::task::spawn_blocking(move || {
        w.run_once(&Shutdown::default()).unwrap();
        let claimed = w.claim(now()).unwrap();
        assert_eq!(claimed.len(), 2);
        for row in &claimed {
            w.process(row).unwrap();
        }
    })
    .await
    .unwrap();
    let first = sink.wait_to("li.lei@example.com", 2, 5).await;
    // Restarted: nothing happens while the dead worker's lease lasts, then the rows are taken
    // again.
    let pass = |w: std::sync::Arc<Worker>| {
        tokio::task::spawn_blocking(move || w.run_once(&Shutdown::default()).unwrap())
    };
    assert_eq!(pass(worker.clone()).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(pass(worker.clone()).await.unwrap(), 2);
    let all = sink.wait_to("li.lei@example.com", 4, 5).await;
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for m in &all {
        by_id.entry(m.message_id()).or_default().push(m.subject());
    }
    assert_eq!(by_id.len(), 2, "two messages, nothing lost");
    for m in &first {
        let copies = &by_id[&m.message_id()];
        assert_eq!(copies.len(), 2, "each resent once");
        assert!(
            copies.iter().all(|s| s == &m.subject()),
            "the resend is the same message"
        );
    }
    let rows = with_db(&app, |c| {
        let id = rows_request(c);
        outbox::for_request(c, &id).unwrap()
    })
    .await;
    let emails: Vec<_> = rows.iter().filter(|r| r.kind == outbox::EMAIL).collect();
    assert_eq!(emails.len(), 2);
    assert!(
        emails
            .iter()
            .all(|e| e.status == outbox::DONE && e.attempts == 2),
        "{emails:?}"
    );
    assert_eq!(
        pass(worker.clone()).await.unwrap(),
        0,
        "and then nothing is left"
    );
}

fn rows_request(c: &mut DbConnection) -> String {
    use diesel::prelude::*;
    use rightsflow::storage::schema::requests::dsl::*;
    requests.select(id).first::<String>(c).unwrap()
}

#[tokio::test]
async fn a_crash_after_sending_resends_the_same_message_sqlite() {
    a_crash_after_sending_resends_the_same_message_and_loses_none(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_crash_after_sending_resends_the_same_message_postgres() {
    a_crash_after_sending_resends_the_same_message_and_loses_none(Backend::Postgres).await;
}

async fn shutdown_gives_back_unstarted_rows(backend: Backend) {
    let Some((app, sink)) = app_with_sink(backend, manual_worker).await else {
        return skip("delivery::shutdown");
    };
    for _ in 0..3 {
        app.submit("complaint", "cn").await;
    }
    let worker = Worker::new(app.services.clone(), app.notifier.clone());
    let stopping = Shutdown::default();
    stopping.trigger();
    let (done, pending) = tokio::task::spawn_blocking(move || {
        let done = worker.run_once(&stopping).unwrap();
        (done, worker)
    })
    .await
    .unwrap();
    assert_eq!(done, 0, "a stopping worker starts nothing");
    let rows = with_db(&app, |c| {
        use diesel::prelude::*;
        rightsflow::storage::schema::outbox::table
            .select((
                rightsflow::storage::schema::outbox::status,
                rightsflow::storage::schema::outbox::attempts,
            ))
            .load::<(String, i32)>(c)
            .unwrap()
    })
    .await;
    // Three submissions, each "received" plus a verification code.
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter().all(|(s, a)| s == outbox::PENDING && *a == 0),
        "{rows:?}"
    );
    // A worker that is not stopping then does the work.
    let n = tokio::task::spawn_blocking(move || {
        pending.run_once(&Shutdown::default()).unwrap()
            + pending.run_once(&Shutdown::default()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(n, 12, "six notifications expanded and six emails sent");
    assert_eq!(sink.messages().len(), 6);
}

#[tokio::test]
async fn shutdown_gives_back_unstarted_rows_sqlite() {
    shutdown_gives_back_unstarted_rows(Backend::Sqlite).await;
}

#[tokio::test]
async fn shutdown_gives_back_unstarted_rows_postgres() {
    shutdown_gives_back_unstarted_rows(Backend::Postgres).await;
}

/// Queues `n` ready-to-send emails with ids `bulk-<i>` (as the worker would after expansion).
async fn queue_emails(app: &TestApp, n: usize) {
    with_db(app, move |c| {
        let at = rightsflow::storage::to_db_time(Utc::now());
        for i in 0..n {
            let payload = json!({ "to": format!("u{i}@example.test"), "locale": "en", "message": "request_received",
                                  "subject": format!("Message {i}"), "text": "text", "html": "<p>html</p>" });
            let mut row = outbox::OutboxRow::new(format!("bulk-{i:05}"), None, outbox::EMAIL, payload.to_string(), Utc::now());
            row.run_after = at;
            outbox::insert(c, &row).unwrap();
        }
    })
    .await;
}

async fn done_count(app: &TestApp) -> i64 {
    with_db(app, |c| outbox::count_by_status(c, outbox::DONE).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_messages_drain_exactly_once_with_four_workers_on_postgres() {
    let Some((app, sink)) = app_with_sink(Backend::Postgres, manual_worker).await else {
        return skip("delivery::ten_thousand_messages");
    };
    const N: usize = 10_000;
    queue_emails(&app, N).await;
    // Four workers, each with its own connection pool and mail transport, as on four machines.
    let shutdown = Shutdown::default();
    let url = match app.services.db().backend() {
        rightsflow::storage::Backend::Postgres => app.database_url(),
        _ => unreachable!(),
    };
    let mut handles = Vec::new();
    for _ in 0..4 {
        // The app's data folder: its data key opens what it queued, as instances share keys.
        let mut config = Config {
            database_url: Some(url.clone()),
            data_dir: app.data_dir().to_path_buf(),
            jwt_secret: Some(Secret::new("a test secret of at least thirty-two bytes")),
            ..Config::default()
        };
        mail_to(&sink, &mut config);
        config.fulfilment.demo_platform = false;
        config.worker.batch = 50;
        config.worker.poll_millis = 20;
        let services = rightsflow::startup::services(&config).await.unwrap();
        let notifier = Notifier::from_config(&config).unwrap();
        handles.push(tokio::spawn(
            Worker::new(services, notifier).run(shutdown.clone()),
        ));
    }
    let started = std::time::Instant::now();
    while done_count(&app).await < N as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "drained only {} of {N}",
            done_count(&app).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.trigger();
    for h in handles {
        h.await.unwrap();
    }
    let got = sink.messages();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for m in &got {
        *per_id.entry(m.message_id()).or_default() += 1;
    }
    assert_eq!(
        got.len(),
        N,
        "every message sent once: {} received",
        got.len()
    );
    assert_eq!(per_id.len(), N);
    let expected: HashSet<String> = (0..N)
        .map(|i| format!("<bulk-{i:05}@weimacms.test>"))
        .collect();
    assert_eq!(per_id.keys().cloned().collect::<HashSet<_>>(), expected);
    eprintln!(
        "drained {N} messages with 4 workers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn a_killed_worker_process_loses_nothing(backend: Backend) {
    let Some((app, sink)) = app_with_sink(backend, manual_worker).await else {
        return skip("delivery::killed_worker");
    };
    const N: usize = 300;
    queue_emails(&app, N).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rightsflow"))
            .arg("worker")
            .env("RIGHTSFLOW_DATA_DIR", app.data_dir())
            .env("RIGHTSFLOW_DATABASE_URL", app.database_url())
            .env("RIGHTSFLOW_SMTP_URL", sink.url())
            .env("RIGHTSFLOW_MAIL_FROM", "WEIMACMS <privacy@weimacms.test>")
            .env(
                "RIGHTSFLOW_JWT_SECRET",
                "a test secret of at least thirty-two bytes",
            )
            .env("RIGHTSFLOW_CONFIG", app.data_dir().join("worker.toml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    std::fs::write(
        app.data_dir().join("worker.toml"),
        "[worker]\nlease_seconds = 1\nbatch = 10\npoll_millis = 20\n",
    )
    .unwrap();
    let mut first = run();
    sink.wait_for(50, 60).await;
    first.kill().unwrap(); // SIGKILL: no chance to mark anything done or give anything back
    first.wait().unwrap();
    let mut second = run();
    let started = std::time::Instant::now();
    while done_count(&app).await < N as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} of {N} done",
            done_count(&app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    let status = second.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM stops the worker cleanly: {status:?}"
    );
    let mut per_id: HashMap<String, Vec<String>> = HashMap::new();
    for m in sink.messages() {
        per_id.entry(m.message_id()).or_default().push(m.subject());
    }
    assert_eq!(per_id.len(), N, "no message lost");
    for (id, subjects) in &per_id {
        assert!(subjects.len() <= 2, "{id} sent {} times", subjects.len());
        assert!(
            subjects.iter().all(|s| s == &subjects[0]),
            "a resend of {id} differs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_process_loses_nothing_sqlite() {
    a_killed_worker_process_loses_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_process_loses_nothing_postgres() {
    a_killed_worker_process_loses_nothing(Backend::Postgres).await;
}

async fn reminders_go_once_to_the_assignee_or_the_deciders(backend: Backend) {
    let Some((app, sink)) = app_with_sink(backend, |c| c.worker.poll_millis = 50).await else {
        return skip("delivery::reminders");
    };
    let admin = app.admin_token().await;
    let (agent_id, _) = app.staff("agent", Role::Agent).await;
    let log = |days_ago: i64| {
        json!({ "kind": "access", "jurisdiction": "us-ca", "channel": "email",
                "received_at": (Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339(),
                "subject": { "email": "r@example.com" }, "details": { "categories": ["orders"] } })
    };
    let mut ids = Vec::new();
    for days in [44, 50, 44, 10] {
        let v: Value = app
            .post_json("/api/v1/staff/requests", &log(days), Some(&admin))
            .await
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    app.act_ok(
        &admin,
        &ids[2],
        json!({ "command": "assign", "assignee": agent_id }),
    )
    .await;
    let services = app.services.clone();
    let (first, second) = tokio::task::spawn_blocking(move || {
        let days = 3;
        let first =
            rightsflow::notifications::reminders::send_due_reminders(&services, days, now())
                .unwrap();
        let second =
            rightsflow::notifications::reminders::send_due_reminders(&services, days, now())
                .unwrap();
        (first, second)
    })
    .await
    .unwrap();
    // Once reminded, neither the overdue ones nor the due-soon ones are found by the next sweep.
    let services = app.services.clone();
    let still = tokio::task::spawn_blocking(move || {
        rightsflow::notifications::reminders::find_needed(&services, 3, now(), None).unwrap()
    })
    .await
    .unwrap();
    assert!(still.is_empty(), "{still:?}");
    // Due tomorrow (unassigned), overdue (unassigned), due tomorrow (assigned); the fourth is far off.
    assert_eq!((first, second), (3, 0), "each reminder once");
    let mut references = Vec::new();
    for id in &ids {
        references.push(
            app.staff_get(&admin, id).await["reference"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // The assignee hears of the request assigned to them (assignment, then the reminder).
    let agent_mail = sink.wait_to("agent@rightsflow.test", 2, 10).await;
    let agent_subjects: Vec<String> = agent_mail.iter().map(|m| m.subject()).collect();
    assert!(
        agent_subjects.iter().all(|s| s.contains(&references[2])),
        "{agent_subjects:?}"
    );
    // The deciders hear of the two unassigned ones: one due soon, one overdue.
    let admin_mail = sink.wait_to(crate::helpers::ADMIN_EMAIL, 2, 10).await;
    let mut about: Vec<String> = admin_mail
        .iter()
        .filter_map(|m| {
            references
                .iter()
                .find(|r| m.subject().contains(r.as_str()))
                .cloned()
        })
        .collect();
    about.sort();
    let mut want = vec![references[0].clone(), references[1].clone()];
    want.sort();
    assert_eq!(about, want);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.to(crate::helpers::ADMIN_EMAIL).len(),
        2,
        "no second reminder"
    );
}

#[tokio::test]
async fn reminders_go_once_sqlite() {
    reminders_go_once_to_the_assignee_or_the_deciders(Backend::Sqlite).await;
}

#[tokio::test]
async fn reminders_go_once_postgres() {
    reminders_go_once_to_the_assignee_or_the_deciders(Backend::Postgres).await;
}

/// The clock sweep finds exactly the requests the calendar says need a reminder: overdue, or
/// due within N working days counted day by day in their jurisdiction's calendar.
async fn the_sweep_finds_what_the_calendar_says(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return skip("delivery::sweep");
    };
    let admin = app.admin_token().await;
    // us-ca is due 45 days after receipt, eu one month after: receipts up to 50 days ago put
    // due dates from five days ago to 45 days on, a few every day.
    for days_ago in 0..=50 {
        for jurisdiction in ["us-ca", "eu"] {
            let body = json!({ "kind": "access", "jurisdiction": jurisdiction, "channel": "email",
                "received_at": (Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339(),
                "subject": { "email": "s@example.com" }, "details": { "categories": ["orders"] } });
            let res = app
                .post_json("/api/v1/staff/requests", &body, Some(&admin))
                .await;
            assert_eq!(res.status(), reqwest::StatusCode::CREATED);
        }
    }
    let services = app.services.clone();
    tokio::task::spawn_blocking(move || {
        use rightsflow::domain::Message;
        use rightsflow::notifications::reminders::{find_needed, working_days_left};
        let at = now();
        let filter = rightsflow::storage::requests::ListFilter {
            open_only: true,
            limit: 1000,
            ..Default::default()
        };
        let (open, _) = rightsflow::service::requests::list(&services, &filter).unwrap();
        for days in [0, 3, 10] {
            let found: std::collections::BTreeMap<String, (Message, u32)> =
                find_needed(&services, days, at, None)
                    .unwrap()
                    .into_iter()
                    .map(|n| (n.request.id, (n.message, n.left)))
                    .collect();
            let counted: std::collections::BTreeMap<String, (Message, u32)> = open
                .iter()
                .filter_map(|r| {
                    let due = r.state.due.as_ref()?;
                    if due.ends_at < at {
                        return Some((r.id.clone(), (Message::Overdue, 0)));
                    }
                    let rules = services.policy().rules(r.state.jurisdiction);
                    let today = at.with_timezone(&rules.time_zone).date_naive();
                    let left = working_days_left(
                        services.calendars(),
                        &rules.calendar_region,
                        today,
                        due.date,
                    );
                    (left <= days).then(|| (r.id.clone(), (Message::DueSoon, left)))
                })
                .collect();
            assert!(counted.len() > 5, "the data covers the case ({days} days)");
            assert_eq!(found, counted, "{days} working days");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_sweep_finds_what_the_calendar_says_sqlite() {
    the_sweep_finds_what_the_calendar_says(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_sweep_finds_what_the_calendar_says_postgres() {
    the_sweep_finds_what_the_calendar_says(Backend::Postgres).await;
}

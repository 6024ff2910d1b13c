//! Several instances on one database (issue #9): scheduled jobs run once per tick across them.

use diesel::prelude::*;
use rightsflow::storage::job_ticks;
use rightsflow::storage::schema::job_ticks as ticks;

use crate::helpers::{spawn_app_with, TestApp};
use crate::on_both_backends;

/// Eight threads claim the same tick at once: exactly one wins; the next tick is free again.
async fn one_instance_claims_each_tick(app: TestApp) {
    let at = chrono::Utc::now();
    let tick = job_ticks::tick_of(at, 60);
    let claims: Vec<_> = (0..8)
        .map(|i| {
            let s = app.services.clone();
            std::thread::spawn(move || {
                let mut c = s.db().conn().unwrap();
                job_ticks::claim(&mut c, "expiry", tick, &format!("instance-{i}"), at).unwrap()
            })
        })
        .collect();
    let won = claims
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|mine| *mine)
        .count();
    assert_eq!(won, 1, "exactly one instance runs the tick");
    let mut c = app.services.db().conn().unwrap();
    assert!(job_ticks::claim(&mut c, "expiry", tick + 1, "instance-0", at).unwrap());
    assert!(
        job_ticks::claim(&mut c, "reminders", tick, "instance-0", at).unwrap(),
        "ticks are per job"
    );
}
on_both_backends!(one_instance_claims_each_tick);

fn every_second(config: &mut rightsflow::config::Config) {
    config.expiry_sweep_seconds = 1;
}

/// Two running instances on one database, each sweeping every second: their loops claim each
/// second's tick in the shared table before sweeping (which claim wins is the test above's
/// subject), so the table holds one row per second that was swept, whoever swept it.
async fn two_instances_share_the_sweeps(app: TestApp) {
    let (url, dir) = (app.database_url(), app.data_dir().to_path_buf());
    let second = spawn_app_with(app.backend, move |c| {
        every_second(c);
        c.database_url = Some(url);
        c.data_dir = dir;
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let first_tick = job_ticks::tick_of(chrono::Utc::now(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let seconds = started.elapsed().as_secs_f64();
    let s = app.services.clone();
    let rows: Vec<(i64, String)> = tokio::task::spawn_blocking(move || {
        ticks::table
            .filter(ticks::job.eq("expiry"))
            .filter(ticks::tick.ge(first_tick))
            .select((ticks::tick, ticks::instance))
            .order(ticks::tick.asc())
            .load(&mut *s.db().conn().unwrap())
            .unwrap()
    })
    .await
    .unwrap();
    // Both instances woke about once a second each; about one claimed tick per second (the
    // first instance swept before the second started; those ticks are left out).
    assert!(rows.len() >= 3, "{rows:?}");
    assert!((rows.len() as f64) <= seconds + 2.0, "{rows:?}");
    for pair in rows.windows(2) {
        assert!(pair[0].0 < pair[1].0, "one row per tick: {rows:?}");
    }
    drop(second);
}
on_both_backends!(two_instances_share_the_sweeps, super::every_second);

/// PostgreSQL cancels a statement that runs past `database_statement_timeout_seconds`, on
/// every pooled connection; a quick one is unaffected.
#[tokio::test]
async fn postgres_cancels_a_statement_past_the_timeout() {
    let Some(app) = spawn_app_with(crate::helpers::Backend::Postgres, |c| {
        c.database_statement_timeout_seconds = 1;
    })
    .await
    else {
        return crate::helpers::skip("scale_out::statement_timeout");
    };
    let db = app.services.db().clone();
    let (slow, quick) = tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        let mut conn = db.conn().unwrap();
        let slow = conn.batch_execute("SELECT pg_sleep(3)");
        let quick = conn.batch_execute("SELECT pg_sleep(0.1)");
        (slow, quick)
    })
    .await
    .unwrap();
    let err = slow.expect_err("a 3 s statement under a 1 s timeout");
    assert!(err.to_string().contains("statement timeout"), "{err}");
    quick.unwrap();
}

/// The same database URL with another login.
fn as_login(url: &str, login: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{login}@{host}")
}

/// With `database_replica_url` the dashboard and the CSV export read the replica, and the
/// days the dashboard keeps are written to the primary. The replica here is a login whose
/// transactions are read-only on the same database: it refuses writes as a hot standby does.
#[tokio::test]
async fn reports_read_the_replica_and_keep_their_days_on_the_primary() {
    use crate::console::Console;
    use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD};
    use reqwest::StatusCode;
    let Some(primary) = spawn_app_with(crate::helpers::Backend::Postgres, |_| {}).await else {
        return crate::helpers::skip("scale_out::replica");
    };
    primary.submit("access", "cn").await;
    let url = primary.database_url();
    let login = format!("rf_replica_{}", uuid::Uuid::new_v4().simple());
    let admin_sql = |sql: String| {
        let mut c = diesel::PgConnection::establish(&url).unwrap();
        diesel::connection::SimpleConnection::batch_execute(&mut c, &sql).unwrap();
    };
    admin_sql(format!(
        "CREATE ROLE {login} LOGIN; ALTER ROLE {login} SET default_transaction_read_only = on; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {login};"
    ));
    let (shared, replica) = (url.clone(), as_login(&url, &login));
    let dir = primary.data_dir().to_path_buf();
    let reporting = spawn_app_with(crate::helpers::Backend::Postgres, move |c| {
        c.data_dir = dir;
        c.database_url = Some(shared);
        c.database_replica_url = Some(replica);
    })
    .await
    .unwrap();
    let kept_days = || {
        let mut c = diesel::PgConnection::establish(&url).unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM report_received_days")
            .get_result::<Count>(&mut c)
            .unwrap()
            .n
    };
    assert_eq!(kept_days(), 0);
    let admin = Console::sign_in(&reporting, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        admin.get("/console/dashboard").await.status(),
        StatusCode::OK
    );
    assert!(
        kept_days() > 0,
        "the dashboard kept its final days on the primary"
    );
    assert_eq!(
        admin.get("/console/queue.csv").await.status(),
        StatusCode::OK
    );
    // Take the tallies away from the replica login: the dashboard (which reads them there)
    // fails, the queue (which reads the primary) does not.
    admin_sql(format!("REVOKE SELECT ON request_tallies FROM {login};"));
    assert_ne!(
        admin.get("/console/dashboard").await.status(),
        StatusCode::OK
    );
    assert_eq!(admin.get("/console/queue").await.status(), StatusCode::OK);
    drop(reporting);
    admin_sql(format!("DROP OWNED BY {login}; DROP ROLE {login};"));
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The limits against guessing count in the database: guesses at one request's code spread
/// over two instances on one database share one budget (per process, each would have allowed
/// the full budget again).
async fn guesses_across_instances_share_one_budget(app: TestApp) {
    let (url, dir) = (app.database_url(), app.data_dir().to_path_buf());
    let second = spawn_app_with(app.backend, move |c| {
        three_guesses(c);
        c.database_url = Some(url);
        c.data_dir = dir;
    })
    .await
    .unwrap();
    let sub = app.submit("access", "cn").await;
    let path = format!("/api/v1/requests/{}/verification", sub.reference);
    let wrong = serde_json::json!({ "code": "000000" });
    let mut answers = vec![];
    for instance in [&app, &second, &app, &second] {
        let res = instance.post_json(&path, &wrong, None).await;
        answers.push(crate::helpers::error_code(res).await);
    }
    let codes: Vec<(u16, &str)> = answers
        .iter()
        .map(|(status, code)| (status.as_u16(), code.as_str()))
        .collect();
    assert_eq!(codes[3], (429, "rate_limited"), "{codes:?}");
    for earlier in &codes[..3] {
        assert_ne!(earlier.0, 429, "{codes:?}");
    }
    drop(second);
}
on_both_backends!(
    guesses_across_instances_share_one_budget,
    super::three_guesses
);

fn three_guesses(c: &mut rightsflow::config::Config) {
    c.rate_limits.code_checks_per_reference = 3;
}

/// SQLite: a write-ahead log grown far past its limit (`sqlite_wal_limit_mb`, here 16 MiB;
/// grown while a long read pinned it) is emptied and its file truncated by the checkpointing
/// thread once nothing holds it, instead of staying that size (SQLite never shrinks the file
/// itself). A log just past the limit is started again instead, which leaves the file's size
/// alone (src/storage/db.rs).
#[tokio::test]
async fn a_large_sqlite_write_ahead_log_is_emptied() {
    use diesel::connection::SimpleConnection;
    const LIMIT_MB: u64 = 16;
    let app = spawn_app_with(crate::helpers::Backend::Sqlite, |c| {
        c.sqlite_wal_limit_mb = std::num::NonZeroU64::new(LIMIT_MB).unwrap()
    })
    .await
    .unwrap();
    let path = app.database_url();
    let wal = format!("{}-wal", path.strip_prefix("sqlite://").unwrap_or(&path));
    let db = app.services.db().clone();
    let size = move || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let (grown, after) = tokio::task::spawn_blocking(move || {
        let mut reader =
            diesel::SqliteConnection::establish(path.strip_prefix("sqlite://").unwrap_or(&path))
                .unwrap();
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM requests;")
            .unwrap();
        let mut conn = db.conn().unwrap();
        rightsflow::storage::db::write::<_, diesel::result::Error, _>(&mut conn, |c| {
            c.batch_execute("CREATE TABLE wal_test (x BLOB)")
        })
        .unwrap();
        // Past four times the limit, where the file is truncated rather than reused.
        for _ in 0..(4 * LIMIT_MB + 6) {
            rightsflow::storage::db::write::<_, diesel::result::Error, _>(&mut conn, |c| {
                c.batch_execute("INSERT INTO wal_test VALUES (randomblob(1048576))")
            })
            .unwrap();
        }
        let grown = size();
        reader.batch_execute("COMMIT").unwrap();
        drop(reader);
        std::thread::sleep(std::time::Duration::from_millis(2500));
        (grown, size())
    })
    .await
    .unwrap();
    assert!(
        grown > 4 * LIMIT_MB * 1024 * 1024,
        "the log grew to {grown} bytes"
    );
    assert!(after < 8 * 1024 * 1024, "{grown} bytes, then {after}");
}

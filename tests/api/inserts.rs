//! Rows written together (`storage::inserts::Writes`): on PostgreSQL one statement, on
//! SQLite one insert after another in the writer's turn; on both, all or nothing. And on
//! PostgreSQL, writes waiting at the same time committed together (`insert_batches`).

use diesel::prelude::*;
use rightsflow::storage::inserts::Writes;
use rightsflow::storage::schema::outbox as table;
use rightsflow::storage::{outbox, StoreError};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Array, Text};
use rightsflow::storage::insert_batches::write_together;

use crate::helpers::{skip, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

/// A kind no worker claims, so the rows stay as written.
const KIND: &str = "test_only";

fn row(id: &str) -> outbox::Sealed {
    let row = outbox::OutboxRow::new(id.into(), None, KIND, "{}".into(), chrono::Utc::now());
    outbox::sealed(&row).unwrap()
}

fn stored(app: &TestApp, ids: &[&str]) -> Vec<String> {
    let mut c = app.services.db().conn().unwrap();
    table::table
        .filter(table::id.eq_any(ids))
        .select(table::id)
        .order(table::id)
        .load(&mut *c)
        .unwrap()
}

fn writes<'a>(ids: &[&str]) -> Writes<'a> {
    let mut w = Writes::new();
    for id in ids {
        w.insert(outbox::statement(row(id)));
    }
    w
}

async fn writes_are_all_or_nothing(app: TestApp) {
    let db = app.services.db().clone();
    let _scope = db.scope();
    // The third insert clashes with the first: none of the three is kept.
    let mut w = writes(&["a", "b", "a"]);
    w.clash_means("test row");
    assert!(matches!(
        w.write(&db),
        Err(StoreError::Duplicate("test row"))
    ));
    assert!(stored(&app, &["a", "b"]).is_empty());
    // Without `clash_means` a clash is a query error.
    assert!(matches!(
        writes(&["a", "a"]).write(&db),
        Err(StoreError::Query(_))
    ));
    assert!(stored(&app, &["a"]).is_empty());

    writes(&["a", "b"]).write(&db).unwrap();
    assert_eq!(stored(&app, &["a", "b"]), ["a", "b"]);

    // Steps run after the inserts, in the same transaction: they see the rows, and one that
    // fails takes the inserts back with it.
    let seen = std::sync::Mutex::new(Vec::new());
    let seen_by_step = &seen;
    let mut w = writes(&["c"]);
    w.then(move |c| {
        let ids: Vec<String> = table::table
            .filter(table::kind.eq(KIND))
            .select(table::id)
            .order(table::id)
            .load(c)?;
        *seen_by_step.lock().unwrap() = ids;
        Err(StoreError::Conflict)
    });
    assert!(matches!(w.write(&db), Err(StoreError::Conflict)));
    assert_eq!(*seen.lock().unwrap(), ["a", "b", "c"]);
    assert!(stored(&app, &["c"]).is_empty());

    // And with steps that succeed, everything is kept.
    let mut w = writes(&["c"]);
    w.then(|c| {
        let changed = diesel::update(table::table.filter(table::id.eq("c")))
            .set(table::attempts.eq(7))
            .execute(c)?;
        assert_eq!(changed, 1, "the step sees the row inserted before it");
        Ok(())
    });
    w.write(&db).unwrap();
    let mut c = db.conn().unwrap();
    let attempts: i32 = table::table
        .find("c")
        .select(table::attempts)
        .first(&mut *c)
        .unwrap();
    assert_eq!(attempts, 7);
}
on_both_backends!(writes_are_all_or_nothing);

/// Each stored row of `ids` with the transaction that wrote it (`xmin`) and where it lies in
/// the table (`ctid`: rows inserted into a new table lie in the order they were inserted).
#[derive(diesel::QueryableByName)]
struct Placed {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    xmin: String,
    #[diesel(sql_type = Text)]
    ctid: String,
}

fn placed(app: &TestApp, ids: &[&str]) -> Vec<Placed> {
    let mut c = app.services.db().conn().unwrap();
    let rightsflow::storage::DbConnection::Postgres(c) = &mut *c else {
        unreachable!("PostgreSQL only")
    };
    diesel::sql_query("SELECT id, xmin::text, ctid::text FROM outbox WHERE id = ANY($1)")
        .bind::<Array<Text>, _>(ids)
        .load(c)
        .unwrap()
}

/// How many transactions wrote the rows of `ids`.
fn transactions(app: &TestApp, ids: &[&str]) -> usize {
    let mut xmins: Vec<String> = placed(app, ids).into_iter().map(|p| p.xmin).collect();
    xmins.sort();
    xmins.dedup();
    xmins.len()
}

fn rows(ids: &[&str]) -> rightsflow::storage::inserts::Rows {
    let mut w = writes(ids);
    w.clash_means("test row");
    w.into_rows().expect("inserts only")
}

/// An application on PostgreSQL and its database (`None`, after saying so, without a server).
async fn postgres_app() -> Option<(TestApp, rightsflow::storage::Database)> {
    // Room in the pool for the batches' two leaders, the test's own connection and the
    // outbox worker.
    let Some(app) = spawn_app_with(Backend::Postgres, |c| c.database_pool_size = 8).await else {
        skip(module_path!());
        return None;
    };
    let db = app.services.db().clone();
    Some((app, db))
}

/// Several writes' rows are one transaction; when one of them fails, nothing of the batch is
/// kept and each is written again alone, so only the one that failed fails.
#[tokio::test]
async fn a_batch_is_one_transaction_and_a_failed_write_fails_alone() {
    let Some((app, db)) = postgres_app().await else {
        return;
    };
    let _scope = db.scope();
    let mut c = db.conn().unwrap();

    let together = ["u1", "u2", "u3", "u4"];
    let results = write_together(
        &mut c,
        &[&rows(&["u1"]), &rows(&["u2", "u3"]), &rows(&["u4"])],
    );
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(stored(&app, &together), together);
    assert_eq!(transactions(&app, &together), 1);

    // The second write clashes with itself.
    let results = write_together(
        &mut c,
        &[&rows(&["v1"]), &rows(&["v2", "v2"]), &rows(&["v3"])],
    );
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(StoreError::Duplicate("test row"))));
    assert_eq!(stored(&app, &["v1", "v2", "v3"]), ["v1", "v3"]);
    assert_eq!(transactions(&app, &["v1", "v3"]), 2);

    // A clash with a row already stored fails that write alone too.
    let results = write_together(&mut c, &[&rows(&["u1"]), &rows(&["w1"])]);
    assert!(matches!(results[0], Err(StoreError::Duplicate("test row"))));
    assert!(results[1].is_ok(), "{results:?}");
    assert_eq!(stored(&app, &["w1"]), ["w1"]);
}

/// Writes that wait while the batches' leaders are busy are committed together when they are
/// free, in their lock order within each transaction; every write returns once its rows are
/// committed.
#[tokio::test]
async fn writes_waiting_together_are_committed_together() {
    let Some((app, db)) = postgres_app().await else {
        return;
    };
    let batches = db.insert_batches().expect("PostgreSQL batches its inserts");
    let ids: Vec<String> = (0..20).map(|i| format!("g{i:02}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();

    // Inserts into the outbox wait while this connection holds the table.
    let mut holder = db.conn().unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE outbox IN SHARE MODE")
        .unwrap();
    std::thread::scope(|s| {
        let writing: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let db = &db;
                s.spawn(move || {
                    let _scope = db.scope();
                    let mut w = writes(&[id]);
                    // Later writes first.
                    w.lock_order(format!("{:02}", 99 - i));
                    w.write(db)
                })
            })
            .collect();
        // Two lead (and wait for the table) with what was queued when they began; the others
        // queue behind them.
        let since = std::time::Instant::now();
        while batches.pending() < ids.len() {
            if since.elapsed().as_secs() > 30 {
                // Let the writes go before failing, or the scope would wait for them.
                holder.batch_execute("COMMIT").unwrap();
                panic!("only {} of the writes queued", batches.pending());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            writing.iter().all(|w| !w.is_finished()),
            "nothing is written yet"
        );
        holder.batch_execute("COMMIT").unwrap();
        for w in writing {
            w.join().unwrap().unwrap();
        }
    });
    assert_eq!(stored(&app, &ids), ids);
    // The two leaders' batches, then the writes queued behind them in one or two.
    let n = transactions(&app, &ids);
    assert!((2..=4).contains(&n), "{n} transactions");
    // Within each transaction, the rows went in their lock order.
    let mut rows = placed(&app, &ids);
    let at = |p: &Placed| -> (u32, u32) {
        let (page, item) = p.ctid.trim_matches(['(', ')']).split_once(',').unwrap();
        (page.parse().unwrap(), item.parse().unwrap())
    };
    rows.sort_by_key(|p| (p.xmin.clone(), at(p)));
    for pair in rows.windows(2).filter(|w| w[0].xmin == w[1].xmin) {
        assert!(
            pair[0].id > pair[1].id,
            "{} before {}",
            pair[0].id,
            pair[1].id
        );
    }
}

/// A batch whose connection dies while it commits: every write of it fails (none is told it
/// was stored, none is), and writes after it go on.
#[tokio::test]
async fn a_batch_whose_connection_dies_while_committing_fails_every_write() {
    let Some((app, db)) = postgres_app().await else {
        return;
    };
    let _scope = db.scope();
    // A deferred trigger makes the commit wait for an advisory lock this test holds.
    let mut holder = db.conn().unwrap();
    holder
        .batch_execute(
            "CREATE FUNCTION wait_for_test() RETURNS trigger AS $$ \
             BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$ LANGUAGE plpgsql; \
             CREATE CONSTRAINT TRIGGER wait_for_test AFTER INSERT ON outbox \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_for_test();",
        )
        .unwrap();
    holder
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(4242);")
        .unwrap();
    let pid = |c: &mut rightsflow::storage::DbConnection| -> i32 {
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(c)
            .unwrap()
            .pid
    };
    let results = std::thread::scope(|s| {
        let db = &db;
        let (tell, told) = std::sync::mpsc::channel();
        let committing = s.spawn(move || {
            let mut c = db.conn().unwrap();
            tell.send(pid(&mut c)).unwrap();
            write_together(&mut c, &[&rows(&["k1"]), &rows(&["k2"])])
        });
        let victim = told.recv().unwrap();
        // Once it waits in its commit, its connection is ended from outside.
        let since = std::time::Instant::now();
        loop {
            let waiting: i64 =
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
                    "(SELECT count(*) FROM pg_stat_activity \
                     WHERE pid = {victim} AND wait_event = 'advisory')"
                )))
                .get_result(&mut *holder)
                .unwrap();
            if waiting == 1 {
                break;
            }
            assert!(
                since.elapsed().as_secs() < 10,
                "the batch never reached its commit"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        diesel::sql_query(format!("SELECT pg_terminate_backend({victim})"))
            .execute(&mut *holder)
            .unwrap();
        committing.join().unwrap()
    });
    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(results.len(), 2);
    // Not run again alone: the commit might have happened (here it had not).
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(StoreError::Unavailable(why)) if why.contains("unknown"))),
        "{results:?}"
    );
    assert!(stored(&app, &["k1", "k2"]).is_empty());
    // The next writes go on (on another connection; the pool drops the dead one).
    writes(&["k3"]).write(&db).unwrap();
    assert_eq!(stored(&app, &["k3"]), ["k3"]);
}

//! Rows written together (`storage::inserts::Writes`): on PostgreSQL one statement, on
//! SQLite one insert after another in the writer's turn; on both, all or nothing.

use diesel::prelude::*;
use rightsflow::storage::inserts::Writes;
use rightsflow::storage::schema::outbox as table;
use rightsflow::storage::{outbox, StoreError};

use crate::helpers::TestApp;
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

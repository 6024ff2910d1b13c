//! The SQL connector against real databases (a SQLite file and a PostgreSQL database of their
//! own), loaded with the demo platform: access returns exactly the subject's rows and nobody
//! else's; deletion deletes or masks them and leaves other people's untouched; correction
//! changes only the named fields; restriction sets and clears the flag.

use rightsflow::domain::details::DataCategory;
use rightsflow::fulfilment::dataset::Dataset;
use rightsflow::fulfilment::sql::{self, SubjectKeys, Target};
use rightsflow::fulfilment::{DEMO_PLATFORM_DATASET, DEMO_PLATFORM_SQL};
use serde_json::{json, Value};

use crate::helpers::{scratch_postgres, skip};

fn li_lei_by_email() -> SubjectKeys {
    SubjectKeys {
        email: Some("li.lei@example.com".into()),
        ..SubjectKeys::default()
    }
}

fn han_meimei_by_id() -> SubjectKeys {
    SubjectKeys {
        platform_user_id: Some("1002".into()),
        ..SubjectKeys::default()
    }
}

/// Everything in the platform, table by table, read straight from the database.
fn snapshot(t: &mut Target, d: &Dataset) -> Vec<(String, Vec<Value>)> {
    let everyone = ["1001", "1002", "1003"].map(|id| SubjectKeys {
        platform_user_id: Some(id.into()),
        ..SubjectKeys::default()
    });
    everyone
        .iter()
        .flat_map(|k| sql::access(t, d, k, &[]).unwrap())
        .map(|r| (r.table, r.rows))
        .collect()
}

fn rows_of<'a>(found: &'a [sql::TableRows], table: &str) -> &'a [Value] {
    &found.iter().find(|r| r.table == table).unwrap().rows
}

fn the_connector_acts_on_one_subject_only(url: &str) {
    let d = Dataset::parse(DEMO_PLATFORM_DATASET).unwrap();
    let mut t = Target::open(url).unwrap();
    t.run_script(DEMO_PLATFORM_SQL).unwrap();

    // Access by email: Li Lei's rows in every table, nobody else's.
    let found = sql::access(&mut t, &d, &li_lei_by_email(), &[]).unwrap();
    assert_eq!(rows_of(&found, "users").len(), 1);
    assert_eq!(rows_of(&found, "users")[0]["name"], "李雷");
    let orders: Vec<&str> = rows_of(&found, "orders")
        .iter()
        .map(|o| o["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(orders.len(), 2);
    assert!(orders
        .iter()
        .all(|o| *o == "WM20260301001" || *o == "WM20260512002"));
    assert_eq!(rows_of(&found, "browsing_history").len(), 2);
    assert_eq!(rows_of(&found, "devices")[0]["ip_address"], "203.0.113.7");
    let text = serde_json::to_string(&found).unwrap();
    for other in [
        "韩梅梅",
        "han.meimei",
        "王芳",
        "WM20260420003",
        "198.51.100.23",
    ] {
        assert!(!text.contains(other), "{other} leaked into Li Lei's access");
    }
    // Only described columns: no link columns, no flags.
    assert!(rows_of(&found, "orders")[0].get("user_id").is_none());
    // Only the categories asked for.
    let orders_only = sql::access(&mut t, &d, &li_lei_by_email(), &[DataCategory::Orders]).unwrap();
    assert_eq!(
        orders_only
            .iter()
            .map(|r| r.table.as_str())
            .collect::<Vec<_>>(),
        ["orders"]
    );
    // A subject the system does not know: nothing; a key it cannot use: an error.
    let nobody = SubjectKeys {
        email: Some("nobody@example.com".into()),
        ..SubjectKeys::default()
    };
    assert!(sql::access(&mut t, &d, &nobody, &[])
        .unwrap()
        .iter()
        .all(|r| r.rows.is_empty()));
    let bad = SubjectKeys {
        platform_user_id: Some("1001 OR 1=1".into()),
        ..SubjectKeys::default()
    };
    assert!(sql::access(&mut t, &d, &bad, &[]).is_err());

    let before = snapshot(&mut t, &d);
    let others_before: Vec<_> = before.iter().skip(d.tables.len()).cloned().collect();

    // Correction: the named fields only; an unknown field is reported, not guessed.
    let fixed = sql::correct(
        &mut t,
        &d,
        &han_meimei_by_id(),
        &[
            ("姓名".into(), "韩梅".into()),
            ("favourite colour".into(), "blue".into()),
        ],
    )
    .unwrap();
    assert_eq!(fixed[0].column.as_deref(), Some("users.name"));
    assert_eq!(fixed[0].rows, 1);
    assert_eq!(fixed[1].column, None);
    let after = snapshot(&mut t, &d);
    let changed: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| (b.0.clone(), b.1.clone(), a.1.clone()))
        .collect();
    assert_eq!(changed.len(), 1, "one table changed: {changed:?}");
    let (table, was, now) = &changed[0];
    assert_eq!(table, "users");
    assert_eq!(was[0]["name"], "韩梅梅");
    let mut expected = was[0].clone();
    expected["name"] = json!("韩梅");
    assert_eq!(now[0], expected, "nothing but the name changed");

    // Restriction: the flag set on Li Lei's rows only, then cleared.
    let flagged = sql::restrict(&mut t, &d, &li_lei_by_email(), true).unwrap();
    assert_eq!(
        flagged
            .iter()
            .map(|o| (o.table.as_str(), o.rows))
            .collect::<Vec<_>>(),
        [("orders", 2), ("users", 1)]
    );
    assert_eq!(flag_count(&mut t), 3);
    sql::restrict(&mut t, &d, &li_lei_by_email(), false).unwrap();
    assert_eq!(flag_count(&mut t), 0);

    // Deletion of the account: histories gone, orders and the user masked; others untouched.
    let before = snapshot(&mut t, &d);
    let done = sql::delete(&mut t, &d, &li_lei_by_email(), None).unwrap();
    let action = |table: &str| {
        done.iter()
            .find(|o| o.table == table)
            .map(|o| (o.action.as_str(), o.rows))
    };
    assert_eq!(action("browsing_history"), Some(("deleted", 2)));
    assert_eq!(action("orders"), Some(("anonymised", 2)));
    assert_eq!(action("users"), Some(("anonymised", 1)));
    let id_view = SubjectKeys {
        platform_user_id: Some("1001".into()),
        ..SubjectKeys::default()
    };
    let left = sql::access(&mut t, &d, &id_view, &[]).unwrap();
    assert!(rows_of(&left, "browsing_history").is_empty());
    assert!(rows_of(&left, "locations").is_empty());
    let user = &rows_of(&left, "users")[0];
    assert_eq!(user["name"], "已注销用户");
    assert!(user["phone"].is_null());
    assert_eq!(user["id_card"], "1101");
    let hashed = user["email"].as_str().unwrap();
    assert_eq!(hashed.len(), 16);
    assert!(!hashed.contains('@'));
    for o in rows_of(&left, "orders") {
        assert!(o["address"].is_null());
        assert_eq!(o["order_no"].as_str().unwrap().len(), 16);
        assert!(
            o["amount_cents"].as_i64().unwrap() > 0,
            "the accounts keep the amount"
        );
    }
    // The email no longer finds anyone.
    assert!(sql::access(&mut t, &d, &li_lei_by_email(), &[])
        .unwrap()
        .iter()
        .all(|r| r.rows.is_empty()));
    let after = snapshot(&mut t, &d);
    let n = d.tables.len();
    assert_eq!(after[n..], before[n..], "other people's rows untouched");
    assert_ne!(others_before, vec![], "the comparison covers rows");
}

/// Restricted rows of everyone, counted with plain SQL.
fn flag_count(t: &mut Target) -> usize {
    let sql = "SELECT (SELECT COUNT(*) FROM users WHERE processing_restricted) + (SELECT COUNT(*) FROM orders WHERE processing_restricted) AS n";
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl;
    let n: N = match t {
        Target::Sqlite(c) => diesel::sql_query(sql).get_result(c).unwrap(),
        Target::Postgres(c) => diesel::sql_query(sql).get_result(c).unwrap(),
    };
    n.n as usize
}

#[test]
fn the_sql_connector_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("platform.db").display());
    the_connector_acts_on_one_subject_only(&url);
}

#[test]
fn the_sql_connector_on_postgres() {
    let Some((url, _guard)) = scratch_postgres() else {
        return skip("fulfilment::the_sql_connector_on_postgres");
    };
    the_connector_acts_on_one_subject_only(&url);
}

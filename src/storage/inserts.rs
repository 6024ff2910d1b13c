//! The rows one transaction inserts, gathered first and then written together: on PostgreSQL
//! as one statement (each insert but the last a data-modifying `WITH` of it), on SQLite one
//! after the other in the writer's turn (`write_gate`).
//!
//! Why: a submission inserts six rows (the request, its blind index, its first event, its
//! outbox row, the first code's challenge and its email). Run one by one in a transaction,
//! that was nine round trips to PostgreSQL (the pool's check, `BEGIN`, six inserts, `COMMIT`),
//! and PostgreSQL's time per round trip, not per row, bounded intake (docs/PERFORMANCE.md).
//! One statement is atomic by itself, so with nothing else to do it needs no `BEGIN` or
//! `COMMIT` either: two round trips. Every insert of the statement sees the same snapshot,
//! which new rows do not need; foreign keys and the tallies' triggers are checked at its end,
//! when all the rows are there.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::sqlite::Sqlite;
use diesel::{PgConnection, QueryResult, SqliteConnection};

use super::{Database, DbConnection, StoreError};

/// An insert statement either backend can run (what `diesel::insert_into(…).values(…)`
/// builds for a row of this crate).
pub trait Insert: Send {
    fn run_on_sqlite(&self, c: &mut SqliteConnection) -> QueryResult<usize>;
    fn for_pg(&self) -> &dyn QueryFragment<Pg>;
    /// Whether SQLite's statement cache finds the prepared statement by its type, without
    /// writing its SQL out on every execution (docs/PERFORMANCE.md, fifth round). For tests.
    #[cfg(test)]
    fn cached_by_type() -> bool
    where
        Self: Sized;
}

impl<Q> Insert for Q
where
    Q: QueryFragment<Sqlite> + QueryFragment<Pg> + QueryId + Send,
{
    /// Prepared once and found again by the statement's type, as `on_backend!` does.
    fn run_on_sqlite(&self, c: &mut SqliteConnection) -> QueryResult<usize> {
        ExecuteDsl::<SqliteConnection>::execute(self, c)
    }

    fn for_pg(&self) -> &dyn QueryFragment<Pg> {
        self
    }

    #[cfg(test)]
    fn cached_by_type() -> bool {
        Q::HAS_STATIC_QUERY_ID
    }
}

type Step<'a> = Box<dyn FnOnce(&mut DbConnection) -> Result<(), StoreError> + Send + 'a>;

/// Inserts, in order, then steps that need the connection (reads, updates), in order.
#[derive(Default)]
pub struct Writes<'a> {
    rows: Rows,
    steps: Vec<Step<'a>>,
}

/// The inserts of a [`Writes`]. They own what they insert, so writes with nothing else to do
/// can be handed to another thread and committed with others' (`insert_batches`).
#[derive(Default)]
pub struct Rows {
    inserts: Vec<Box<dyn Insert>>,
    /// What a unique key clash among the inserts means (`StoreError::Duplicate`); without
    /// it, a clash is a query error like any other.
    clash: Option<&'static str>,
    /// Where these rows go in a batch of several writes' rows: see [`Writes::lock_order`].
    order: Option<String>,
}

impl<'a> Writes<'a> {
    pub fn new() -> Writes<'a> {
        Writes::default()
    }

    pub fn insert(&mut self, statement: impl Insert + 'static) -> &mut Writes<'a> {
        self.rows.inserts.push(Box::new(statement));
        self
    }

    /// A step run after every insert, in the same transaction.
    pub fn then(
        &mut self,
        step: impl FnOnce(&mut DbConnection) -> Result<(), StoreError> + Send + 'a,
    ) -> &mut Writes<'a> {
        self.steps.push(Box::new(step));
        self
    }

    /// `other`'s inserts after these, its steps after these.
    pub fn append(&mut self, other: Writes<'a>) -> &mut Writes<'a> {
        self.rows.inserts.extend(other.rows.inserts);
        self.rows.order = self.rows.order.take().or(other.rows.order);
        self.steps.extend(other.steps);
        self
    }

    /// A unique key clash among the inserts is reported as `Duplicate(what)`.
    pub fn clash_means(&mut self, what: &'static str) -> &mut Writes<'a> {
        self.rows.clash = Some(what);
        self
    }

    /// Committed in one transaction with other writes' rows (PostgreSQL, `insert_batches`),
    /// these are inserted in the order of `key` among them. Rows whose triggers lock shared
    /// rows (a request's tallies) say which, so that two batches lock them in one order and
    /// cannot deadlock.
    pub fn lock_order(&mut self, key: String) -> &mut Writes<'a> {
        self.rows.order = Some(key);
        self
    }

    /// The inserts alone, when there are no steps: what [`insert_batches`] writes.
    ///
    /// [`insert_batches`]: super::insert_batches
    pub fn into_rows(self) -> Option<Rows> {
        self.steps.is_empty().then_some(self.rows)
    }

    /// Writes everything as one transaction of its own. On PostgreSQL, inserts and nothing
    /// else are committed together with other such writes of this process waiting at the same
    /// time (`insert_batches`), or alone as one statement.
    pub fn write(self, db: &Database) -> Result<(), StoreError> {
        if self.steps.is_empty() {
            return db.insert(self.rows);
        }
        db.write(|c| self.write_on(c))
    }

    /// Writes everything on `c`, inside the transaction the caller holds (or, on PostgreSQL
    /// and with no steps, as one statement committed by itself).
    pub fn write_on(self, c: &mut DbConnection) -> Result<(), StoreError> {
        self.rows.write_on(c)?;
        for step in self.steps {
            step(c)?;
        }
        Ok(())
    }
}

impl Rows {
    /// Inserts the rows on `c`: on PostgreSQL as one statement.
    pub fn write_on(&self, c: &mut DbConnection) -> Result<(), StoreError> {
        let failed = |e| match self.clash {
            Some(what) => super::requests::duplicate_as(e, what),
            None => StoreError::Query(e),
        };
        match c {
            DbConnection::Sqlite(c) => {
                for statement in &self.inserts {
                    statement.run_on_sqlite(c).map_err(failed)?;
                }
            }
            DbConnection::Postgres(c) if !self.inserts.is_empty() => {
                ExecuteDsl::<PgConnection>::execute(Together(&self.inserts), c).map_err(failed)?;
            }
            DbConnection::Postgres(_) => {}
        }
        Ok(())
    }

    /// See [`Writes::lock_order`].
    pub fn order(&self) -> Option<&str> {
        self.order.as_deref()
    }
}

/// `WITH w0 AS (INSERT …), w1 AS (INSERT …) INSERT …`: PostgreSQL runs every data-modifying
/// `WITH`, referred to or not. Prepared once per shape: diesel keys its statement cache by the
/// SQL when a query has no static type, and a submission has a handful of shapes (a phone as
/// well as an email, a code or none).
struct Together<'q>(&'q [Box<dyn Insert>]);

impl QueryId for Together<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Together<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Some((last, first)) = self.0.split_last() else {
            return Ok(());
        };
        for (i, statement) in first.iter().enumerate() {
            out.push_sql(if i == 0 { "WITH " } else { ", " });
            out.push_sql(&format!("w{i} AS ("));
            statement.for_pg().walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        if !first.is_empty() {
            out.push_sql(" ");
        }
        last.for_pg().walk_ast(out.reborrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::subject_lookups as lookups;
    use diesel::prelude::*;

    fn lookup(id: &str) -> impl Insert {
        diesel::insert_into(lookups::table).values((
            lookups::request_id.eq(id.to_owned()),
            lookups::kind.eq("email"),
            lookups::digest.eq("d"),
        ))
    }

    /// Each insert but the last is a `WITH` of the last, and the parameters are numbered
    /// straight through: one statement, one round trip.
    #[test]
    fn on_postgres_the_inserts_are_one_statement() {
        let inserts: Vec<Box<dyn Insert>> = vec![
            Box::new(lookup("a")),
            Box::new(lookup("b")),
            Box::new(lookup("c")),
        ];
        let sql = diesel::debug_query::<Pg, _>(&Together(&inserts)).to_string();
        let one = r#"INSERT INTO "subject_lookups" ("request_id", "kind", "digest") VALUES"#;
        let expected = format!(
            "WITH w0 AS ({one} ($1, $2, $3)), w1 AS ({one} ($4, $5, $6)) {one} ($7, $8, $9)"
        );
        assert!(sql.starts_with(&expected), "{sql}");
        assert!(
            sql.contains(r#"binds: ["a", "email", "d", "b", "email", "d", "c""#),
            "{sql}"
        );
        // One insert alone is just that insert.
        let sql = diesel::debug_query::<Pg, _>(&Together(&inserts[..1])).to_string();
        assert!(sql.starts_with(&format!("{one} ($1, $2, $3)")), "{sql}");
    }
}

//! The SQL connector: finds, exports, corrects, restricts and deletes one subject's rows in a
//! data system's own database (SQLite or PostgreSQL), as its dataset description says, in one
//! transaction. Names come from the checked description; every value is a bound parameter.
//!
//! Rows are read as JSON objects built by the database itself (`json_object` /
//! `json_build_object`), so any table shape reads the same way.

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::dataset::{Dataset, Deletion, IdentityKey, KeyType, Mask, Table};
use crate::domain::details::DataCategory;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot connect to the data system: {0}")]
    Connect(String),
    #[error("the request carries no identity key this system understands")]
    NoKey,
    #[error("{0}")]
    Database(#[from] diesel::result::Error),
}

/// What a request knows of the subject.
#[derive(Debug, Clone, Default)]
pub struct SubjectKeys {
    pub platform_user_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl SubjectKeys {
    fn get(&self, key: IdentityKey) -> Option<&str> {
        match key {
            IdentityKey::PlatformUserId => self.platform_user_id.as_deref(),
            IdentityKey::Email => self.email.as_deref(),
            IdentityKey::Phone => self.phone.as_deref(),
        }
    }
}

/// A data system's database.
pub enum Target {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    /// MySQL or MariaDB, in ANSI_QUOTES mode (double-quoted names, as for the others).
    Mysql(MysqlConnection),
}

impl Target {
    /// `postgres://…` or `postgresql://…`; anything else is a SQLite file (`sqlite://` prefix
    /// optional).
    pub fn open(url: &str) -> Result<Target, ConnectorError> {
        Target::open_with_timeout(url, std::time::Duration::from_secs(30))
    }

    /// Opens with a bound on each statement: PostgreSQL's `statement_timeout`; SQLite's wait
    /// for a lock (a SQLite statement itself runs in this process and is not interrupted).
    pub fn open_with_timeout(
        url: &str,
        timeout: std::time::Duration,
    ) -> Result<Target, ConnectorError> {
        let ms = timeout.as_millis().clamp(1, 3_600_000);
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let mut c = MysqlConnection::establish(&url)
                .map_err(|e| ConnectorError::Connect(e.to_string()))?;
            c.batch_execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")?;
            // MariaDB bounds any statement (seconds); MySQL only reads (milliseconds).
            let secs = ms.div_ceil(1000);
            if c.batch_execute(&format!("SET SESSION max_statement_time = {secs}"))
                .is_err()
            {
                let _ = c.batch_execute(&format!("SET SESSION max_execution_time = {ms}"));
            }
            return Ok(Target::Mysql(c));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut c =
                PgConnection::establish(url).map_err(|e| ConnectorError::Connect(e.to_string()))?;
            c.batch_execute(&format!("SET statement_timeout = {ms}"))?;
            Ok(Target::Postgres(c))
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let mut c = SqliteConnection::establish(path)
                .map_err(|e| ConnectorError::Connect(e.to_string()))?;
            c.batch_execute(&format!("PRAGMA busy_timeout = {ms};"))?;
            Ok(Target::Sqlite(c))
        }
    }

    /// Runs a script (the demo platform's schema and data).
    pub fn run_script(&mut self, sql: &str) -> Result<(), ConnectorError> {
        match self {
            Target::Sqlite(c) => c.batch_execute(sql)?,
            Target::Postgres(c) => c.batch_execute(sql)?,
            Target::Mysql(c) => c.batch_execute(sql)?,
        }
        Ok(())
    }
}

/// One value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Int(i64),
}

/// A statement with `?` placeholders, turned into `$n` for PostgreSQL.
struct Statement {
    sql: String,
    binds: Vec<Value>,
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    row: String,
}

fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

macro_rules! boxed {
    ($db:ty, $sql:expr, $binds:expr) => {{
        let mut q = diesel::sql_query($sql).into_boxed::<$db>();
        for b in $binds {
            q = match b {
                Value::Text(t) => q.bind::<Text, _>(t.clone()),
                Value::Int(i) => q.bind::<BigInt, _>(*i),
            };
        }
        q
    }};
}

impl Target {
    fn execute(&mut self, s: &Statement) -> Result<usize, ConnectorError> {
        Ok(match self {
            Target::Sqlite(c) => {
                boxed!(diesel::sqlite::Sqlite, s.sql.clone(), &s.binds).execute(c)?
            }
            Target::Postgres(c) => boxed!(diesel::pg::Pg, numbered(&s.sql), &s.binds).execute(c)?,
            Target::Mysql(c) => boxed!(diesel::mysql::Mysql, s.sql.clone(), &s.binds).execute(c)?,
        })
    }

    fn rows(&mut self, s: &Statement) -> Result<Vec<serde_json::Value>, ConnectorError> {
        let rows: Vec<JsonRow> = match self {
            Target::Sqlite(c) => boxed!(diesel::sqlite::Sqlite, s.sql.clone(), &s.binds).load(c)?,
            Target::Postgres(c) => boxed!(diesel::pg::Pg, numbered(&s.sql), &s.binds).load(c)?,
            Target::Mysql(c) => boxed!(diesel::mysql::Mysql, s.sql.clone(), &s.binds).load(c)?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.row).ok())
            .collect())
    }

    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Target) -> Result<T, ConnectorError>,
    ) -> Result<T, ConnectorError> {
        self.run_script(match self {
            Target::Postgres(_) => "BEGIN",
            Target::Mysql(_) => "START TRANSACTION",
            Target::Sqlite(_) => "BEGIN IMMEDIATE",
        })?;
        match f(self) {
            Ok(v) => {
                self.run_script("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.run_script("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The expression that reads listed columns as one JSON object (text).
    fn json_of(&self, columns: &[&str]) -> String {
        let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', \"{c}\"")).collect();
        match self {
            Target::Postgres(_) => {
                format!("CAST(json_build_object({}) AS TEXT)", pairs.join(", "))
            }
            Target::Mysql(_) => format!("CAST(JSON_OBJECT({}) AS CHAR)", pairs.join(", ")),
            Target::Sqlite(_) => format!("json_object({})", pairs.join(", ")),
        }
    }
}

/// The subject's ids (what other tables link to), found once by the first identity key the
/// request carries and the system understands, before anything changes: masking a key
/// column (the email) must not lose the subject halfway.
fn subject_ids(
    target: &mut Target,
    d: &Dataset,
    keys: &SubjectKeys,
) -> Result<Vec<Value>, ConnectorError> {
    let (key, column) = [
        IdentityKey::PlatformUserId,
        IdentityKey::Email,
        IdentityKey::Phone,
    ]
    .into_iter()
    .find_map(|k| Some((keys.get(k)?, d.subject.keys.get(&k)?)))
    .ok_or(ConnectorError::NoKey)?;
    let value = match column.kind {
        KeyType::Text => Value::Text(key.to_owned()),
        KeyType::Integer => Value::Int(key.trim().parse().map_err(|_| ConnectorError::NoKey)?),
    };
    let sql = format!(
        "SELECT {} AS row FROM \"{}\" WHERE \"{}\" = ?",
        target.json_of(&[&d.subject.id]),
        d.subject.table,
        column.column
    );
    Ok(target
        .rows(&Statement {
            sql,
            binds: vec![value],
        })?
        .iter()
        .map(|row| bind_of(&row[&d.subject.id]))
        .collect())
}

/// A table's rows of the subject: its link column among the subject's ids.
fn condition(table: &Table, ids: &[Value]) -> (String, Vec<Value>) {
    if ids.is_empty() {
        return ("1 = 0".into(), vec![]);
    }
    let marks = vec!["?"; ids.len()].join(", ");
    (format!("\"{}\" IN ({marks})", table.link), ids.to_vec())
}

/// One table's rows for the subject, with the category of each column.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TableRows {
    pub table: String,
    pub categories: BTreeMap<String, DataCategory>,
    /// What the report calls each column (where the description says).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub rows: Vec<serde_json::Value>,
}

/// The subject's ids in one system, found once (see [`subject_ids`]); what the streaming
/// reads below take.
pub struct Subject {
    ids: Vec<Value>,
}

impl Subject {
    pub fn find(
        target: &mut Target,
        d: &Dataset,
        keys: &SubjectKeys,
    ) -> Result<Subject, ConnectorError> {
        Ok(Subject {
            ids: subject_ids(target, d, keys)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The columns of `table` in `categories` (all described columns when empty), in name order.
pub fn columns_in<'t>(table: &'t Table, categories: &[DataCategory]) -> Vec<&'t str> {
    table
        .columns
        .iter()
        .filter(|(_, c)| categories.is_empty() || categories.contains(c))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// How many of the subject's rows `table` holds.
pub fn count(target: &mut Target, table: &Table, subject: &Subject) -> Result<i64, ConnectorError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let (cond, binds) = condition(table, &subject.ids);
    let sql = format!("SELECT COUNT(*) AS n FROM \"{}\" WHERE {cond}", table.name);
    let found: Vec<Count> = match target {
        Target::Sqlite(c) => boxed!(diesel::sqlite::Sqlite, sql, &binds).load(c)?,
        Target::Postgres(c) => boxed!(diesel::pg::Pg, numbered(&sql), &binds).load(c)?,
        Target::Mysql(c) => boxed!(diesel::mysql::Mysql, sql, &binds).load(c)?,
    };
    Ok(found.first().map_or(0, |c| c.n))
}

/// Hands each of the subject's rows of `table` (the listed columns, as a JSON object) to `f`
/// as the database returns it: one row in memory at a time, whether there are ten or a
/// million (SQLite steps the statement; PostgreSQL sends rows one by one). Returns how many.
pub fn each_row<E: From<ConnectorError>>(
    target: &mut Target,
    table: &Table,
    subject: &Subject,
    columns: &[&str],
    mut f: impl FnMut(serde_json::Value) -> Result<(), E>,
) -> Result<usize, E> {
    let (cond, binds) = condition(table, &subject.ids);
    // In the table's key order when it has one, so a package reads the same each time.
    let order = table
        .key
        .as_deref()
        .map(|k| format!(" ORDER BY \"{k}\""))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {} AS row FROM \"{}\" WHERE {cond}{order}",
        target.json_of(columns),
        table.name
    );
    let mut n = 0;
    let mut each = |row: Result<JsonRow, diesel::result::Error>| -> Result<(), E> {
        let row = row.map_err(ConnectorError::from)?;
        let value = serde_json::from_str(&row.row).map_err(|e| {
            ConnectorError::Connect(format!("the database returned a row that is not JSON: {e}"))
        })?;
        n += 1;
        f(value)
    };
    match target {
        Target::Sqlite(c) => {
            let rows = boxed!(diesel::sqlite::Sqlite, sql, &binds)
                .load_iter::<JsonRow, diesel::connection::DefaultLoadingMode>(c)
                .map_err(ConnectorError::from)?;
            for row in rows {
                each(row)?;
            }
        }
        Target::Postgres(c) => {
            let rows = boxed!(diesel::pg::Pg, numbered(&sql), &binds)
                .load_iter::<JsonRow, diesel::pg::PgRowByRowLoadingMode>(c)
                .map_err(ConnectorError::from)?;
            for row in rows {
                each(row)?;
            }
        }
        Target::Mysql(c) => {
            let rows = boxed!(diesel::mysql::Mysql, sql, &binds)
                .load_iter::<JsonRow, diesel::connection::DefaultLoadingMode>(c)
                .map_err(ConnectorError::from)?;
            for row in rows {
                each(row)?;
            }
        }
    }
    Ok(n)
}

/// Every described column of the subject's rows in the tables that hold any of `categories`
/// (all when empty), only those columns, collected in memory: for small reads and tests; the
/// report and package read with [`each_row`] instead.
pub fn access(
    target: &mut Target,
    d: &Dataset,
    keys: &SubjectKeys,
    categories: &[DataCategory],
) -> Result<Vec<TableRows>, ConnectorError> {
    let subject = Subject::find(target, d, keys)?;
    let mut out = vec![];
    for t in &d.tables {
        let columns = columns_in(t, categories);
        if columns.is_empty() {
            continue;
        }
        let mut rows = vec![];
        each_row(target, t, &subject, &columns, |row| {
            rows.push(row);
            Ok::<_, ConnectorError>(())
        })?;
        out.push(TableRows {
            table: t.name.clone(),
            categories: columns
                .iter()
                .map(|c| ((*c).to_owned(), t.columns[*c]))
                .collect(),
            labels: t.labels.clone(),
            rows,
        });
    }
    Ok(out)
}

/// What was done to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableOutcome {
    pub table: String,
    /// `deleted`, `anonymised`, `kept`, `restricted`, `unrestricted`, `corrected`.
    pub action: String,
    pub rows: usize,
}

fn hashed(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn bind_of(v: &serde_json::Value) -> Value {
    match v.as_i64() {
        Some(i) => Value::Int(i),
        None => Value::Text(v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
    }
}

/// Masks `columns` of the subject's rows in one table. `hash` is computed here, row by row by
/// the table's key; the others are one UPDATE.
fn mask_columns(
    target: &mut Target,
    t: &Table,
    ids: &[Value],
    columns: &[&str],
) -> Result<usize, ConnectorError> {
    let (cond, found) = condition(t, ids);
    let mut sets = vec![];
    let mut binds = vec![];
    let mut hashes = vec![];
    for c in columns {
        match t.mask_of(c) {
            Mask::Null => sets.push(format!("\"{c}\" = NULL")),
            Mask::Fixed(v) => {
                sets.push(format!("\"{c}\" = ?"));
                // A number for a number column: PostgreSQL will not take text there.
                binds.push(v.parse::<i64>().map_or(Value::Text(v), Value::Int));
            }
            Mask::Truncate(n) => sets.push(format!("\"{c}\" = substr(\"{c}\", 1, {n})")),
            Mask::Hash => hashes.push(*c),
        }
    }
    let mut changed = 0;
    if !hashes.is_empty() {
        // Checked when loading: a hash mask comes with the table's key.
        let key = t.key.as_deref().unwrap_or("id");
        let mut read = vec![key];
        read.extend(&hashes);
        let sql = format!(
            "SELECT {} AS row FROM \"{}\" WHERE {cond}",
            target.json_of(&read),
            t.name
        );
        for row in target.rows(&Statement {
            sql,
            binds: found.clone(),
        })? {
            let mut set = vec![];
            let mut b = vec![];
            for c in &hashes {
                if !row[*c].is_null() {
                    set.push(format!("\"{c}\" = ?"));
                    b.push(Value::Text(hashed(&row[*c])));
                }
            }
            if set.is_empty() {
                continue;
            }
            b.push(bind_of(&row[key]));
            target.execute(&Statement {
                sql: format!(
                    "UPDATE \"{}\" SET {} WHERE \"{key}\" = ?",
                    t.name,
                    set.join(", ")
                ),
                binds: b,
            })?;
        }
    }
    if !sets.is_empty() {
        binds.extend(found);
        changed = target.execute(&Statement {
            sql: format!("UPDATE \"{}\" SET {} WHERE {cond}", t.name, sets.join(", ")),
            binds,
        })?;
    }
    Ok(changed)
}

/// Deletion: the whole account (`categories` None) or only the named categories, table by
/// table as described (the subject's own table last), in one transaction.
pub fn delete(
    target: &mut Target,
    d: &Dataset,
    keys: &SubjectKeys,
    categories: Option<&[DataCategory]>,
) -> Result<Vec<TableOutcome>, ConnectorError> {
    target.in_transaction(|target| {
        let ids = subject_ids(target, d, keys)?;
        let mut out = vec![];
        for t in &d.tables {
            let in_scope: Vec<&str> = t
                .columns
                .iter()
                .filter(|(_, c)| categories.is_none_or(|cs| cs.contains(c)))
                .map(|(n, _)| n.as_str())
                .collect();
            if in_scope.is_empty() {
                continue;
            }
            let whole_table = in_scope.len() == t.columns.len();
            let outcome = |action: &str, rows| TableOutcome {
                table: t.name.clone(),
                action: action.into(),
                rows,
            };
            match t.deletion {
                Deletion::Keep => out.push(outcome("kept", 0)),
                Deletion::Delete if whole_table => {
                    let (cond, binds) = condition(t, &ids);
                    let n = target.execute(&Statement {
                        sql: format!("DELETE FROM \"{}\" WHERE {cond}", t.name),
                        binds,
                    })?;
                    out.push(outcome("deleted", n));
                }
                // Anonymise: the masked columns (all in scope, for a partial deletion).
                _ => {
                    let columns: Vec<&str> = if categories.is_none() {
                        t.mask.keys().map(String::as_str).collect()
                    } else {
                        in_scope
                    };
                    let n = mask_columns(target, t, &ids, &columns)?;
                    out.push(outcome("anonymised", n));
                }
            }
        }
        Ok(out)
    })
}

/// Sets (or clears) the restriction flag of every table that has one.
pub fn restrict(
    target: &mut Target,
    d: &Dataset,
    keys: &SubjectKeys,
    on: bool,
) -> Result<Vec<TableOutcome>, ConnectorError> {
    target.in_transaction(|target| {
        let ids = subject_ids(target, d, keys)?;
        let mut out = vec![];
        for t in d.tables.iter().filter(|t| t.restrict.is_some()) {
            let flag = t.restrict.as_deref().unwrap_or_default();
            let (cond, binds) = condition(t, &ids);
            let n = target.execute(&Statement {
                sql: format!(
                    "UPDATE \"{}\" SET \"{flag}\" = {} WHERE {cond}",
                    t.name,
                    if on { "TRUE" } else { "FALSE" }
                ),
                binds,
            })?;
            out.push(TableOutcome {
                table: t.name.clone(),
                action: if on { "restricted" } else { "unrestricted" }.into(),
                rows: n,
            });
        }
        Ok(out)
    })
}

/// The outcome of one field of a correction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldOutcome {
    pub field: String,
    /// `table.column`, or None when this system has no such field (left to staff).
    pub column: Option<String>,
    pub rows: usize,
}

/// Correction: each named field that the description knows is set to its corrected value,
/// and nothing else changes. Fields it does not know are reported, not guessed.
pub fn correct(
    target: &mut Target,
    d: &Dataset,
    keys: &SubjectKeys,
    fields: &[(String, String)],
) -> Result<Vec<FieldOutcome>, ConnectorError> {
    target.in_transaction(|target| {
        let ids = subject_ids(target, d, keys)?;
        let mut out = vec![];
        for (field, corrected) in fields {
            let Some(c) = d.correction_for(field) else {
                out.push(FieldOutcome {
                    field: field.clone(),
                    column: None,
                    rows: 0,
                });
                continue;
            };
            let Some(t) = d.tables.iter().find(|t| t.name == c.table) else {
                continue;
            };
            let (cond, found) = condition(t, &ids);
            let mut binds = vec![Value::Text(corrected.clone())];
            binds.extend(found);
            let n = target.execute(&Statement {
                sql: format!(
                    "UPDATE \"{}\" SET \"{}\" = ? WHERE {cond}",
                    t.name, c.column
                ),
                binds,
            })?;
            out.push(FieldOutcome {
                field: field.clone(),
                column: Some(format!("{}.{}", c.table, c.column)),
                rows: n,
            });
        }
        Ok(out)
    })
}

/// Consent withdrawal: sets the flag of each withdrawn purpose the description maps to false
/// on the subject's rows, in one transaction.
pub fn withdraw_consents(
    target: &mut Target,
    d: &Dataset,
    keys: &SubjectKeys,
    purposes: &[String],
) -> Result<Vec<TableOutcome>, ConnectorError> {
    let ids = subject_ids(target, d, keys)?;
    target.in_transaction(|t| {
        let mut out = vec![];
        for (purpose, flag) in d.consents.iter().filter(|(p, _)| purposes.contains(p)) {
            let Some(table) = d.tables.iter().find(|x| x.name == flag.table) else {
                continue;
            };
            let (cond, binds) = condition(table, &ids);
            let sql = format!(
                "UPDATE \"{}\" SET \"{}\" = FALSE WHERE {cond}",
                table.name, flag.column
            );
            let rows = t.execute(&Statement { sql, binds })?;
            out.push(TableOutcome {
                table: format!("{}.{} ({purpose})", table.name, flag.column),
                action: "consent_withdrawn".into(),
                rows,
            });
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            numbered("UPDATE t SET a = ?, b = ? WHERE c = ?"),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3"
        );
    }

    #[test]
    fn hashes_are_short_stable_and_not_the_value() {
        let h = hashed(&serde_json::json!("li.lei@example.com"));
        assert_eq!(h.len(), 16);
        assert_eq!(h, hashed(&serde_json::json!("li.lei@example.com")));
        assert!(!h.contains("li.lei"));
    }
}

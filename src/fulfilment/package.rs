//! Building what the subject downloads, once every task of an access or portability request
//! has ended: the access report (HTML) or the portability package (ZIP), read from the
//! systems row by row and written straight into sealed storage, so memory stays flat whether
//! the subject has ten rows or a million. Then the request is completed: the subject is told
//! only when the file is there to download.
//!
//! The package (`rightsflow-package/1`, documented in docs/FULFILMENT.md):
//! - `README.txt`: what is inside, in Chinese and English;
//! - `systems/<system>.json`: one file a system (schema: `schema/system.schema.json`);
//! - `systems/<system>/<table>.csv`: the same rows, a file a table (UTF-8 with a BOM, RFC 4180);
//! - `manifest.json` (last): every other file's size and SHA-256, and each table's row count.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::Digest;

use super::dataset::Dataset;
use super::registry::{Connector, Registry, System};
use super::report::AccessReport;
use super::run::{categories, keys_of, FulfilError};
use super::sql::{self, Subject, TableRows, Target};
use super::zipstream::{EntryInfo, ZipStream};
use crate::domain::details::DataCategory;
use crate::domain::{Locale, RequestKind};
use crate::service::{results, ServiceError, Services};
use crate::storage::blobs::SealedWriter;
use crate::storage::rows::StoredRequest;
use crate::storage::tasks::{self, DONE};

pub use crate::storage::outbox::BUILD_RESULT;

/// Who the system-built results are recorded as made by.
pub const BUILDER: &str = "system";

const PACKAGE_FORMAT: &str = "rightsflow-package/1";

/// The JSON Schema of a package's `systems/<system>.json` files.
pub const SYSTEM_SCHEMA: &str = include_str!("system.schema.json");

fn io_error(e: io::Error) -> FulfilError {
    FulfilError::Transient(format!("writing the result: {e}"))
}

/// One table as the result shows it: its columns' categories and labels.
struct TableView {
    name: String,
    columns: BTreeMap<String, DataCategory>,
    labels: BTreeMap<String, String>,
}

impl TableView {
    /// The columns in `categories` (all when empty), in name order.
    fn columns_in(&self, categories: &[DataCategory]) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|(_, c)| categories.is_empty() || categories.contains(c))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Where a source's rows come from.
enum Reader<'a> {
    /// The system's own database, read row by row now.
    Sql {
        target: Target,
        subject: Subject,
        dataset: &'a Dataset,
    },
    /// What an HTTP system answered (held on its task, within the answer size limit).
    Rows(Vec<TableRows>),
}

/// A system one of the request's tasks found the subject in, open for reading.
struct Source<'a> {
    system: &'a System,
    tables: Vec<TableView>,
    reader: Reader<'a>,
}

impl Source<'_> {
    /// Hands `f` each of the subject's rows of table `i`, with (at least) `columns`.
    fn each_row(
        &mut self,
        i: usize,
        columns: &[&str],
        mut f: impl FnMut(Value) -> Result<(), FulfilError>,
    ) -> Result<usize, FulfilError> {
        match &mut self.reader {
            Reader::Sql {
                target,
                subject,
                dataset,
            } => sql::each_row(target, &dataset.tables[i], subject, columns, f),
            Reader::Rows(tables) => {
                for row in &tables[i].rows {
                    // Only the columns asked for, whatever else the system sent.
                    let only: serde_json::Map<String, Value> = columns
                        .iter()
                        .map(|c| ((*c).to_owned(), row[*c].clone()))
                        .collect();
                    f(Value::Object(only))?;
                }
                Ok(tables[i].rows.len())
            }
        }
    }
}

fn sql_source<'a>(
    system: &'a System,
    r: &StoredRequest,
) -> Result<Option<Source<'a>>, FulfilError> {
    let Connector::Sql { url, dataset } = &system.connector else {
        return Ok(None);
    };
    let mut target = Target::open_with_timeout(url, system.timeout)?;
    let subject = Subject::find(&mut target, dataset, &keys_of(r))?;
    let tables = dataset
        .tables
        .iter()
        .map(|t| TableView {
            name: t.name.clone(),
            columns: t.columns.clone(),
            labels: t.labels.clone(),
        })
        .collect();
    Ok(Some(Source {
        system,
        tables,
        reader: Reader::Sql {
            target,
            subject,
            dataset,
        },
    }))
}

/// The systems whose tasks are done: databases connected, with the subject found again (the
/// data is read now, not kept from the task: a SQL task records counts only); HTTP systems with
/// the rows they answered. Manual tasks add nothing to the file.
fn sources<'a>(
    s: &Services,
    registry: &'a Registry,
    r: &StoredRequest,
) -> Result<Vec<Source<'a>>, FulfilError> {
    let all = tasks::for_request(&mut *s.db().conn().map_err(ServiceError::from)?, &r.id)?;
    let mut out = vec![];
    for t in all.iter().filter(|t| t.task.status == DONE) {
        let Some(system) = registry.find(&t.task.system) else {
            continue;
        };
        match &system.connector {
            Connector::Sql { .. } => out.extend(sql_source(system, r)?),
            Connector::Http(_) => {
                let v: Value = serde_json::from_str(t.task.result.as_deref().unwrap_or("{}"))
                    .map_err(|e| FulfilError::Permanent(e.to_string()))?;
                let tables: Vec<TableRows> = serde_json::from_value(v["tables"].clone())
                    .map_err(|e| FulfilError::Permanent(e.to_string()))?;
                out.push(Source {
                    system,
                    tables: tables
                        .iter()
                        .map(|t| TableView {
                            name: t.table.clone(),
                            columns: t.categories.clone(),
                            labels: t.labels.clone(),
                        })
                        .collect(),
                    reader: Reader::Rows(tables),
                });
            }
            Connector::Manual { .. } => {}
        }
    }
    Ok(out)
}

/// Builds the request's result (unless an earlier run did) and keeps it for the subject.
pub fn build(
    s: &Services,
    registry: &Registry,
    r: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<(), FulfilError> {
    let access = r.state.kind == RequestKind::Access;
    let (file_name, content_type) = if access {
        (
            format!("{}-access-report.html", r.reference),
            "text/html; charset=utf-8",
        )
    } else {
        (format!("{}-package.zip", r.reference), "application/zip")
    };
    // Built already (the worker died before completing the request): complete only.
    if results::live(s, r, now)?
        .iter()
        .any(|m| m.file_name == file_name)
    {
        return Ok(());
    }
    let mut sources = sources(s, registry, r)?;
    let writer = SealedWriter::new(s.db(), s.data_key(), now);
    let writer = if access {
        access_report(writer, r, &mut sources, now)?
    } else {
        package(writer, r, &mut sources, now)?
    };
    let sealed = writer.finish()?;
    let size = sealed.size;
    // One id per request for the built result: if a second worker built it too (a build that
    // outlasted its lease), only one row is kept; the other's chunks are purged a day later.
    let digest = sha2::Sha256::digest(format!("built-result:{}", r.id).as_bytes());
    let id = uuid::Uuid::from_slice(&digest[..16])
        .map(|u| u.to_string())
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
    let file = results::ResultFile {
        id: Some(id),
        file_name: &file_name,
        content_type,
        created_by: BUILDER,
    };
    match results::keep(s, r, file, sealed, now) {
        Ok(_) => {}
        Err(ServiceError::Store(crate::storage::StoreError::Duplicate(_))) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(reference = %r.reference, size, "result built");
    Ok(())
}

/// Writes the portability package of `r` from `systems` into sealed storage, without keeping
/// it as a result: what `build` does once the tasks are done, for the benchmark.
pub fn seal_package(
    s: &Services,
    systems: &[&System],
    r: &StoredRequest,
    now: DateTime<Utc>,
) -> Result<crate::storage::blobs::Sealed, FulfilError> {
    let mut sources = vec![];
    for system in systems {
        sources.extend(sql_source(system, r)?);
    }
    let writer = package(
        SealedWriter::new(s.db(), s.data_key(), now),
        r,
        &mut sources,
        now,
    )?;
    Ok(writer.finish()?)
}

/// The access report: categories in the order of their names, then systems and tables.
fn access_report(
    w: SealedWriter,
    r: &StoredRequest,
    sources: &mut [Source],
    now: DateTime<Utc>,
) -> Result<SealedWriter, FulfilError> {
    let asked = categories(r);
    let mut report = AccessReport::begin(w, r, now).map_err(io_error)?;
    let mut held: Vec<(String, DataCategory)> = DataCategory::ALL
        .iter()
        .filter(|c| asked.is_empty() || asked.contains(c))
        .filter(|c| {
            sources.iter().any(|src| {
                src.tables
                    .iter()
                    .any(|t| t.columns.values().any(|x| x == *c))
            })
        })
        .map(|c| (report.category_label(*c), *c))
        .collect();
    held.sort();
    for (label, category) in &held {
        report.category(label).map_err(io_error)?;
        for src in sources.iter_mut() {
            for i in 0..src.tables.len() {
                let table = &src.tables[i];
                let columns: Vec<String> = table
                    .columns_in(&[*category])
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if columns.is_empty() {
                    continue;
                }
                let headings = columns
                    .iter()
                    .map(|c| table.labels.get(c).cloned().unwrap_or_else(|| c.clone()))
                    .collect();
                report
                    .table(&src.system.label, &table.name, headings)
                    .map_err(io_error)?;
                let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
                src.each_row(i, &cols, |row| {
                    report.row(cols.iter().map(|c| &row[*c])).map_err(io_error)
                })?;
                report.end_table().map_err(io_error)?;
            }
        }
    }
    report.finish(held.is_empty()).map_err(io_error)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
fn csv_field(v: &Value) -> String {
    let text = match v {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_line(w: &mut impl Write, fields: impl Iterator<Item = String>) -> io::Result<()> {
    let line: Vec<String> = fields.collect();
    w.write_all(line.join(",").as_bytes())?;
    w.write_all(b"\r\n")
}

const README_ZH: &str =
    "这是您依据《个人信息保护法》第四十五条申请转移（可携带）的个人信息副本。\r\n\
systems/<系统>.json：每个系统一个文件，机器可读（格式见 schema/system.schema.json）；\r\n\
systems/<系统>/<数据表>.csv：同样的数据，每张表一个 CSV 文件（UTF-8）；\r\n\
manifest.json：每个文件的大小和 SHA-256 校验值，以及每张表的记录数。\r\n";
const README_EN: &str =
    "This is the copy of your personal information you asked to receive (data portability).\r\n\
systems/<system>.json: one file a system, machine-readable (format: schema/system.schema.json);\r\n\
systems/<system>/<table>.csv: the same data, one CSV file a table (UTF-8);\r\n\
manifest.json: every file's size and SHA-256 checksum, and each table's number of records.\r\n";

/// The portability package.
fn package(
    w: SealedWriter,
    r: &StoredRequest,
    sources: &mut [Source],
    now: DateTime<Utc>,
) -> Result<SealedWriter, FulfilError> {
    let asked = categories(r);
    let mut zip = ZipStream::new(w, now);
    let mut files: Vec<EntryInfo> = vec![];
    let mut systems = vec![];
    zip.start("README.txt").map_err(io_error)?;
    let readme = match r.locale {
        Locale::ZhCn => format!("{README_ZH}\r\n{README_EN}"),
        Locale::En => format!("{README_EN}\r\n{README_ZH}"),
    };
    zip.write_all(readme.as_bytes()).map_err(io_error)?;
    files.push(zip.end().map_err(io_error)?);
    zip.start("schema/system.schema.json").map_err(io_error)?;
    zip.write_all(SYSTEM_SCHEMA.as_bytes()).map_err(io_error)?;
    files.push(zip.end().map_err(io_error)?);
    for src in sources.iter_mut() {
        // (index, name, columns asked for, its head in the JSON) of the tables with any.
        let tables: Vec<(usize, String, Vec<String>, Value)> = src
            .tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let columns: Vec<String> = t.columns_in(&asked).into_iter().map(str::to_owned).collect();
                (!columns.is_empty()).then(|| {
                    let head = json!({
                        "table": t.name,
                        "categories": columns.iter().map(|c| (c.clone(), json!(t.columns[c]))).collect::<serde_json::Map<_, _>>(),
                        "labels": columns.iter().filter_map(|c| Some((c.clone(), json!(t.labels.get(c)?)))).collect::<serde_json::Map<_, _>>(),
                    });
                    (i, t.name.clone(), columns, head)
                })
            })
            .collect();
        // The system's JSON: written as the rows come.
        zip.start(&format!("systems/{}.json", src.system.name))
            .map_err(io_error)?;
        let head = json!({ "format": PACKAGE_FORMAT, "system": src.system.name, "label": src.system.label });
        let head = head.to_string();
        zip.write_all(&head.as_bytes()[..head.len() - 1])
            .map_err(io_error)?;
        zip.write_all(b",\"tables\":[").map_err(io_error)?;
        let mut counts = vec![];
        for (n, (i, name, columns, meta)) in tables.iter().enumerate() {
            let meta = meta.to_string();
            if n > 0 {
                zip.write_all(b",").map_err(io_error)?;
            }
            zip.write_all(&meta.as_bytes()[..meta.len() - 1])
                .map_err(io_error)?;
            zip.write_all(b",\"rows\":[\n").map_err(io_error)?;
            let mut first = true;
            let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
            let rows = src.each_row(*i, &cols, |row| {
                if !std::mem::take(&mut first) {
                    zip.write_all(b",\n").map_err(io_error)?;
                }
                serde_json::to_writer(&mut zip, &row)
                    .map_err(|e| FulfilError::Transient(e.to_string()))
            })?;
            zip.write_all(b"]}").map_err(io_error)?;
            counts.push(json!({ "table": name, "rows": rows }));
        }
        zip.write_all(b"]}\n").map_err(io_error)?;
        files.push(zip.end().map_err(io_error)?);
        // The same rows, a CSV file a table.
        for (i, name, columns, _) in &tables {
            zip.start(&format!("systems/{}/{name}.csv", src.system.name))
                .map_err(io_error)?;
            // A byte-order mark, so spreadsheet programs read the Chinese text as UTF-8.
            zip.write_all("\u{feff}".as_bytes()).map_err(io_error)?;
            csv_line(&mut zip, columns.iter().cloned()).map_err(io_error)?;
            let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
            src.each_row(*i, &cols, |row| {
                csv_line(&mut zip, cols.iter().map(|c| csv_field(&row[*c]))).map_err(io_error)
            })?;
            files.push(zip.end().map_err(io_error)?);
        }
        systems.push(
            json!({ "system": src.system.name, "label": src.system.label, "tables": counts }),
        );
    }
    let manifest = json!({
        "format": PACKAGE_FORMAT,
        "reference": r.reference.as_str(),
        "created_at": now.to_rfc3339(),
        "systems": systems,
        "files": files.iter().map(|f| json!({ "name": f.name, "size": f.size, "sha256": f.sha256 })).collect::<Vec<_>>(),
    });
    zip.start("manifest.json").map_err(io_error)?;
    serde_json::to_writer_pretty(&mut zip, &manifest)
        .map_err(|e| FulfilError::Transient(e.to_string()))?;
    zip.end().map_err(io_error)?;
    zip.finish().map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field(&json!("李雷")), "李雷");
        assert_eq!(csv_field(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_field(&json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(&json!("two\nlines")), "\"two\nlines\"");
        assert_eq!(csv_field(&Value::Null), "");
        assert_eq!(csv_field(&json!(12)), "12");
    }

    #[test]
    fn the_schema_is_json() {
        let v: Value = serde_json::from_str(SYSTEM_SCHEMA).expect("schema parses");
        assert_eq!(v["properties"]["format"]["const"], PACKAGE_FORMAT);
    }
}

//! The access report: a readable, printable HTML page grouped by category, saying where each
//! item came from, written row by row (`package.rs` feeds it from the systems).

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::details::DataCategory;
use crate::domain::Locale;
use crate::storage::rows::StoredRequest;
use crate::web::portal::page::{word_in, Area};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// A plain, printable look (the file is opened from the subject's own disk).
const STYLE: &str = "body{font-family:system-ui,'PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2933;line-height:1.5}\
h2{margin-top:2rem;border-bottom:2px solid #1f6feb;padding-bottom:.25rem}h3{font-size:1rem;color:#52606d}\
table{border-collapse:collapse;width:100%;margin-bottom:1rem;font-size:.9rem}th,td{border:1px solid #cbd2d9;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#f0f4f8}@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}";

/// The access report, written as the rows arrive: for each category, each system and table
/// that holds it, the columns of that category for every row. Self-contained (no script, no
/// outside style), to read or print.
pub struct AccessReport<W: Write> {
    w: W,
    zh: bool,
    /// The current table's headings, written before its first row.
    headings: Vec<String>,
    rows: usize,
}

impl<W: Write> AccessReport<W> {
    pub fn begin(mut w: W, r: &StoredRequest, at: DateTime<Utc>) -> io::Result<Self> {
        let zh = r.locale == Locale::ZhCn;
        let t = |zh_text: &'static str, en_text: &'static str| if zh { zh_text } else { en_text };
        let lang = if zh { "zh-CN" } else { "en" };
        let title = t("个人信息查阅报告", "Personal information access report");
        write!(
            w,
            "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} {reference}</title>\
             <style>{STYLE}</style></head><body>\
             <h1>{title}</h1><p>{req}: <strong>{reference}</strong> · {made}: {at}</p>\
             <p>{lead}</p>",
            reference = esc(r.reference.as_str()),
            req = t("请求编号", "Request"),
            made = t("生成时间（UTC）", "Made at (UTC)"),
            at = at.format("%Y-%m-%d %H:%M"),
            lead = t(
                "以下是我们在各系统中保存的关于您的个人信息，按信息类别分组，并注明来源系统和数据表。",
                "Below is the personal information we hold about you in each system, grouped by category, with the system and table it came from."
            ),
        )?;
        Ok(AccessReport {
            w,
            zh,
            headings: vec![],
            rows: 0,
        })
    }

    /// The name of a category in the report's language.
    pub fn category_label(&self, category: DataCategory) -> String {
        let locale = if self.zh { Locale::ZhCn } else { Locale::En };
        word_in(
            Area::Portal,
            locale,
            &format!("options.categories.{}", category.as_str()),
        )
    }

    pub fn category(&mut self, label: &str) -> io::Result<()> {
        write!(self.w, "<h2>{}</h2>", esc(label))
    }

    /// Starts one system's table under the current category, with its column headings.
    pub fn table(&mut self, system: &str, table: &str, headings: Vec<String>) -> io::Result<()> {
        self.headings = headings;
        self.rows = 0;
        write!(self.w, "<h3>{} · {}</h3>", esc(system), esc(table))
    }

    /// One row: the values in the order of the headings.
    pub fn row<'v>(&mut self, values: impl Iterator<Item = &'v Value>) -> io::Result<()> {
        if self.rows == 0 {
            self.w.write_all(b"<table><thead><tr>")?;
            for h in &self.headings {
                write!(self.w, "<th scope=\"col\">{}</th>", esc(h))?;
            }
            self.w.write_all(b"</tr></thead><tbody>")?;
        }
        self.rows += 1;
        self.w.write_all(b"<tr>")?;
        for v in values {
            write!(self.w, "<td>{}</td>", cell(v))?;
        }
        self.w.write_all(b"</tr>")
    }

    pub fn end_table(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            let none = if self.zh {
                "没有记录。"
            } else {
                "No records."
            };
            write!(self.w, "<p>{none}</p>")
        } else {
            self.w.write_all(b"</tbody></table>")
        }
    }

    /// Ends the page; `empty` when no system held any category asked for.
    pub fn finish(mut self, empty: bool) -> io::Result<W> {
        if empty {
            let none = if self.zh {
                "我们没有找到关于您的个人信息。"
            } else {
                "We found no personal information about you."
            };
            write!(self.w, "<p>{none}</p>")?;
        }
        self.w.write_all(b"</body></html>")?;
        Ok(self.w)
    }
}

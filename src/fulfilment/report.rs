//! What the subject downloads: the access report (a readable, printable HTML page grouped by
//! category, saying where each item came from) and the portability export (JSON: one object a
//! system, each table's rows, with a documented shape).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::sql::TableRows;
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

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// A plain, printable look (the file is opened from the subject's own disk).
const STYLE: &str = "body{font-family:system-ui,'PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2933;line-height:1.5}\
h2{margin-top:2rem;border-bottom:2px solid #1f6feb;padding-bottom:.25rem}h3{font-size:1rem;color:#52606d}\
table{border-collapse:collapse;width:100%;margin-bottom:1rem;font-size:.9rem}th,td{border:1px solid #cbd2d9;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#f0f4f8}@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}";

/// The access report: for each category, each system and table that holds it, the columns of
/// that category for every row. Self-contained (no script, no outside style), to read or print.
pub fn access_html(
    r: &StoredRequest,
    found: &[(String, Vec<TableRows>)],
    at: DateTime<Utc>,
) -> String {
    let zh = r.locale == Locale::ZhCn;
    let t = |zh_text: &str, en_text: &str| {
        if zh {
            zh_text.to_owned()
        } else {
            en_text.to_owned()
        }
    };
    let mut by_category: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (system, tables) in found {
        for table in tables {
            let mut cats: Vec<DataCategory> = table.categories.values().copied().collect();
            cats.sort_by_key(|c| c.as_str());
            cats.dedup();
            for cat in cats {
                let columns: Vec<&String> = table
                    .categories
                    .iter()
                    .filter(|(_, c)| **c == cat)
                    .map(|(n, _)| n)
                    .collect();
                let mut html = format!("<h3>{} · {}</h3>", esc(system), esc(&table.table));
                if table.rows.is_empty() {
                    html.push_str(&format!("<p>{}</p>", t("没有记录。", "No records.")));
                } else {
                    html.push_str("<table><thead><tr>");
                    for c in &columns {
                        let label = table.labels.get(*c).unwrap_or(c);
                        html.push_str(&format!("<th scope=\"col\">{}</th>", esc(label)));
                    }
                    html.push_str("</tr></thead><tbody>");
                    for row in &table.rows {
                        html.push_str("<tr>");
                        for c in &columns {
                            html.push_str(&format!("<td>{}</td>", cell(&row[c.as_str()])));
                        }
                        html.push_str("</tr>");
                    }
                    html.push_str("</tbody></table>");
                }
                let label = word_in(
                    Area::Portal,
                    r.locale,
                    &format!("options.categories.{}", cat.as_str()),
                );
                by_category.entry(label).or_default().push(html);
            }
        }
    }
    let lang = if zh { "zh-CN" } else { "en" };
    let title = t("个人信息查阅报告", "Personal information access report");
    let mut out = format!(
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
    );
    if by_category.is_empty() {
        out.push_str(&format!(
            "<p>{}</p>",
            t(
                "我们没有找到关于您的个人信息。",
                "We found no personal information about you."
            )
        ));
    }
    for (label, sections) in by_category {
        out.push_str(&format!("<h2>{}</h2>", esc(&label)));
        for s in sections {
            out.push_str(&s);
        }
    }
    out.push_str("</body></html>");
    out
}

/// The portability export. Shape (documented in docs/FULFILMENT.md):
/// `{ "format": "rightsflow-export/1", "reference", "created_at", "systems": [ { "system",
/// "tables": [ { "table", "categories": {column: category}, "rows": [ {column: value} ] } ] } ] }`.
pub fn portability_json(
    r: &StoredRequest,
    found: &[(String, Vec<TableRows>)],
    at: DateTime<Utc>,
) -> String {
    let systems: Vec<serde_json::Value> = found
        .iter()
        .map(|(system, tables)| json!({ "system": system, "tables": tables }))
        .collect();
    let doc = json!({
        "format": "rightsflow-export/1",
        "reference": r.reference.as_str(),
        "created_at": at.to_rfc3339(),
        "systems": systems,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

//! The dashboard: open requests by status and kind, due this week, overdue, the on-time rate
//! and median time to close per kind over a chosen period, and requests received per week as
//! an SVG drawn on the server (no script).

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::session::{finish, page_for, signed_in};
use super::Tpl;
use crate::domain::{RequestKind, Status};
use crate::service::{now, Services};
use crate::storage::reports;
use crate::web::error::blocking;
use crate::web::portal::page::web_query;

/// The period's figures for one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct KindFigures {
    pub answered: usize,
    pub on_time: usize,
    /// Median days from receipt to the answer.
    pub median_days: Option<f64>,
}

/// On-time counts and medians per kind from (kind, received, closed, due) rows. A request
/// without a due date (its clock never started) counts as answered, not as on time or late.
pub fn per_kind(rows: &[reports::Closed], kind: &str) -> KindFigures {
    let mine: Vec<&reports::Closed> = rows.iter().filter(|r| r.0 == kind).collect();
    let on_time = mine
        .iter()
        .filter(|(_, _, closed, due)| matches!((closed, due), (Some(c), Some(d)) if c <= d))
        .count();
    let mut days: Vec<f64> = mine
        .iter()
        .filter_map(|(_, received, closed, _)| {
            closed.map(|c| (c - *received).num_seconds() as f64 / 86_400.0)
        })
        .collect();
    days.sort_by(f64::total_cmp);
    let median_days = match days.len() {
        0 => None,
        n if n % 2 == 1 => Some(days[n / 2]),
        n => Some((days[n / 2 - 1] + days[n / 2]) / 2.0),
    };
    KindFigures {
        answered: mine.len(),
        on_time,
        median_days,
    }
}

/// Requests received per week (weeks start on Monday in `tz`), every week of the period
/// present, empty ones as 0.
pub fn weekly(
    received: &[NaiveDateTime],
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
) -> Vec<(NaiveDate, usize)> {
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let mut weeks: Vec<(NaiveDate, usize)> = vec![];
    let mut w = monday(from);
    while w <= to {
        weeks.push((w, 0));
        w += Duration::days(7);
    }
    for t in received {
        let local = Utc.from_utc_datetime(t).with_timezone(&tz).date_naive();
        let start = monday(local);
        if let Some(slot) = weeks.iter_mut().find(|(w, _)| *w == start) {
            slot.1 += 1;
        }
    }
    weeks
}

/// A bar chart of the weeks, as an SVG element with a title and one labelled bar per week.
pub fn bar_chart(weeks: &[(NaiveDate, usize)], title: &str) -> String {
    let (width, height, left, bottom, top) = (720.0_f64, 220.0_f64, 36.0_f64, 28.0_f64, 12.0_f64);
    let max = weeks.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let slot = (width - left) / weeks.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{}</title>"##,
        esc(title)
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{}" x2="{width}" y2="{}" stroke="#52606d" stroke-width="1"/>"##,
        height - bottom,
        height - bottom
    );
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" fill="#52606d" text-anchor="end">{}</text>"##,
        left - 4.0,
        top + 8.0,
        max as usize
    );
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="11" fill="#52606d" text-anchor="end">0</text>"##,
        left - 4.0,
        height - bottom
    );
    let label_every = (weeks.len() / 8).max(1);
    for (i, (week, n)) in weeks.iter().enumerate() {
        let h = (height - bottom - top) * (*n as f64) / max;
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let y = height - bottom - h;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="#1f6feb"><title>{}: {n}</title></rect>"##,
            week.format("%Y-%m-%d")
        );
        if i % label_every == 0 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{}" font-size="10" fill="#52606d" text-anchor="middle">{}</text>"##,
                x + bar / 2.0,
                height - bottom + 14.0,
                week.format("%m-%d")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn date_param(req: &HttpRequest, key: &str) -> Option<NaiveDate> {
    web_query(req, key).and_then(|d| d.parse().ok())
}

pub async fn dashboard(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let page = page_for(&req, &user);
    let at = now();
    let tz = page.tz;
    let today = at.with_timezone(&tz).date_naive();
    let to_day = date_param(&req, "to").unwrap_or(today);
    let from_day = date_param(&req, "from").unwrap_or(to_day - Duration::days(90));
    let bad_period = from_day > to_day || (to_day - from_day).num_days() > 3660;
    let start_of = |d: NaiveDate| -> DateTime<Utc> {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map_or(at, |t| t.with_timezone(&Utc))
    };
    let (from, to) = (start_of(from_day), start_of(to_day + Duration::days(1)));
    // This week: Monday 00:00 to next Monday 00:00 in the viewer's zone.
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let (week_start, week_end) = (start_of(monday), start_of(monday + Duration::days(7)));
    let services = s.clone();
    let loaded = blocking(move || {
        let mut conn = services.db().conn()?;
        let open = reports::open_by_status_and_kind(&mut conn)?;
        let due_week = reports::open_due_between(&mut conn, Some(week_start.max(at)), week_end)?;
        let overdue = reports::open_due_between(&mut conn, None, at)?;
        let answered = if bad_period {
            vec![]
        } else {
            reports::answered_between(&mut conn, from, to)?
        };
        let received = if bad_period {
            vec![]
        } else {
            reports::received_between(&mut conn, from, to)?
        };
        Ok((open, due_week, overdue, answered, received))
    })
    .await;
    let (open, due_week, overdue, answered, received) = match loaded {
        Ok(v) => v,
        Err(e) => return super::error_page(&page, &n, &user, &e),
    };
    let open_statuses: Vec<Status> = Status::ALL
        .iter()
        .copied()
        .filter(|s| !s.is_final())
        .collect();
    let matrix: Vec<Value> = RequestKind::ALL
        .iter()
        .map(|k| {
            let cells: Vec<i64> = open_statuses
                .iter()
                .map(|st| open.iter().find(|(s, kk, _)| s == st.as_str() && kk == k.as_str()).map_or(0, |r| r.2))
                .collect();
            json!({ "kind": super::label(&page, *k), "cells": cells, "total": cells.iter().sum::<i64>() })
        })
        .collect();
    let figures: Vec<Value> = RequestKind::ALL
        .iter()
        .map(|k| {
            let f = per_kind(&answered, k.as_str());
            json!({
                "kind": super::label(&page, *k),
                "answered": f.answered,
                "on_time": if f.answered == 0 { "—".to_owned() } else { format!("{:.0}%", 100.0 * f.on_time as f64 / f.answered as f64) },
                "median": f.median_days.map_or("—".to_owned(), |d| page.t("dashboard.days").replace("{n}", &format!("{d:.1}"))),
            })
        })
        .collect();
    let weeks = weekly(&received, from_day, to_day, tz);
    let chart = bar_chart(&weeks, &page.t("dashboard.chart_title"));
    let title = page.t("dashboard.title");
    let ctx = json!({
        "statuses": open_statuses.iter().map(|s| super::status_label(&page, *s)).collect::<Vec<_>>(),
        "matrix": matrix,
        "open_total": open.iter().map(|r| r.2).sum::<i64>(),
        "due_week": due_week,
        "overdue": overdue,
        "figures": figures,
        "chart": chart,
        "from": from_day.to_string(),
        "to": to_day.to_string(),
        "bad_period": bad_period.then(|| page.t("dashboard.bad_period")),
        "received_total": received.len(),
    });
    let status = if bad_period {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    finish(page.render(&n, status, "dashboard", &title, ctx), &user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap_or_default()
    }

    #[test]
    fn on_time_rate_and_median_per_kind() {
        let rows: Vec<reports::Closed> = vec![
            (
                "access".into(),
                t("2026-11-02 00:00"),
                Some(t("2026-11-03 00:00")),
                Some(t("2026-11-20 00:00")),
            ),
            (
                "access".into(),
                t("2026-11-02 00:00"),
                Some(t("2026-11-05 00:00")),
                Some(t("2026-11-04 00:00")),
            ),
            (
                "access".into(),
                t("2026-11-02 00:00"),
                Some(t("2026-11-12 00:00")),
                None,
            ),
            (
                "deletion".into(),
                t("2026-11-02 00:00"),
                Some(t("2026-11-04 00:00")),
                Some(t("2026-11-04 00:00")),
            ),
        ];
        let access = per_kind(&rows, "access");
        assert_eq!((access.answered, access.on_time), (3, 1));
        assert_eq!(access.median_days, Some(3.0));
        let deletion = per_kind(&rows, "deletion");
        assert_eq!(
            (deletion.answered, deletion.on_time, deletion.median_days),
            (1, 1, Some(2.0))
        );
        assert_eq!(per_kind(&rows, "complaint").median_days, None);
    }

    #[test]
    fn weeks_start_on_monday_in_the_viewers_zone_and_empty_weeks_show() {
        let from = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap_or_default();
        let to = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default();
        // Sunday 20:00 UTC is already Monday in Shanghai.
        let received = vec![
            t("2026-11-08 20:00"),
            t("2026-11-10 03:00"),
            t("2026-11-24 10:00"),
        ];
        let weeks = weekly(&received, from, to, chrono_tz::Asia::Shanghai);
        let counts: Vec<(String, usize)> = weeks.iter().map(|(d, n)| (d.to_string(), *n)).collect();
        assert_eq!(
            counts,
            vec![
                ("2026-11-02".into(), 0),
                ("2026-11-09".into(), 2),
                ("2026-11-16".into(), 0),
                ("2026-11-23".into(), 1)
            ]
        );
        let svg = bar_chart(&weeks, "每周收到的请求 <测试>");
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("&lt;测试&gt;") && !svg.contains("<script"));
    }
}

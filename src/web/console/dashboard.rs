//! The dashboard: open requests by status and kind, due this week, overdue, the on-time rate
//! and median time to close per kind over a chosen period, and requests received per week as
//! an SVG drawn on the server (no script).

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use super::session::{finish, page_for, signed_in};
use super::Tpl;
use crate::domain::{RequestKind, Status};
use crate::service::{now, Services};
use crate::storage::{report_days, reports};
use crate::web::error::blocking;
use crate::web::portal::page::web_query;

/// The period's figures for one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct KindFigures {
    pub answered: usize,
    /// Answered requests that had a due date: the on-time rate's denominator.
    pub with_due: usize,
    pub on_time: usize,
    /// Median days from receipt to the answer.
    pub median_days: Option<f64>,
}

/// On-time counts and the median per kind, from the buckets of whole hours to an answer. A
/// request without a due date (its clock never started) counts as answered, and is left out
/// of the on-time rate (neither on time nor late). The median is to the hour.
pub fn per_kind(buckets: &[reports::AnsweredBucket], kind: &str) -> KindFigures {
    let mut mine: Vec<&reports::AnsweredBucket> =
        buckets.iter().filter(|b| b.kind == kind).collect();
    mine.sort_by_key(|b| b.hours);
    let answered: i64 = mine.iter().map(|b| b.n).sum();
    // The value at (1-based) rank r in the sorted distribution.
    let at_rank = |r: i64| {
        let mut seen = 0;
        mine.iter().find_map(|b| {
            seen += b.n;
            (seen >= r).then_some(b.hours as f64)
        })
    };
    let median_hours = match answered {
        0 => None,
        n if n % 2 == 1 => at_rank(n / 2 + 1),
        n => at_rank(n / 2)
            .zip(at_rank(n / 2 + 1))
            .map(|(a, b)| (a + b) / 2.0),
    };
    KindFigures {
        answered: answered as usize,
        with_due: mine.iter().map(|b| b.with_due).sum::<i64>() as usize,
        on_time: mine.iter().map(|b| b.on_time).sum::<i64>() as usize,
        median_days: median_hours.map(|h| h / 24.0),
    }
}

/// The Mondays of the weeks that meet the period `[from, to]`.
pub fn weeks_of(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let mut weeks = vec![];
    let mut w = monday(from);
    while w <= to {
        weeks.push(w);
        w += Duration::days(7);
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

/// A date from the query: absent, a date, or not a date (Err).
fn date_param(req: &HttpRequest, key: &str) -> Result<Option<NaiveDate>, ()> {
    match web_query(req, key).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => d.parse().map(Some).map_err(|_| ()),
    }
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
    let (to_param, from_param) = (date_param(&req, "to"), date_param(&req, "from"));
    let to_day = to_param.ok().flatten().unwrap_or(today);
    let from_day = from_param
        .ok()
        .flatten()
        .unwrap_or(to_day - Duration::days(90));
    let bad_period = to_param.is_err()
        || from_param.is_err()
        || from_day > to_day
        || (to_day - from_day).num_days() > 3660;
    let start_of = |d: NaiveDate| -> DateTime<Utc> {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map_or(at, |t| t.with_timezone(&Utc))
    };
    let (from, to) = (start_of(from_day), start_of(to_day + Duration::days(1)));
    // "Due soon": the next 7 days from now, as the queue's `due_within=7` (overdue apart).
    let week_end = at + Duration::days(7);
    // The chart's weeks, Monday to Monday in the viewer's zone, clipped to the period.
    let weeks = weeks_of(from_day, to_day);
    let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = weeks
        .iter()
        .map(|w| {
            (
                start_of(*w).max(from),
                start_of(*w + Duration::days(7)).min(to),
            )
        })
        .collect();
    // Two groups of queries on two pooled connections at once: the period's answers (the
    // largest read) beside everything else. Both are reads, so neither waits for the other.
    let services = s.clone();
    let open_figures = blocking(move || {
        let (reading, keep_on) = services.reports_db();
        let mut conn = reading.conn()?;
        let open = reports::open_by_status_and_kind(&mut conn)?;
        let due_week = reports::open_due_between(&mut conn, Some(at), week_end)?;
        let overdue = crate::storage::tallies::overdue(&mut conn, at)?;
        let received = if bad_period {
            vec![]
        } else {
            report_days::received(&mut conn, keep_on, &windows, at)?
        };
        Ok((open, due_week, overdue, received))
    });
    let services = s.clone();
    let period_figures = blocking(move || {
        if bad_period {
            return Ok(vec![]);
        }
        let (reading, keep_on) = services.reports_db();
        Ok(report_days::answered(
            &mut *reading.conn()?,
            keep_on,
            services.answered_cache(),
            from,
            to,
            at,
        )?)
    });
    let (open, due_week, overdue, answered, received) =
        match tokio::join!(open_figures, period_figures) {
            (Ok((open, due_week, overdue, received)), Ok(answered)) => {
                (open, due_week, overdue, answered, received)
            }
            (Err(e), _) | (_, Err(e)) => return super::error_page(&page, &n, &user, &e),
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
                "on_time": if f.with_due == 0 { "—".to_owned() } else { format!("{:.0}%", 100.0 * f.on_time as f64 / f.with_due as f64) },
                "median": f.median_days.map_or("—".to_owned(), |d| page.t("dashboard.days").replace("{n}", &format!("{d:.1}"))),
            })
        })
        .collect();
    let received_total: i64 = received.iter().sum();
    let weeks: Vec<(NaiveDate, usize)> = weeks
        .into_iter()
        .zip(
            received
                .iter()
                .map(|n| *n as usize)
                .chain(std::iter::repeat(0)),
        )
        .collect();
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
        "received_total": received_total,
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

    fn bucket(
        kind: &str,
        hours: i64,
        n: i64,
        with_due: i64,
        on_time: i64,
    ) -> reports::AnsweredBucket {
        reports::AnsweredBucket {
            kind: kind.into(),
            hours,
            n,
            with_due,
            on_time,
        }
    }

    #[test]
    fn on_time_rate_and_median_per_kind() {
        let buckets = vec![
            bucket("access", 24, 1, 1, 1),
            bucket("access", 72, 1, 1, 0),
            bucket("access", 240, 1, 0, 0),
            bucket("deletion", 48, 1, 1, 1),
            bucket("deletion", 96, 1, 1, 1),
        ];
        let access = per_kind(&buckets, "access");
        assert_eq!(
            (access.answered, access.with_due, access.on_time),
            (3, 2, 1)
        );
        assert_eq!(access.median_days, Some(3.0));
        let deletion = per_kind(&buckets, "deletion");
        assert_eq!(
            (deletion.answered, deletion.with_due, deletion.on_time),
            (2, 2, 2)
        );
        assert_eq!(
            deletion.median_days,
            Some(3.0),
            "the mean of the two middle values"
        );
        assert_eq!(per_kind(&buckets, "complaint").median_days, None);
    }

    #[test]
    fn weeks_start_on_monday_and_the_chart_draws_each() {
        let from = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap_or_default();
        let to = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default();
        let weeks: Vec<String> = weeks_of(from, to).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            weeks,
            vec!["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
        );
        let counted: Vec<(NaiveDate, usize)> =
            weeks_of(from, to).into_iter().zip([0, 2, 0, 1]).collect();
        let svg = bar_chart(&counted, "每周收到的请求 <测试>");
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("2026-11-09: 2"));
        assert!(svg.contains("&lt;测试&gt;") && !svg.contains("<script"));
    }
}

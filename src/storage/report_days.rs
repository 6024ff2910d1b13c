//! The dashboard's figures for days that can no longer change, counted once and kept.
//!
//! A day (UTC) is *final* an hour after it ends: nothing answered or received later can be
//! dated in it (`closed_at` is the moment of the answer; `received_at` is only back-dated by
//! staff logging a phone call or letter, and such an insert drops that day's row, see
//! [`forget_received`]). For a final day the dashboard reads one small row instead of
//! recounting its requests: `report_answered_days` holds the day's answers grouped by kind
//! and whole hours to the answer, `report_received_days` the requests received in each of its
//! 24 hours. Rows are made the first time a dashboard needs them, by whichever instance gets
//! there first (a duplicate insert is ignored). What is not final, and the parts of a period
//! that do not cover whole days or hours, is counted live.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeZone, Timelike, Utc};
use diesel::prelude::*;

use super::reports::{self, AnsweredBucket};
use super::schema::{report_answered_days, report_received_days};
use super::{Database, DbConnection, StoreError};

/// How long after its end a day is taken as final.
const GRACE: Duration = Duration::hours(1);

/// The end of the final past: the start of the last UTC day that is not final yet.
pub fn final_end(now: DateTime<Utc>) -> DateTime<Utc> {
    day_start((now - GRACE).date_naive())
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// `[from, to)` split at `unit` boundaries: (the whole units inside it that end by
/// `final_end`, the leftover ranges before and after them).
type Split = (
    Option<(DateTime<Utc>, DateTime<Utc>)>,
    Vec<(DateTime<Utc>, DateTime<Utc>)>,
);

fn split(from: DateTime<Utc>, to: DateTime<Utc>, unit: Duration, fin: DateTime<Utc>) -> Split {
    let floor = |t: DateTime<Utc>| t.duration_trunc(unit).unwrap_or(t);
    let ceil = |t: DateTime<Utc>| {
        let f = floor(t);
        if f == t {
            t
        } else {
            f + unit
        }
    };
    let (a, b) = (ceil(from), floor(to).min(fin));
    if a >= b {
        return (None, vec![(from, to)]);
    }
    let edges = [(from, a), (b, to)]
        .into_iter()
        .filter(|(x, y)| x < y)
        .collect();
    (Some((a, b)), edges)
}

fn days_in(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<NaiveDate> {
    let mut days = vec![];
    let mut d = from.date_naive();
    while day_start(d) < to {
        days.push(d);
        d += Duration::days(1);
    }
    days
}

/// Keeps a counted day: on `conn`, or on `keep_on` when `conn` reads a replica (which refuses
/// writes; the row reaches the replica as every other write does).
fn insert_ignoring_duplicates<F>(
    conn: &mut DbConnection,
    keep_on: Option<&Database>,
    insert: F,
) -> Result<(), StoreError>
where
    F: FnOnce(&mut DbConnection) -> QueryResult<usize>,
{
    let inserted = match keep_on {
        Some(primary) => {
            let mut on_primary = primary.conn()?;
            insert(&mut on_primary)
        }
        None => insert(conn),
    };
    match inserted {
        Ok(_) => Ok(()),
        // Another instance counted the same day first: its row is as good as ours.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The answered requests of `[from, to)` as buckets by kind and hours: final whole days from
/// their rows (made now where missing), the rest counted live.
/// The summed buckets of runs of final days, by (first day, day after the last), kept in this
/// process's memory for one database. A final day's answers never change (see the module's
/// comment), so neither does a run's sum, whichever instance counted it: this is a cache of
/// facts, not state. Reading and adding up 90 kept days (~1 MB of text) was most of the
/// dashboard's time. At most [`CACHED_RUNS`] runs are kept.
#[derive(Default)]
pub struct AnsweredCache(std::sync::Mutex<HashMap<Run, Arc<Vec<AnsweredBucket>>>>);

/// A run of whole days: the first, and the day after the last.
type Run = (NaiveDate, NaiveDate);

const CACHED_RUNS: usize = 64;

impl AnsweredCache {
    fn get(&self, run: Run) -> Option<Arc<Vec<AnsweredBucket>>> {
        self.0.lock().ok()?.get(&run).cloned()
    }

    fn put(&self, run: Run, sums: Arc<Vec<AnsweredBucket>>) {
        if let Ok(mut runs) = self.0.lock() {
            if runs.len() >= CACHED_RUNS {
                runs.clear();
            }
            runs.insert(run, sums);
        }
    }
}

pub fn answered(
    conn: &mut DbConnection,
    keep_on: Option<&Database>,
    cache: &AnsweredCache,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<AnsweredBucket>, StoreError> {
    let (whole, edges) = split(from, to, Duration::days(1), final_end(now));
    let mut buckets = vec![];
    for (a, b) in edges {
        buckets.extend(reports::answered_between(conn, a, b)?);
    }
    let Some((a, b)) = whole else {
        return Ok(merge(buckets));
    };
    let run = (a.date_naive(), b.date_naive());
    let sums = match cache.get(run) {
        Some(sums) => sums,
        None => {
            let sums = Arc::new(final_days(conn, keep_on, a, b)?);
            cache.put(run, sums.clone());
            sums
        }
    };
    buckets.extend(sums.iter().cloned());
    Ok(merge(buckets))
}

/// The buckets of the final whole days of `[a, b)`, summed: from their kept rows, made now
/// where missing.
fn final_days(
    conn: &mut DbConnection,
    keep_on: Option<&Database>,
    a: DateTime<Utc>,
    b: DateTime<Utc>,
) -> Result<Vec<AnsweredBucket>, StoreError> {
    let days = days_in(a, b);
    let keys: Vec<String> = days.iter().map(NaiveDate::to_string).collect();
    let mut kept: Vec<(String, String)> = report_answered_days::table
        .filter(report_answered_days::day.eq_any(&keys))
        .select((report_answered_days::day, report_answered_days::buckets))
        .load(conn)?;
    if kept.len() < keys.len() {
        // Count the missing days in one grouped query over the range they span.
        let missing: Vec<&NaiveDate> = days
            .iter()
            .filter(|d| !kept.iter().any(|(k, _)| *k == d.to_string()))
            .collect();
        if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
            let counted = reports::answered_by_day(
                conn,
                day_start(**first),
                day_start(**last + Duration::days(1)),
            )?;
            for day in missing {
                let key = day.to_string();
                let text = encode_answered(counted.iter().filter(|(d, _)| *d == key));
                let row = (
                    report_answered_days::day.eq(key.clone()),
                    report_answered_days::buckets.eq(text.clone()),
                );
                insert_ignoring_duplicates(conn, keep_on, |c| {
                    diesel::insert_into(report_answered_days::table)
                        .values(row)
                        .execute(c)
                })?;
                kept.push((key, text));
            }
        }
    }
    // Added up while decoding, keyed by the text's own words: a 90-day period is ~90,000
    // lines, and a bucket each (with its own String) sorted afterwards took several ms.
    let mut sums = HashMap::<(&str, i64), [i64; 3]>::new();
    for (_, text) in &kept {
        for (key, [n, with_due, on_time]) in decode_answered(text) {
            let sum = sums.entry(key).or_default();
            sum[0] += n;
            sum[1] += with_due;
            sum[2] += on_time;
        }
    }
    Ok(merge(
        sums.into_iter()
            .map(|((kind, hours), [n, with_due, on_time])| AnsweredBucket {
                kind: kind.to_owned(),
                hours,
                n,
                with_due,
                on_time,
            })
            .collect(),
    ))
}

/// One line a bucket: `kind hours n with_due on_time`.
fn encode_answered<'a>(rows: impl Iterator<Item = &'a (String, AnsweredBucket)>) -> String {
    rows.map(|(_, b)| {
        format!(
            "{} {} {} {} {}\n",
            b.kind, b.hours, b.n, b.with_due, b.on_time
        )
    })
    .collect()
}

/// The lines of a kept day: (kind, hours, [n, with_due, on_time]), the kind borrowed.
fn decode_answered(text: &str) -> impl Iterator<Item = ((&str, i64), [i64; 3])> + '_ {
    text.lines().filter_map(|line| {
        let mut f = line.split(' ');
        let kind = f.next()?;
        let mut num = || f.next()?.parse::<i64>().ok();
        Some(((kind, num()?), [num()?, num()?, num()?]))
    })
}

/// Adds up buckets of the same kind and hours.
fn merge(mut buckets: Vec<AnsweredBucket>) -> Vec<AnsweredBucket> {
    buckets.sort_by(|x, y| (&x.kind, x.hours).cmp(&(&y.kind, y.hours)));
    let mut out: Vec<AnsweredBucket> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match out.last_mut() {
            Some(last) if last.kind == b.kind && last.hours == b.hours => {
                last.n += b.n;
                last.with_due += b.with_due;
                last.on_time += b.on_time;
            }
            _ => out.push(b),
        }
    }
    out
}

/// Requests received in each window: final whole hours from the day rows (made now where
/// missing), the rest counted live.
pub fn received(
    conn: &mut DbConnection,
    keep_on: Option<&Database>,
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let fin = final_end(now);
    let (Some(first), Some(last)) = (
        windows.iter().map(|w| w.0).min(),
        windows.iter().map(|w| w.1).max(),
    ) else {
        return Ok(vec![]);
    };
    let days: Vec<NaiveDate> = days_in(first, last.min(fin));
    let hours = hourly(conn, keep_on, &days)?;
    windows
        .iter()
        .map(|(from, to)| {
            let (whole, edges) = split(*from, *to, Duration::hours(1), fin);
            let mut n = 0;
            for (a, b) in edges {
                n += reports::received_between(conn, a, b)?;
            }
            if let Some((a, b)) = whole {
                let mut h = a;
                while h < b {
                    n += hours
                        .iter()
                        .find(|(d, _)| *d == h.date_naive())
                        .map_or(0, |(_, counts)| counts[h.hour() as usize]);
                    h += Duration::hours(1);
                }
            }
            Ok(n)
        })
        .collect()
}

/// The 24 hourly counts of each final day, made where missing.
fn hourly(
    conn: &mut DbConnection,
    keep_on: Option<&Database>,
    days: &[NaiveDate],
) -> Result<Vec<(NaiveDate, [i64; 24])>, StoreError> {
    let keys: Vec<String> = days.iter().map(NaiveDate::to_string).collect();
    let kept: Vec<(String, String)> = report_received_days::table
        .filter(report_received_days::day.eq_any(&keys))
        .select((report_received_days::day, report_received_days::hours))
        .load(conn)?;
    let mut out: Vec<(NaiveDate, [i64; 24])> = kept
        .iter()
        .filter_map(|(d, text)| Some((d.parse().ok()?, decode_hours(text))))
        .collect();
    let missing: Vec<NaiveDate> = days
        .iter()
        .filter(|d| !out.iter().any(|(k, _)| k == *d))
        .copied()
        .collect();
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        let counted = reports::received_by_hour(
            conn,
            day_start(*first),
            day_start(*last + Duration::days(1)),
        )?;
        for day in missing {
            let mut counts = [0i64; 24];
            for (hour, n) in counted.iter().filter(|(h, _)| h.date_naive() == day) {
                counts[hour.hour() as usize] += n;
            }
            let text = counts.map(|c| c.to_string()).join(",");
            let row = (
                report_received_days::day.eq(day.to_string()),
                report_received_days::hours.eq(text),
            );
            insert_ignoring_duplicates(conn, keep_on, |c| {
                diesel::insert_into(report_received_days::table)
                    .values(row)
                    .execute(c)
            })?;
            out.push((day, counts));
        }
    }
    Ok(out)
}

fn decode_hours(text: &str) -> [i64; 24] {
    let mut counts = [0i64; 24];
    for (slot, n) in counts.iter_mut().zip(text.split(',')) {
        *slot = n.parse().unwrap_or(0);
    }
    counts
}

/// Whether the day of `received_at` is final at `now`: its counts kept, not recounted.
pub fn is_final(received_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    received_at < final_end(now)
}

/// A request received (back-dated) on a final day: that day's counts are dropped, to be
/// counted again, in the inserting transaction.
pub fn forget_received(
    conn: &mut DbConnection,
    received_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if is_final(received_at, now) {
        diesel::delete(
            report_received_days::table
                .filter(report_received_days::day.eq(received_at.date_naive().to_string())),
        )
        .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_day_is_final_an_hour_after_it_ends() {
        assert_eq!(
            final_end(t("2026-11-29T00:59:00Z")),
            t("2026-11-28T00:00:00Z")
        );
        assert_eq!(
            final_end(t("2026-11-29T01:00:00Z")),
            t("2026-11-29T00:00:00Z")
        );
    }

    #[test]
    fn a_period_splits_into_whole_final_days_and_live_edges() {
        // 90 days in Asia/Shanghai: midnight there is 16:00 UTC the day before.
        let (from, to) = (t("2026-08-30T16:00:00Z"), t("2026-11-29T16:00:00Z"));
        let now = t("2026-11-29T12:00:00Z");
        let (whole, edges) = split(from, to, Duration::days(1), final_end(now));
        assert_eq!(
            whole,
            Some((t("2026-08-31T00:00:00Z"), t("2026-11-29T00:00:00Z")))
        );
        assert_eq!(
            edges,
            vec![
                (from, t("2026-08-31T00:00:00Z")),
                (t("2026-11-29T00:00:00Z"), to)
            ]
        );
        // Nothing final inside: all live.
        let (whole, edges) = split(
            t("2026-11-29T02:00:00Z"),
            to,
            Duration::days(1),
            final_end(now),
        );
        assert_eq!((whole, edges.len()), (None, 1));
    }

    #[test]
    fn buckets_survive_their_text_and_merge() {
        let b = |kind: &str, hours, n| AnsweredBucket {
            kind: kind.into(),
            hours,
            n,
            with_due: n,
            on_time: n - 1,
        };
        let rows = [
            ("2026-11-01".to_owned(), b("access", 27, 3)),
            ("2026-11-01".to_owned(), b("deletion", 4, 1)),
        ];
        let text = encode_answered(rows.iter());
        let back: Vec<AnsweredBucket> = decode_answered(&text)
            .map(|((kind, hours), [n, with_due, on_time])| AnsweredBucket {
                kind: kind.to_owned(),
                hours,
                n,
                with_due,
                on_time,
            })
            .collect();
        assert_eq!(back, vec![b("access", 27, 3), b("deletion", 4, 1)]);
        let merged = merge(vec![
            b("access", 27, 3),
            b("deletion", 4, 1),
            b("access", 27, 2),
        ]);
        assert_eq!(
            merged[0],
            AnsweredBucket {
                kind: "access".into(),
                hours: 27,
                n: 5,
                with_due: 5,
                on_time: 3
            }
        );
        assert_eq!(decode_hours("1,2,3"), {
            let mut c = [0; 24];
            c[..3].copy_from_slice(&[1, 2, 3]);
            c
        });
    }
}

//! Deadline arithmetic.
//!
//! Conventions, with their sources:
//!
//! * **The start day is not counted.** Counting begins on the day after the
//!   clock starts (PRC Civil Code Art. 201; EU Reg. 1182/71 Art. 3(1)). The
//!   start day is the *local* date of the start instant in the jurisdiction's
//!   zone: 2026-09-28T20:00Z is already 29 Sep in Shanghai.
//! * **A deadline ends at the end of its last day**, 23:59:59 local time
//!   (Civil Code Art. 203; Reg. 1182/71 Art. 3(2)), reported in UTC.
//! * **Working days** (`cn`: 15 working days after identity is verified): Monday–Friday
//!   that are not public holidays, plus weekend days the State Council names as
//!   make-up working days, from the region's [`CalendarSet`]. A year without a
//!   calendar counts Monday–Friday and yields [`ClockWarning::MissingCalendar`].
//!   The last day is always a working day, so Art. 203's holiday roll is moot.
//! * **Business days** (`us-ca` acknowledgement, CCPA regulations §7021):
//!   Monday–Friday, no holiday calendar.
//! * **Calendar days** (`us-ca`, Cal. Civ. Code §1798.130): plain days, no roll.
//! * **Months** (`eu`, GDPR Art. 12(3) with Reg. 1182/71 Art. 3(2)(c)): the
//!   period ends on the same date of the later month, or on that month's last
//!   day when it has no such date (31 Jan + 1 month = 28 Feb 2026). When that
//!   day is a Saturday or Sunday the period runs to the end of the next
//!   Monday–Friday (Art. 3(4)). EU and national public holidays are **not**
//!   modelled: they differ per member state and per EU institution, so the
//!   result may be a day early on a holiday, never late on a weekend.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

use super::calendar::CalendarSet;

/// The length of a legal period, in the unit the law uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "unit", content = "count", rename_all = "snake_case")]
pub enum Period {
    /// Working days under the region's holiday calendar (`cn`).
    WorkingDays(u32),
    /// Monday–Friday, no holiday calendar (`us-ca` acknowledgement).
    BusinessDays(u32),
    /// Plain calendar days (`us-ca`).
    CalendarDays(u32),
    /// Calendar months with the end-of-month clamp and weekend roll (`eu`).
    Months(u32),
}

impl Period {
    /// English description, e.g. "15 working days", "1 month".
    pub fn describe_en(&self) -> String {
        let (n, one, many) = match *self {
            Period::WorkingDays(n) => (n, "working day", "working days"),
            Period::BusinessDays(n) => (n, "business day", "business days"),
            Period::CalendarDays(n) => (n, "calendar day", "calendar days"),
            Period::Months(n) => (n, "month", "months"),
        };
        format!("{n} {}", if n == 1 { one } else { many })
    }

    /// Simplified Chinese description, e.g. "15个工作日", "1个月".
    pub fn describe_zh(&self) -> String {
        match *self {
            Period::WorkingDays(n) => format!("{n}个工作日"),
            Period::BusinessDays(n) => format!("{n}个营业日（周一至周五）"),
            Period::CalendarDays(n) => format!("{n}个自然日"),
            Period::Months(n) => format!("{n}个月"),
        }
    }

    /// The same unit with both counts added (saturating), or `None` when the
    /// units differ.
    fn plus(self, other: Period) -> Option<Period> {
        use Period::*;
        Some(match (self, other) {
            (WorkingDays(a), WorkingDays(b)) => WorkingDays(a.saturating_add(b)),
            (BusinessDays(a), BusinessDays(b)) => BusinessDays(a.saturating_add(b)),
            (CalendarDays(a), CalendarDays(b)) => CalendarDays(a.saturating_add(b)),
            (Months(a), Months(b)) => Months(a.saturating_add(b)),
            _ => return None,
        })
    }
}

/// Something the caller must surface with the deadline: the result may be off.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ClockWarning {
    /// Days of `year` were counted Monday–Friday because no holiday calendar
    /// for `region` and that year is loaded.
    MissingCalendar { region: String, year: i32 },
}

impl fmt::Display for ClockWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockWarning::MissingCalendar { region, year } => write!(
                f,
                "no holiday calendar is loaded for region {region}, year {year}: days in {year} \
                 were counted Monday to Friday, without public holidays or make-up working days"
            ),
        }
    }
}

impl ClockWarning {
    /// The warning in Simplified Chinese.
    pub fn message_zh(&self) -> String {
        match self {
            ClockWarning::MissingCalendar { region, year } => format!(
                "未加载地区 {region} {year} 年的节假日日历：{year} 年的日期按周一至周五为工作日计算，\
                 未计入法定节假日和调休上班日"
            ),
        }
    }
}

/// A computed deadline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Due {
    /// The last day of the period, in the jurisdiction's local calendar.
    pub date: NaiveDate,
    /// The end of that day (23:59:59 local) as a UTC instant.
    pub ends_at: DateTime<Utc>,
    /// Reasons the date may be wrong; empty when fully trusted.
    pub warnings: Vec<ClockWarning>,
}

/// 23:59:59, the last second of a local day.
const END_OF_DAY: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The deadline for `period` counted from `start`, in zone `tz` with the holiday
/// calendars of `region` (used only by [`Period::WorkingDays`]). The local day
/// of `start` is not counted. A period of zero ends at the end of the start day
/// (for months: rolled past a weekend). Warnings list, ascending by year, each
/// year without a calendar among the days examined (day after start to due).
pub fn due_after(
    start: DateTime<Utc>,
    period: Period,
    tz: Tz,
    calendars: &CalendarSet,
    region: &str,
) -> Due {
    let start_day = start.with_timezone(&tz).date_naive();
    let (date, warnings) = last_day(start_day, period, calendars, region);
    Due {
        date,
        ends_at: end_of_local_day(date, tz),
        warnings,
    }
}

/// The deadline after an extension. With the same unit the extended deadline is
/// counted from `start` with the sum (1 + 2 months = 3 months from receipt, so
/// the clamp and roll apply once, to the final date); with different units the
/// extension is counted from the original last day, which then acts as the
/// uncounted start day. Warnings of both computations are merged, no duplicates.
pub fn extended_due(
    start: DateTime<Utc>,
    period: Period,
    extension: Period,
    tz: Tz,
    calendars: &CalendarSet,
    region: &str,
) -> Due {
    let original = due_after(start, period, tz, calendars, region);
    let (date, more) = match period.plus(extension) {
        Some(total) => {
            let start_day = start.with_timezone(&tz).date_naive();
            last_day(start_day, total, calendars, region)
        }
        None => last_day(original.date, extension, calendars, region),
    };
    let mut warnings = original.warnings;
    for w in more {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    Due {
        date,
        ends_at: end_of_local_day(date, tz),
        warnings,
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The last local day of `period` counted after `start_day`, with warnings.
/// Dates beyond chrono's range saturate at `NaiveDate::MAX`.
fn last_day(
    start_day: NaiveDate,
    period: Period,
    calendars: &CalendarSet,
    region: &str,
) -> (NaiveDate, Vec<ClockWarning>) {
    match period {
        Period::CalendarDays(n) => {
            let date = start_day.checked_add_days(Days::new(n.into()));
            (date.unwrap_or(NaiveDate::MAX), Vec::new())
        }
        Period::Months(n) => {
            // chrono clamps to the month's last day, as Reg. 1182/71 requires.
            let mut date = start_day
                .checked_add_months(chrono::Months::new(n))
                .unwrap_or(NaiveDate::MAX);
            while is_weekend(date) {
                match date.succ_opt() {
                    Some(next) => date = next,
                    None => break,
                }
            }
            (date, Vec::new())
        }
        Period::BusinessDays(n) => (count_days(start_day, n, |d| !is_weekend(d)), Vec::new()),
        Period::WorkingDays(n) => {
            let mut missing = BTreeSet::new();
            let date = count_days(start_day, n, |d| {
                let (working, known) = calendars.is_working_day(region, d);
                if !known {
                    missing.insert(d.year());
                }
                working
            });
            let warnings = missing
                .into_iter()
                .map(|year| ClockWarning::MissingCalendar {
                    region: region.to_string(),
                    year,
                })
                .collect();
            (date, warnings)
        }
    }
}

/// Walks forward from the day after `start_day` until `n` days satisfying
/// `counts` have been seen; returns the `n`th (or `start_day` when `n` is 0).
fn count_days(
    start_day: NaiveDate,
    n: u32,
    mut counts: impl FnMut(NaiveDate) -> bool,
) -> NaiveDate {
    let mut date = start_day;
    let mut seen = 0;
    while seen < n {
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
        if counts(date) {
            seen += 1;
        }
    }
    date
}

/// The UTC instant of 23:59:59 local time on `date`.
///
/// When a DST fold repeats that second, the later occurrence is used: the day
/// is not over until its last second has passed. When a gap skips it (clocks
/// jumped forward over midnight, or a whole day as in Samoa on 2011-12-30), the
/// day ends at the last instant before the jump.
pub fn end_of_local_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let local = date.and_time(END_OF_DAY);
    match tz.from_local_datetime(&local).latest() {
        Some(t) => t.with_timezone(&Utc),
        None => last_instant_before_gap(local, tz),
    }
}

/// The latest UTC second whose local time is at most `local`, which lies in a
/// gap. Brackets the gap with valid local times up to 48 hours either side,
/// then bisects: local time only increases across a single gap.
fn last_instant_before_gap(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let fallback = Utc.from_utc_datetime(&local);
    let valid = |t: NaiveDateTime| tz.from_local_datetime(&t).earliest();
    let (mut lo, mut hi) = (None, None);
    for h in 1..=48 {
        let step = TimeDelta::hours(h);
        lo = lo.or_else(|| local.checked_sub_signed(step).and_then(valid));
        hi = hi.or_else(|| local.checked_add_signed(step).and_then(valid));
    }
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return fallback;
    };
    let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match DateTime::<Utc>::from_timestamp(mid, 0) {
            Some(t) if t.with_timezone(&tz).naive_local() <= local => lo = mid,
            Some(_) => hi = mid,
            None => return fallback,
        }
    }
    DateTime::<Utc>::from_timestamp(lo, 0).unwrap_or(fallback)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::calendar::YearCalendar;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;
    const BRUSSELS: Tz = chrono_tz::Europe::Brussels;
    const LOS_ANGELES: Tz = chrono_tz::America::Los_Angeles;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cn(start: &str, days: u32, cals: &CalendarSet) -> Due {
        due_after(t(start), Period::WorkingDays(days), SHANGHAI, cals, "cn")
    }

    fn missing(year: i32) -> ClockWarning {
        ClockWarning::MissingCalendar {
            region: "cn".into(),
            year,
        }
    }

    #[test]
    fn cn_across_national_day() {
        // Start Mon 28 Sep (not counted). Tue 29 = 1, Wed 30 = 2, 1–7 Oct off,
        // Thu 8 = 3, Fri 9 = 4, Sat 10 (make-up) = 5, Sun 11 off, Mon 12..Fri 16 =
        // 6..10, Mon 19..Fri 23 = 11..15.
        let due = cn("2026-09-28T10:00:00+08:00", 15, &CalendarSet::builtin());
        assert_eq!(due.date, d("2026-10-23"));
        assert_eq!(due.ends_at, t("2026-10-23T15:59:59Z"));
        assert!(due.warnings.is_empty());
    }

    #[test]
    fn cn_start_day_is_the_local_day_not_the_utc_day() {
        // 2026-09-28T20:00Z is Tue 29 Sep 04:00 in Shanghai: start day 29 Sep.
        // Wed 30 = 1, Thu 8..Fri 9 = 2..3, Sat 10 = 4, Mon 12..Fri 16 = 5..9,
        // Mon 19..Fri 23 = 10..14, Mon 26 = 15.
        let due = cn("2026-09-28T20:00:00Z", 15, &CalendarSet::builtin());
        assert_eq!(due.date, d("2026-10-26"));
        assert_eq!(due.ends_at, t("2026-10-26T15:59:59Z"));
        // One second before local midnight the start day is still 28 Sep.
        assert_eq!(
            cn("2026-09-28T15:59:59Z", 15, &CalendarSet::builtin()).date,
            d("2026-10-23")
        );
    }

    #[test]
    fn cn_across_spring_festival() {
        // Start Mon 9 Feb. Tue 10..Fri 13 = 1..4, Sat 14 (make-up) = 5, 15–23 off,
        // Tue 24..Fri 27 = 6..9, Sat 28 (make-up) = 10, Sun 1 Mar off,
        // Mon 2..Fri 6 Mar = 11..15.
        let due = cn("2026-02-09T10:00:00+08:00", 15, &CalendarSet::builtin());
        assert_eq!(due.date, d("2026-03-06"));
        assert!(due.warnings.is_empty());
    }

    #[test]
    fn cn_across_new_year() {
        // Start Wed 31 Dec 2025; only 2026 days are examined, so no warning.
        // 1–3 Jan off, Sun 4 Jan (make-up) = 1, Mon 5..Fri 9 = 2..6,
        // Mon 12..Fri 16 = 7..11, Mon 19..Thu 22 = 12..15.
        let cals = CalendarSet::builtin();
        let due = cn("2025-12-31T10:00:00+08:00", 15, &cals);
        assert_eq!(due.date, d("2026-01-22"));
        assert!(due.warnings.is_empty());
        assert_eq!(
            cn("2025-12-31T10:00:00+08:00", 1, &cals).date,
            d("2026-01-04")
        );
    }

    #[test]
    fn cn_into_a_year_without_calendar_warns_then_honours_a_loaded_one() {
        // Start Sun 20 Dec 2026. Mon 21..Fri 25 = 1..5, Mon 28..Thu 31 = 6..9;
        // 2027 unknown, so Mon–Fri: Fri 1 Jan = 10, Mon 4..Fri 8 = 11..15.
        let mut cals = CalendarSet::builtin();
        let due = cn("2026-12-20T10:00:00+08:00", 15, &cals);
        assert_eq!(due.date, d("2027-01-08"));
        assert_eq!(due.warnings, vec![missing(2027)]);

        // A made-up 2027 calendar (test data only): 1–3 Jan off, Sat 9 Jan worked.
        // Thu 31 Dec = 9, Fri 1 Jan off, Mon 4..Fri 8 = 10..14, Sat 9 = 15.
        cals.insert(
            YearCalendar::parse(
                "region = \"cn\"\nyear = 2027\nsource = \"test\"\n\
                 days_off = [\"2027-01-01..2027-01-03\"]\nmake_up_workdays = [\"2027-01-09\"]\n",
            )
            .unwrap(),
        );
        let due = cn("2026-12-20T10:00:00+08:00", 15, &cals);
        assert_eq!(due.date, d("2027-01-09"));
        assert!(due.warnings.is_empty());
    }

    #[test]
    fn warnings_list_each_missing_year_once_ascending() {
        let empty = CalendarSet::default();
        // 500 working days (100 weeks) from mid-2025 examine 2025, 2026 and 2027.
        let due = cn("2025-06-01T10:00:00+08:00", 500, &empty);
        assert_eq!(
            due.warnings,
            vec![missing(2025), missing(2026), missing(2027)]
        );
        // Same-unit extension: the sum is counted once, the 2027 warning appears once.
        let cals = CalendarSet::builtin();
        let ext = extended_due(
            t("2026-12-20T02:00:00Z"),
            Period::WorkingDays(15),
            Period::WorkingDays(15),
            SHANGHAI,
            &cals,
            "cn",
        );
        assert_eq!(ext.warnings, vec![missing(2027)]);
        assert_eq!(ext.date, d("2027-01-29")); // Mon–Fri through January 2027.
    }

    #[test]
    fn eu_months_clamp_and_weekend_roll() {
        let cals = CalendarSet::default();
        let eu = |s: &str, p| due_after(t(s), p, BRUSSELS, &cals, "eu");
        // 31 Jan + 1 month = 28 Feb 2026, a Saturday: rolls to Mon 2 Mar.
        let due = eu("2026-01-31T12:00:00Z", Period::Months(1));
        assert_eq!(due.date, d("2026-03-02"));
        assert_eq!(due.ends_at, t("2026-03-02T22:59:59Z"));
        assert!(due.warnings.is_empty());
        // 15 Mar + 1 month = Wed 15 Apr, summer time (UTC+2).
        let due = eu("2026-03-15T09:00:00Z", Period::Months(1));
        assert_eq!(due.date, d("2026-04-15"));
        assert_eq!(due.ends_at, t("2026-04-15T21:59:59Z"));
        // Extension by 2 months: 31 Jan + 3 months = 30 Apr (no 31 Apr), a Thursday.
        let ext = extended_due(
            t("2026-01-31T12:00:00Z"),
            Period::Months(1),
            Period::Months(2),
            BRUSSELS,
            &cals,
            "eu",
        );
        assert_eq!(ext.date, d("2026-04-30"));
        assert_eq!(ext.ends_at, t("2026-04-30T21:59:59Z"));
        // Receipt 31 Jan 23:30 local is 22:30Z: still 31 Jan locally.
        assert_eq!(
            eu("2026-01-31T22:30:00Z", Period::Months(1)).date,
            d("2026-03-02")
        );
        // 23:30Z on 31 Jan is 00:30 on 1 Feb locally: 1 Feb + 2 months = Wed 1 Apr
        // (counted from 31 Jan it would be Thu 31 Mar).
        assert_eq!(
            eu("2026-01-31T23:30:00Z", Period::Months(2)).date,
            d("2026-04-01")
        );
    }

    #[test]
    fn eu_ends_at_across_summer_time_change() {
        // Summer time starts Sun 29 Mar 2026. Fri 27 Mar ends at UTC+1; the
        // rolled Mon 30 Mar (from Sat 28 Mar) ends at UTC+2.
        let cals = CalendarSet::default();
        let due = due_after(
            t("2026-02-27T12:00:00Z"),
            Period::Months(1),
            BRUSSELS,
            &cals,
            "eu",
        );
        assert_eq!(
            (due.date, due.ends_at),
            (d("2026-03-27"), t("2026-03-27T22:59:59Z"))
        );
        let due = due_after(
            t("2026-02-28T12:00:00Z"),
            Period::Months(1),
            BRUSSELS,
            &cals,
            "eu",
        );
        assert_eq!(
            (due.date, due.ends_at),
            (d("2026-03-30"), t("2026-03-30T21:59:59Z"))
        );
        // Winter time returns Sun 25 Oct: Mon 26 Oct ends at UTC+1 again.
        let due = due_after(
            t("2026-09-26T12:00:00Z"),
            Period::Months(1),
            BRUSSELS,
            &cals,
            "eu",
        );
        assert_eq!(
            (due.date, due.ends_at),
            (d("2026-10-26"), t("2026-10-26T22:59:59Z"))
        );
    }

    #[test]
    fn us_ca_calendar_and_business_days() {
        let cals = CalendarSet::default();
        let start = t("2026-03-01T18:00:00Z"); // 10:00 PST, Sun 1 Mar.
        let due = due_after(start, Period::CalendarDays(45), LOS_ANGELES, &cals, "us-ca");
        assert_eq!(due.date, d("2026-04-15"));
        assert_eq!(due.ends_at, t("2026-04-16T06:59:59Z")); // PDT, UTC-7.
        let ext = extended_due(
            start,
            Period::CalendarDays(45),
            Period::CalendarDays(45),
            LOS_ANGELES,
            &cals,
            "us-ca",
        );
        assert_eq!(ext.date, d("2026-05-30"));
        assert_eq!(ext.ends_at, t("2026-05-31T06:59:59Z"));
        // Acknowledgement: Mon 2..Fri 6 = 1..5, Mon 9..Fri 13 = 6..10.
        let ack = due_after(start, Period::BusinessDays(10), LOS_ANGELES, &cals, "us-ca");
        assert_eq!(ack.date, d("2026-03-13"));
        assert_eq!(ack.ends_at, t("2026-03-14T06:59:59Z"));
        assert!(due.warnings.is_empty() && ext.warnings.is_empty() && ack.warnings.is_empty());
        // 05:00Z on 2 Mar is still 1 Mar (21:00 PST) locally.
        let late = due_after(
            t("2026-03-02T05:00:00Z"),
            Period::CalendarDays(45),
            LOS_ANGELES,
            &cals,
            "us-ca",
        );
        assert_eq!(late.date, d("2026-04-15"));
        // DST starts Sun 8 Mar: Sat 7 Mar ends at UTC-8, Sun 8 Mar at UTC-7.
        let sat = due_after(start, Period::CalendarDays(6), LOS_ANGELES, &cals, "us-ca");
        assert_eq!(
            (sat.date, sat.ends_at),
            (d("2026-03-07"), t("2026-03-08T07:59:59Z"))
        );
        let sun = due_after(start, Period::CalendarDays(7), LOS_ANGELES, &cals, "us-ca");
        assert_eq!(
            (sun.date, sun.ends_at),
            (d("2026-03-08"), t("2026-03-09T06:59:59Z"))
        );
    }

    #[test]
    fn extension_in_another_unit_counts_from_the_original_last_day() {
        let cals = CalendarSet::default();
        // Original: Wed 15 Apr. Then Thu 16..Fri 17 = 1..2, Mon 20..Fri 24 = 3..7,
        // Mon 27..Wed 29 = 8..10.
        let ext = extended_due(
            t("2026-03-01T18:00:00Z"),
            Period::CalendarDays(45),
            Period::BusinessDays(10),
            LOS_ANGELES,
            &cals,
            "us-ca",
        );
        assert_eq!(ext.date, d("2026-04-29"));
        // cn: 15 working days to Fri 23 Oct, then 1 month = Mon 23 Nov.
        let ext = extended_due(
            t("2026-09-28T02:00:00Z"),
            Period::WorkingDays(15),
            Period::Months(1),
            SHANGHAI,
            &CalendarSet::builtin(),
            "cn",
        );
        assert_eq!((ext.date, ext.warnings.len()), (d("2026-11-23"), 0));
    }

    #[test]
    fn dst_fold_uses_the_later_instant_and_gap_the_last_before_the_jump() {
        // São Paulo left DST at 00:00 on 18 Feb 2018, back to 23:00 on the 17th:
        // 23:59:59 on the 17th happened at -02:00 and again at -03:00.
        let sp = chrono_tz::America::Sao_Paulo;
        assert_eq!(
            end_of_local_day(d("2018-02-17"), sp),
            t("2018-02-18T02:59:59Z")
        );
        // Samoa skipped 30 Dec 2011 (29 Dec 23:59:59 -10:00 → 31 Dec 00:00 +14:00).
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(
            end_of_local_day(d("2011-12-30"), apia),
            t("2011-12-30T09:59:59Z")
        );
        assert_eq!(
            end_of_local_day(d("2011-12-31"), apia),
            t("2011-12-31T09:59:59Z")
        );
    }

    #[test]
    fn zero_and_huge_periods_do_not_panic() {
        let cals = CalendarSet::builtin();
        let start = t("2026-10-09T02:00:00Z");
        assert_eq!(
            due_after(start, Period::WorkingDays(0), SHANGHAI, &cals, "cn").date,
            d("2026-10-09")
        );
        assert_eq!(
            due_after(start, Period::Months(0), SHANGHAI, &cals, "cn").date,
            d("2026-10-09")
        );
        assert_eq!(
            due_after(start, Period::CalendarDays(u32::MAX), SHANGHAI, &cals, "cn").date,
            NaiveDate::MAX
        );
        assert_eq!(
            due_after(start, Period::Months(u32::MAX), SHANGHAI, &cals, "cn").date,
            NaiveDate::MAX
        );
    }

    #[test]
    fn every_2026_start_day_gives_exactly_15_working_days() {
        let cals = CalendarSet::builtin();
        let mut day = d("2026-01-01");
        while day.year() == 2026 {
            // 00:30 local is the previous UTC day; 23:30 local the same one.
            for (h, m) in [(0, 30), (23, 30)] {
                let local = day.and_hms_opt(h, m, 0).unwrap();
                let start = SHANGHAI
                    .from_local_datetime(&local)
                    .unwrap()
                    .with_timezone(&Utc);
                let due = due_after(start, Period::WorkingDays(15), SHANGHAI, &cals, "cn");
                assert!(due.date > day, "{local}");
                assert!(
                    cals.is_working_day("cn", due.date).0,
                    "{local} -> {}",
                    due.date
                );
                let counted = day
                    .iter_days()
                    .skip(1)
                    .take_while(|x| *x <= due.date)
                    .filter(|x| cals.is_working_day("cn", *x).0)
                    .count();
                assert_eq!(counted, 15, "{local} -> {}", due.date);
                let end = due.date.and_hms_opt(23, 59, 59).unwrap();
                assert_eq!(
                    due.ends_at,
                    SHANGHAI
                        .from_local_datetime(&end)
                        .unwrap()
                        .with_timezone(&Utc)
                );
                let expected = if due.date.year() == 2027 {
                    vec![missing(2027)]
                } else {
                    vec![]
                };
                assert_eq!(due.warnings, expected, "{local}");
            }
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn descriptions_and_wire_format() {
        assert_eq!(Period::WorkingDays(15).describe_en(), "15 working days");
        assert_eq!(Period::WorkingDays(15).describe_zh(), "15个工作日");
        assert_eq!(Period::Months(1).describe_en(), "1 month");
        assert_eq!(Period::Months(3).describe_zh(), "3个月");
        assert_eq!(Period::BusinessDays(1).describe_en(), "1 business day");
        assert_eq!(Period::CalendarDays(45).describe_en(), "45 calendar days");
        assert_eq!(Period::CalendarDays(45).describe_zh(), "45个自然日");
        let w = missing(2027);
        assert!(
            w.to_string().contains("cn") && w.to_string().contains("2027"),
            "{w}"
        );
        assert!(w.message_zh().contains("2027 年") && w.message_zh().contains("日历"));

        #[derive(serde::Deserialize)]
        struct Wire {
            p: Period,
            w: ClockWarning,
        }
        let wire: Wire = toml::from_str(
            "p = { unit = \"working_days\", count = 15 }\n\
             w = { code = \"missing_calendar\", region = \"cn\", year = 2027 }\n",
        )
        .unwrap();
        assert_eq!((wire.p, wire.w), (Period::WorkingDays(15), w));
    }
}

//! Public-holiday calendars, one file per region and year.
//!
//! Why data and not code: mainland China's working days are not a fixed rule.
//! Each year the General Office of the State Council publishes (usually in
//! November) which days are off and which weekend days are make-up working days
//! (调休上班). Operators must be able to add next year's notice without a
//! rebuild, so a calendar is a small TOML file: the shipped ones are embedded
//! with `include_str!`, and [`CalendarSet::load_dir`] adds (or overrides) files
//! from a folder.
//!
//! File format:
//!
//! ```toml
//! region = "cn"
//! year = 2026
//! source = "国务院办公厅关于2026年部分节假日安排的通知（2025-11-04）"
//! days_off = ["2026-01-01..2026-01-03", "2026-10-01..2026-10-07"]
//! make_up_workdays = ["2026-01-04", "2026-10-10"]
//! ```
//!
//! Entries are a single `YYYY-MM-DD` date or an inclusive range `A..B`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// Calendars compiled into the binary: (file name, contents). Every entry is
/// proven to parse by a unit test.
const BUILTIN: &[(&str, &str)] = &[("cn-2026.toml", include_str!("calendars/cn-2026.toml"))];

/// Why a calendar file was rejected. Each message names the offending value.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The text is not valid TOML or lacks a required field.
    #[error("invalid calendar file: {0}")]
    Syntax(String),
    /// `region` is empty.
    #[error("calendar region must not be empty")]
    EmptyRegion,
    /// A date entry is not a `YYYY-MM-DD` calendar date.
    #[error(
        "invalid date {value:?}: expected YYYY-MM-DD or an inclusive range YYYY-MM-DD..YYYY-MM-DD"
    )]
    BadDate { value: String },
    /// A date lies outside the year the file declares.
    #[error("date {date} in entry {value:?} is outside the calendar's year {year}")]
    OutsideYear {
        value: String,
        date: NaiveDate,
        year: i32,
    },
    /// A range whose end is before its start.
    #[error("reversed range {value:?}: the end is before the start")]
    ReversedRange { value: String },
    /// A make-up working day that is not a Saturday or Sunday.
    #[error("make-up working day {date} is a {weekday}, not a Saturday or Sunday")]
    MakeUpNotWeekend { date: NaiveDate, weekday: Weekday },
    /// A date listed both as a day off and as a make-up working day.
    #[error("date {date} is listed both as a day off and as a make-up working day")]
    Overlap { date: NaiveDate },
    /// The folder or a file in it could not be read.
    #[error("cannot read calendar path {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file in the folder was read but rejected.
    #[error("calendar file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: Box<CalendarError>,
    },
}

/// The working-day exceptions of one region for one year.
#[derive(Debug, Clone, PartialEq)]
pub struct YearCalendar {
    /// Jurisdiction code, e.g. `cn`.
    pub region: String,
    /// The Gregorian year every listed date lies in.
    pub year: i32,
    /// Citation of the official notice, kept for audit.
    pub source: String,
    /// Days that are not working days even when they fall Monday–Friday.
    pub days_off: BTreeSet<NaiveDate>,
    /// Saturdays or Sundays that are working days.
    pub make_up_workdays: BTreeSet<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    region: String,
    year: i32,
    source: String,
    #[serde(default)]
    days_off: Vec<String>,
    #[serde(default)]
    make_up_workdays: Vec<String>,
}

/// Parses one strict `YYYY-MM-DD` date (no missing zero padding, no sign).
fn parse_date(text: &str, entry: &str) -> Result<NaiveDate, CalendarError> {
    let bad = || CalendarError::BadDate {
        value: entry.to_string(),
    };
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
    if date.format("%Y-%m-%d").to_string() != text {
        return Err(bad());
    }
    Ok(date)
}

/// Expands the entries (dates or inclusive ranges) into a set of dates, all of
/// which must lie in `year`.
fn expand(entries: &[String], year: i32) -> Result<BTreeSet<NaiveDate>, CalendarError> {
    let mut out = BTreeSet::new();
    for entry in entries {
        let (first, last) = match entry.split_once("..") {
            Some((a, b)) => (parse_date(a.trim(), entry)?, parse_date(b.trim(), entry)?),
            None => {
                let d = parse_date(entry.trim(), entry)?;
                (d, d)
            }
        };
        for date in [first, last] {
            if date.year() != year {
                return Err(CalendarError::OutsideYear {
                    value: entry.clone(),
                    date,
                    year,
                });
            }
        }
        if last < first {
            return Err(CalendarError::ReversedRange {
                value: entry.clone(),
            });
        }
        // Both ends lie in one year, so this walk is at most 366 days.
        out.extend(first.iter_days().take_while(|d| *d <= last));
    }
    Ok(out)
}

impl YearCalendar {
    /// Parses and validates one calendar file: every date parses and lies in
    /// the declared year, no range is reversed, every make-up working day is a
    /// Saturday or Sunday, and no date is both off and a make-up working day.
    pub fn parse(text: &str) -> Result<YearCalendar, CalendarError> {
        let raw: RawCalendar =
            toml::from_str(text).map_err(|e| CalendarError::Syntax(e.to_string().trim().into()))?;
        let region = raw.region.trim().to_string();
        if region.is_empty() {
            return Err(CalendarError::EmptyRegion);
        }
        let days_off = expand(&raw.days_off, raw.year)?;
        let make_up_workdays = expand(&raw.make_up_workdays, raw.year)?;
        for &date in &make_up_workdays {
            let weekday = date.weekday();
            if !matches!(weekday, Weekday::Sat | Weekday::Sun) {
                return Err(CalendarError::MakeUpNotWeekend { date, weekday });
            }
        }
        if let Some(&date) = days_off.intersection(&make_up_workdays).next() {
            return Err(CalendarError::Overlap { date });
        }
        Ok(YearCalendar {
            region,
            year: raw.year,
            source: raw.source,
            days_off,
            make_up_workdays,
        })
    }
}

/// All loaded calendars, keyed by (region, year).
#[derive(Debug, Clone, Default)]
pub struct CalendarSet {
    calendars: BTreeMap<(String, i32), YearCalendar>,
}

impl CalendarSet {
    /// The calendars shipped inside the binary (currently `cn` 2026).
    ///
    /// The embedded texts are known-good: a unit test proves each parses, and a
    /// failure trips a `debug_assert!` in debug builds.
    pub fn builtin() -> CalendarSet {
        let mut set = CalendarSet::default();
        for (name, text) in BUILTIN {
            let parsed = YearCalendar::parse(text);
            debug_assert!(parsed.is_ok(), "embedded calendar {name}: {parsed:?}");
            if let Ok(cal) = parsed {
                set.insert(cal);
            }
        }
        set
    }

    /// Adds a calendar; a later insert for the same region and year replaces
    /// the earlier one (so an operator's file overrides the embedded one).
    pub fn insert(&mut self, cal: YearCalendar) {
        self.calendars.insert((cal.region.clone(), cal.year), cal);
    }

    /// Loads every `*.toml` file directly inside `dir` (not recursive), in file
    /// name order, so for two files of the same region and year the later name
    /// wins. Returns how many files were loaded. A missing folder is `Ok(0)`:
    /// operators need not create it. All files are parsed before any is
    /// inserted, so on error the set is unchanged and the error names the file.
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, CalendarError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CalendarError::Io { path, source }
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(dir)(e)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut loaded = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let cal = YearCalendar::parse(&text).map_err(|e| CalendarError::File {
                path: path.clone(),
                source: Box::new(e),
            })?;
            loaded.push(cal);
        }
        let count = loaded.len();
        for cal in loaded {
            self.insert(cal);
        }
        Ok(count)
    }

    /// The calendar of one region and year, if loaded.
    pub fn get(&self, region: &str, year: i32) -> Option<&YearCalendar> {
        self.calendars.get(&(region.to_string(), year))
    }

    /// The years with a calendar for `region`, ascending.
    pub fn years(&self, region: &str) -> Vec<i32> {
        self.calendars
            .keys()
            .filter(|(r, _)| r == region)
            .map(|(_, y)| *y)
            .collect()
    }

    /// Returns `(is_working, calendar_known)`. With a calendar for the date's
    /// year: make-up working days work, days off don't, otherwise Monday–Friday
    /// work. Without one the answer is plain Monday–Friday and `calendar_known`
    /// is false, so the caller can warn.
    pub fn is_working_day(&self, region: &str, date: NaiveDate) -> (bool, bool) {
        let weekday = !matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        match self.get(region, date.year()) {
            Some(cal) if cal.make_up_workdays.contains(&date) => (true, true),
            Some(cal) if cal.days_off.contains(&date) => (false, true),
            Some(_) => (weekday, true),
            None => (weekday, false),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn cal_text(days_off: &str, make_up: &str) -> String {
        format!(
            "region = \"cn\"\nyear = 2027\nsource = \"test\"\n\
             days_off = [{days_off}]\nmake_up_workdays = [{make_up}]\n"
        )
    }

    #[test]
    fn every_embedded_file_parses() {
        for (name, text) in BUILTIN {
            let cal = YearCalendar::parse(text);
            assert!(cal.is_ok(), "{name}: {cal:?}");
            let cal = cal.unwrap();
            assert_eq!(name, &format!("{}-{}.toml", cal.region, cal.year));
        }
        assert_eq!(CalendarSet::builtin().calendars.len(), BUILTIN.len());
    }

    #[test]
    fn embedded_cn_2026_has_the_notice_days() {
        let set = CalendarSet::builtin();
        let cal = set.get("cn", 2026).unwrap();
        assert!(cal.source.contains("2025-11-04"));
        // 3 + 9 + 3 + 5 + 3 + 3 + 7 days off.
        assert_eq!(cal.days_off.len(), 33);
        for day in [
            "2026-01-01",
            "2026-01-03",
            "2026-02-15",
            "2026-02-23",
            "2026-04-06",
        ] {
            assert!(cal.days_off.contains(&d(day)), "{day}");
        }
        for day in [
            "2026-05-05",
            "2026-06-19",
            "2026-09-27",
            "2026-10-01",
            "2026-10-07",
        ] {
            assert!(cal.days_off.contains(&d(day)), "{day}");
        }
        assert!(!cal.days_off.contains(&d("2026-10-08")));
        let make_up: Vec<String> = cal.make_up_workdays.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            make_up,
            [
                "2026-01-04",
                "2026-02-14",
                "2026-02-28",
                "2026-05-09",
                "2026-09-20",
                "2026-10-10"
            ]
        );
        assert_eq!(set.years("cn"), vec![2026]);
        assert!(set.years("eu").is_empty());
    }

    #[test]
    fn is_working_day_honours_calendar_and_reports_unknown_years() {
        let set = CalendarSet::builtin();
        assert_eq!(set.is_working_day("cn", d("2026-10-10")), (true, true)); // Sat make-up
        assert_eq!(set.is_working_day("cn", d("2026-10-01")), (false, true)); // Thu holiday
        assert_eq!(set.is_working_day("cn", d("2026-10-11")), (false, true)); // plain Sunday
        assert_eq!(set.is_working_day("cn", d("2026-10-12")), (true, true)); // plain Monday
        assert_eq!(set.is_working_day("cn", d("2027-01-01")), (true, false)); // Fri, unknown
        assert_eq!(set.is_working_day("cn", d("2027-01-02")), (false, false)); // Sat, unknown
        assert_eq!(set.is_working_day("eu", d("2026-10-01")), (true, false));
    }

    fn err(text: &str) -> CalendarError {
        match YearCalendar::parse(text) {
            Ok(cal) => panic!("accepted invalid calendar: {cal:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn invalid_files_are_rejected_with_the_offending_value() {
        let e = err(&cal_text("\"2026-12-31\"", ""));
        assert!(
            matches!(e, CalendarError::OutsideYear { year: 2027, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("2026-12-31"), "{e}");

        let e = err(&cal_text("\"2027-12-31..2028-01-01\"", ""));
        assert!(matches!(e, CalendarError::OutsideYear { .. }), "{e}");

        let e = err(&cal_text("\"2027-01-03..2027-01-01\"", ""));
        assert!(matches!(e, CalendarError::ReversedRange { .. }), "{e}");
        assert!(e.to_string().contains("2027-01-03..2027-01-01"), "{e}");

        // 2027-01-04 is a Monday.
        let e = err(&cal_text("", "\"2027-01-04\""));
        assert!(
            matches!(
                e,
                CalendarError::MakeUpNotWeekend {
                    weekday: Weekday::Mon,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("2027-01-04"), "{e}");

        // 2027-01-02 is a Saturday, listed both ways.
        let e = err(&cal_text("\"2027-01-01..2027-01-03\"", "\"2027-01-02\""));
        assert!(matches!(e, CalendarError::Overlap { .. }), "{e}");
        assert!(e.to_string().contains("2027-01-02"), "{e}");

        for bad in [
            "2027-02-30",
            "2027-1-4",
            "27-01-04",
            "tomorrow",
            "2027-01-01..",
            "",
        ] {
            let e = err(&cal_text(&format!("\"{bad}\""), ""));
            assert!(matches!(e, CalendarError::BadDate { .. }), "{bad}: {e}");
            assert!(e.to_string().contains(bad), "{e}");
        }

        let e = err("region = \"cn\"\nyear = 2027\n");
        assert!(matches!(e, CalendarError::Syntax(_)), "{e}");
        assert!(e.to_string().contains("source"), "{e}");
        let e = err(&cal_text("", "").replace("\"cn\"", "\" \""));
        assert!(matches!(e, CalendarError::EmptyRegion), "{e}");
        let e = err(&format!("{}holidays = []\n", cal_text("", "")));
        assert!(e.to_string().contains("holidays"), "{e}");
    }

    #[test]
    fn later_insert_replaces_earlier() {
        let mut set = CalendarSet::builtin();
        let mut cal = set.get("cn", 2026).unwrap().clone();
        cal.days_off.clear();
        set.insert(cal);
        assert_eq!(set.is_working_day("cn", d("2026-10-01")), (true, true));
    }

    #[test]
    fn load_dir_adds_overrides_and_names_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = CalendarSet::builtin();
        assert_eq!(set.load_dir(&dir.path().join("absent")).unwrap(), 0);

        std::fs::write(
            dir.path().join("cn-2027.toml"),
            cal_text("\"2027-01-01\"", ""),
        )
        .unwrap();
        let override_2026 = "region = \"cn\"\nyear = 2026\nsource = \"override\"\n";
        std::fs::write(dir.path().join("cn-2026.toml"), override_2026).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a calendar").unwrap();
        std::fs::create_dir(dir.path().join("nested.toml")).unwrap();
        assert_eq!(set.load_dir(dir.path()).unwrap(), 2);
        assert_eq!(set.years("cn"), vec![2026, 2027]);
        assert_eq!(set.get("cn", 2026).unwrap().source, "override");
        assert_eq!(set.is_working_day("cn", d("2026-10-01")), (true, true));
        assert_eq!(set.is_working_day("cn", d("2027-01-01")), (false, true));

        let bad = dir.path().join("cn-2028.toml");
        std::fs::write(
            &bad,
            "region = \"cn\"\nyear = 2028\nsource = \"x\"\ndays_off = [\"2028-13-01\"]\n",
        )
        .unwrap();
        let before = set.clone();
        let e = set.load_dir(dir.path()).unwrap_err();
        assert!(
            matches!(&e, CalendarError::File { path, .. } if path == &bad),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("cn-2028.toml") && msg.contains("2028-13-01"),
            "{msg}"
        );
        assert_eq!(
            set.years("cn"),
            before.years("cn"),
            "a failed load changes nothing"
        );
    }
}

//! Deadline reminders to staff: "due in N working days" and "overdue", sent once each per due
//! date, to the assignee or else to the deciders. Safe on several instances: the reminder is
//! recorded (primary key) in the same transaction as its notification.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use crate::clock::{end_of_local_day, CalendarSet};
use crate::domain::{Jurisdiction, Locale, Message, Recipient};
use crate::service::{ServiceError, Services};
use crate::storage::reminders::DueRow;
use crate::storage::{from_db_time, outbox};
use crate::storage::{reminders, StoreError};

/// Working days after `today` up to and including `due` (0 when due today or past).
pub fn working_days_left(
    calendars: &CalendarSet,
    region: &str,
    today: NaiveDate,
    due: NaiveDate,
) -> u32 {
    today
        .iter_days()
        .skip(1)
        .take_while(|d| *d <= due)
        .filter(|d| calendars.is_working_day(region, *d).0)
        .count() as u32
}

/// Working days left at `now` to a due date of `jurisdiction` (today is its local date).
fn days_left(
    services: &Services,
    jurisdiction: Jurisdiction,
    now: DateTime<Utc>,
    due: NaiveDate,
) -> u32 {
    let rules = services.policy().rules(jurisdiction);
    let today = now.with_timezone(&rules.time_zone).date_naive();
    working_days_left(services.calendars(), &rules.calendar_region, today, due)
}

/// The last local day that counts as "due within `days` working days" from `today`: the day
/// before the `days + 1`-th working day after today. A due date on or before it has at most
/// `days` working days left ([`working_days_left`]); one after it has more.
pub fn last_day_due_soon(
    calendars: &CalendarSet,
    region: &str,
    today: NaiveDate,
    days: u32,
) -> NaiveDate {
    let mut working = 0;
    let mut day = today;
    while let Some(next) = day.succ_opt() {
        if calendars.is_working_day(region, next).0 {
            working += 1;
            if working > days {
                return day;
            }
        }
        day = next;
    }
    day
}

/// For each jurisdiction, the last instant that counts as "due within `days` working days":
/// the end of [`last_day_due_soon`] in its time zone.
pub fn due_soon_cutoffs(
    services: &Services,
    days: u32,
    now: DateTime<Utc>,
) -> Vec<(Jurisdiction, DateTime<Utc>)> {
    Jurisdiction::ALL
        .iter()
        .map(|j| {
            let rules = services.policy().rules(*j);
            let today = now.with_timezone(&rules.time_zone).date_naive();
            let last = last_day_due_soon(services.calendars(), &rules.calendar_region, today, days);
            (*j, end_of_local_day(last, rules.time_zone))
        })
        .collect()
}

/// A reminder a request needs now.
#[derive(Debug, Clone)]
pub struct Needed {
    pub request: DueRow,
    pub message: Message,
    /// Working days left to the due date (0 when overdue).
    pub left: u32,
    pub due_at: DateTime<Utc>,
}

/// The open requests that need a reminder now, soonest due first (at most `limit`): overdue
/// ones, and those due within `days` working days in their jurisdiction's calendar, leaving
/// out those already reminded for their due date. One read of an index range (the clock
/// sweep; `rightsflow bench sweep` times it among 1,000,000 open requests).
pub fn find_needed(
    services: &Services,
    days: u32,
    now: DateTime<Utc>,
    limit: Option<i64>,
) -> Result<Vec<Needed>, ServiceError> {
    let cutoffs = due_soon_cutoffs(services, days, now);
    let named: Vec<(&str, DateTime<Utc>)> = cutoffs.iter().map(|(j, t)| (j.as_str(), *t)).collect();
    let rows = reminders::open_due_unreminded(&mut *services.db().conn()?, &named, now, limit)?;
    Ok(rows
        .into_iter()
        .filter_map(|request| {
            let due_at = from_db_time(request.due_at?);
            if due_at < now {
                return Some(Needed {
                    request,
                    message: Message::Overdue,
                    left: 0,
                    due_at,
                });
            }
            let jurisdiction = request.jurisdiction.parse::<Jurisdiction>().ok()?;
            let left = days_left(services, jurisdiction, now, request.due_date?);
            // The query chose by the cutoff; this is the same rule counted day by day.
            (left <= days).then_some(Needed {
                request,
                message: Message::DueSoon,
                left,
                due_at,
            })
        })
        .collect())
}

/// How many reminders one run queues at most; the next run takes the rest.
const PER_RUN: i64 = 1000;

/// Sends the reminders due now. Returns how many were queued.
pub fn send_due_reminders(
    services: &Services,
    days: u32,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let mut sent = 0;
    for needed in find_needed(services, days, now, Some(PER_RUN))? {
        if queue(services, &needed, now)? {
            sent += 1;
        }
    }
    if sent > 0 {
        tracing::info!(count = sent, "deadline reminders queued");
    }
    Ok(sent)
}

fn queue(services: &Services, needed: &Needed, now: DateTime<Utc>) -> Result<bool, ServiceError> {
    let request = &needed.request;
    let to = match &request.assignee_id {
        Some(id) => Recipient::Staff(id.clone()),
        None => Recipient::Reviewers,
    };
    let locale = request.locale.parse::<Locale>().unwrap_or_default();
    let extra = json!({ "working_days_left": needed.left });
    let row = outbox::notify_row(&request.id, None, &to, needed.message, locale, extra, now);
    let mut conn = services.db().conn()?;
    let result = crate::storage::db::write::<_, StoreError, _>(&mut conn, |c| {
        if !reminders::record(c, &request.id, needed.message.as_str(), needed.due_at, now)? {
            // Sent before: roll back (nothing was written) and say so.
            return Err(StoreError::Duplicate("reminder"));
        }
        outbox::insert(c, &row)
    });
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Duplicate(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A reminder a colleague sends from the console to the request's assignee. The note in the
/// event log comes first, so the core decides whether this staff member may act (auditors may
/// not) and the trail shows who reminded whom. Returns false when nobody is assigned.
pub fn remind_assignee(
    services: &Services,
    request_id: &str,
    actor: &crate::domain::Actor,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let request = crate::service::requests::get(services, request_id)?;
    let Some(assignee) = request.state.assignee.clone() else {
        return Ok(false);
    };
    if request.state.status.is_final() {
        return Ok(false);
    }
    let note = crate::domain::FreeText::parse("已提醒负责人 / reminder sent to the assignee")
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    crate::service::requests::act(
        services,
        request_id,
        actor,
        &crate::domain::Command::Note { text: note },
        None,
        now,
    )?;
    // Overdue: no "working days left" (the template would say "due today").
    let left = request
        .state
        .due
        .as_ref()
        .filter(|due| due.ends_at >= now)
        .map(|due| days_left(services, request.state.jurisdiction, now, due.date));
    let extra = json!({ "working_days_left": left });
    let row = outbox::notify_row(
        &request.id,
        None,
        &Recipient::Staff(assignee),
        Message::Reminder,
        request.locale,
        extra,
        now,
    );
    outbox::insert(&mut *services.db().conn()?, &row)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn the_last_day_due_soon_is_where_working_days_left_passes_days() {
        let cals = CalendarSet::builtin();
        // Every day of 2026 (Spring Festival, Golden Week and their make-up Saturdays in the cn
        // calendar) as today, every due date up to 40 days on, 0 to 6 working days.
        for region in ["cn", "eu"] {
            let mut today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            while today.year() == 2026 {
                for days in 0..=6 {
                    let last = last_day_due_soon(&cals, region, today, days);
                    for ahead in 0..40 {
                        let due = today + chrono::Days::new(ahead);
                        let left = working_days_left(&cals, region, today, due);
                        assert_eq!(
                            due <= last,
                            left <= days,
                            "{region} today {today} due {due} days {days} last {last}"
                        );
                    }
                }
                today = today.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn working_days_left_skip_weekends_and_holidays() {
        let cals = CalendarSet::builtin();
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        // Mon 28 Sep 2026 → Fri 9 Oct: 29, 30 Sep, then 1–7 Oct off, 8, 9 Oct.
        assert_eq!(
            working_days_left(&cals, "cn", d("2026-09-28"), d("2026-10-09")),
            4
        );
        assert_eq!(
            working_days_left(&cals, "cn", d("2026-10-09"), d("2026-10-09")),
            0
        );
        // Without a calendar (eu), Monday to Friday.
        assert_eq!(
            working_days_left(&cals, "eu", d("2026-09-28"), d("2026-10-09")),
            9
        );
    }
}

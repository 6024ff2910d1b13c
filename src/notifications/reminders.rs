//! Deadline reminders to staff: "due in N working days" and "overdue", sent once each per due
//! date, to the assignee or else to the deciders. Safe on several instances: the reminder is
//! recorded (primary key) in the same transaction as its notification.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use crate::clock::CalendarSet;
use crate::domain::{Message, Recipient};
use crate::service::{ServiceError, Services};
use crate::storage::outbox;
use crate::storage::rows::StoredRequest;
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

/// Sends the reminders due now. Returns how many were queued.
pub fn send_due_reminders(
    services: &Services,
    days: u32,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    // N working days never span more than 3N + 14 calendar days (weekends, Golden Weeks).
    let horizon = now + Duration::days(i64::from(days) * 3 + 14);
    let open = reminders::open_due_before(&mut *services.db().conn()?, horizon, 1000)?;
    let mut sent = 0;
    for request in open {
        let Some(due) = &request.state.due else {
            continue;
        };
        let rules = services.policy().rules(request.state.jurisdiction);
        let today = now.with_timezone(&rules.time_zone).date_naive();
        let (kind, left) = if due.ends_at < now {
            (Message::Overdue, 0)
        } else {
            let left = working_days_left(
                services.calendars(),
                &rules.calendar_region,
                today,
                due.date,
            );
            if left > days {
                continue;
            }
            (Message::DueSoon, left)
        };
        if queue(services, &request, kind, left, now)? {
            sent += 1;
        }
    }
    if sent > 0 {
        tracing::info!(count = sent, "deadline reminders queued");
    }
    Ok(sent)
}

fn queue(
    services: &Services,
    request: &StoredRequest,
    kind: Message,
    left: u32,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let Some(due) = &request.state.due else {
        return Ok(false);
    };
    let to = match &request.state.assignee {
        Some(id) => Recipient::Staff(id.clone()),
        None => Recipient::Reviewers,
    };
    let extra = json!({ "working_days_left": left });
    let row = outbox::notify_row(&request.id, None, &to, kind, request.locale, extra, now);
    let mut conn = services.db().conn()?;
    let result = crate::storage::db::write::<_, StoreError, _>(&mut conn, |c| {
        if !reminders::record(c, &request.id, kind.as_str(), due.ends_at, now)? {
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
        .map(|due| {
            let rules = services.policy().rules(request.state.jurisdiction);
            let today = now.with_timezone(&rules.time_zone).date_naive();
            working_days_left(
                services.calendars(),
                &rules.calendar_region,
                today,
                due.date,
            )
        });
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

//! The queue: open requests by due date, with filters, exact search by reference or contact,
//! the time left in working days (colour-coded), counts and pages.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::session::{finish, page_for, signed_in};
use super::Tpl;
use crate::domain::{EmailAddress, Jurisdiction, PhoneNumber, Reference, RequestKind, Status};
use crate::notifications::reminders::working_days_left;
use crate::service::{now, ServiceError, Services};
use crate::storage::requests::{open_by_status, ListFilter};
use crate::storage::rows::StoredRequest;
use crate::web::error::blocking;
use crate::web::portal::page::Page;
use crate::web::views::status_class;

pub const PAGE_SIZE: i64 = 50;
/// "Due soon": this many working days or fewer left.
pub const DUE_SOON_DAYS: u32 = 3;

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub jurisdiction: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub due_within: Option<String>,
    #[serde(default)]
    pub overdue: Option<String>,
    #[serde(default)]
    pub second: Option<String>,
    #[serde(default)]
    pub duplicate: Option<String>,
    #[serde(default)]
    pub minor: Option<String>,
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn flag(v: &Option<String>) -> bool {
    given(v).is_some_and(|v| v == "1" || v == "on" || v == "true")
}

/// The filter a query asks for; `Err(field)` names a value that is not understood.
pub fn filter_of(q: &QueueQuery, me: &str, at: DateTime<Utc>) -> Result<ListFilter, &'static str> {
    let mut f = ListFilter {
        limit: PAGE_SIZE,
        ..ListFilter::default()
    };
    match given(&q.status) {
        None | Some("open") => f.open_only = true,
        Some("all") => {}
        Some(s) => f.status = Some(s.parse::<Status>().map_err(|_| "status")?),
    }
    f.kind = given(&q.kind)
        .map(|k| k.parse::<RequestKind>().map_err(|_| "kind"))
        .transpose()?;
    f.jurisdiction = given(&q.jurisdiction)
        .map(|j| j.parse::<Jurisdiction>().map_err(|_| "jurisdiction"))
        .transpose()?;
    f.assignee = given(&q.assignee).map(|a| {
        if a == "me" {
            me.to_owned()
        } else {
            a.to_owned()
        }
    });
    if let Some(days) = given(&q.due_within) {
        let days: i64 = days
            .parse()
            .ok()
            .filter(|d| (0..=366).contains(d))
            .ok_or("due_within")?;
        f.due_before = Some(at + Duration::days(days));
        // Overdue ones have their own filter.
        f.due_after = Some(at);
    }
    f.overdue_at = flag(&q.overdue).then_some(at);
    f.second_approval_for = flag(&q.second).then(|| me.to_owned());
    f.duplicates_only = flag(&q.duplicate);
    f.minors_only = flag(&q.minor);
    if let Some(text) = given(&q.q) {
        // Exact matches only: a reference, an email address or a phone number.
        if let Ok(r) = Reference::parse(text) {
            f.reference = Some(r.as_str().to_owned());
        } else if let Ok(e) = EmailAddress::parse(text) {
            f.email = Some(e.as_str().to_owned());
        } else if let Ok(p) = PhoneNumber::parse(text) {
            f.phone = Some(p.as_str().to_owned());
        } else {
            return Err("q");
        }
        // A search looks everywhere, ended requests too, unless a single status is chosen.
        f.open_only = false;
    }
    let page: i64 = given(&q.page)
        .map(|p| p.parse().map_err(|_| "page"))
        .transpose()?
        .unwrap_or(1);
    if !(1..=crate::web::MAX_PAGE).contains(&page) {
        return Err("page");
    }
    f.offset = (page - 1) * PAGE_SIZE;
    Ok(f)
}

/// Working days left and the colour class: on track, due soon, overdue.
pub fn time_left(
    s: &Services,
    r: &StoredRequest,
    at: DateTime<Utc>,
) -> Option<(i64, &'static str)> {
    let due = r.state.due.as_ref()?;
    if r.state.status.is_final() {
        return None;
    }
    if due.ends_at < at {
        return Some((-1, "overdue"));
    }
    let rules = s.policy().rules(r.state.jurisdiction);
    let today = at.with_timezone(&rules.time_zone).date_naive();
    let left = working_days_left(s.calendars(), &rules.calendar_region, today, due.date);
    Some((
        i64::from(left),
        if left <= DUE_SOON_DAYS {
            "due-soon"
        } else {
            "on-track"
        },
    ))
}

/// One queue row as the page and the CSV export show it: no more personal data than that.
pub fn row_view(
    page: &Page,
    s: &Services,
    r: &StoredRequest,
    staff: &StaffList,
    at: DateTime<Utc>,
) -> Value {
    let left = time_left(s, r, at);
    json!({
        "id": r.id,
        "reference": r.reference.as_str(),
        "kind": super::label(page, r.state.kind),
        "jurisdiction": r.state.jurisdiction.as_str(),
        "status": super::status_label(page, r.state.status),
        "status_code": r.state.status.as_str(),
        "status_class": status_class(r.state.status),
        "received": page.time(r.state.received_at),
        "due": r.state.due.as_ref().map(|d| d.date.to_string()),
        "left": left.map(|(n, class)| json!({
            "class": class,
            "text": if n < 0 { page.t("queue.overdue") } else { page.count("queue.days_left", n) },
        })),
        "assignee": r.state.assignee.as_deref().map(|a| staff.name(a)),
        "duplicate": r.duplicate_of.is_some(),
        "minor": r.state.representative == Some(crate::domain::Relationship::Guardian),
        "prepared": r.state.first_approval_by.is_some() && r.state.status == Status::InReview,
    })
}

/// The staff accounts, read once for a page: who an id is (assignees, preparers) and who can
/// be given work.
pub struct StaffList(Vec<crate::storage::staff::StaffRow>);

impl StaffList {
    pub fn load(s: &Services) -> Result<StaffList, ServiceError> {
        Ok(StaffList(crate::storage::staff::all(&mut *s.db().conn()?)?))
    }

    /// The staff member's email, or the id itself for an account that no longer exists.
    pub fn name(&self, id: &str) -> String {
        self.0
            .iter()
            .find(|r| r.id == id)
            .map_or_else(|| id.to_owned(), |r| r.email.clone())
    }

    /// Active staff who may act, as options (`selected` marks the current assignee).
    pub fn assignable(&self, selected: Option<&str>) -> Vec<Value> {
        self.0
            .iter()
            .filter(|st| st.active && st.role != "auditor")
            .map(|st| json!({ "id": st.id, "email": st.email, "selected": selected == Some(st.id.as_str()) }))
            .collect()
    }
}

fn options<T: super::Labelled + Copy>(
    page: &Page,
    values: &[T],
    code: fn(T) -> &'static str,
    chosen: Option<&str>,
) -> Vec<Value> {
    values
        .iter()
        .map(|v| json!({ "value": code(*v), "label": super::label(page, *v), "selected": chosen == Some(code(*v)) }))
        .collect()
}

pub async fn queue(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let page = page_for(&req, &user).showing_times();
    let query = web::Query::<QueueQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let at = now();
    let filter = filter_of(&query, &user.staff.id, at);
    let (services, p) = (s.clone(), page.clone());
    let loaded = blocking(move || {
        let Ok(filter) = filter else {
            return Ok((vec![], 0, vec![], vec![], filter.err()));
        };
        let mut conn = services.db().conn()?;
        // The open tallies once, for the page's total and the tabs' counts.
        let open = crate::storage::tallies::open(&mut conn)?;
        let (rows, total) = crate::storage::requests::list_with(&mut conn, &filter, Some(&open))?;
        let counts = open_by_status(&open);
        drop(conn);
        let staff = StaffList::load(&services)?;
        let rows: Vec<Value> = rows
            .iter()
            .map(|r| row_view(&p, &services, r, &staff, at))
            .collect();
        Ok((rows, total, counts, staff.assignable(None), None))
    })
    .await;
    let number =
        |k: &str| crate::web::portal::page::web_query(&req, k).and_then(|v| v.parse::<u32>().ok());
    let bulk_notice = number("done").map(|done| {
        page.t("queue.bulk_done")
            .replace("{n}", &done.to_string())
            .replace("{refused}", &number("refused").unwrap_or(0).to_string())
    });
    // Where the bulk form returns to: this queue, with its filters, without the last notice.
    let back: String = {
        let rest: Vec<&str> = req
            .query_string()
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("done=") && !p.starts_with("refused="))
            .collect();
        if rest.is_empty() {
            "/console/queue".into()
        } else {
            format!("/console/queue?{}", rest.join("&"))
        }
    };
    let (rows, total, counts, assignable, bad) = match loaded {
        Ok(v) => v,
        Err(e) => return super::error_page(&page, &n, &user, &e),
    };
    let current = given(&query.page)
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let link_for = |to: i64| {
        let rest: String = req
            .query_string()
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page="))
            .map(|p| format!("{p}&"))
            .collect();
        format!("/console/queue?{rest}page={to}")
    };
    let counts: Vec<Value> = Status::ALL
        .iter()
        .filter(|st| !st.is_final())
        .map(|st| {
            let c = counts.iter().find(|(k, _)| k == st.as_str()).map_or(0, |(_, c)| *c);
            json!({ "status": st.as_str(), "label": super::status_label(&page, *st), "count": c, "class": status_class(*st) })
        })
        .collect();
    let csv = format!("/console/queue.csv?{}", req.query_string());
    let title = page.t("queue.title");
    let status_choice = given(&query.status).unwrap_or("open");
    let status_options: Vec<Value> = [
        json!({ "value": "open", "label": page.t("queue.open"), "selected": status_choice == "open" }),
        json!({ "value": "all", "label": page.t("queue.all"), "selected": status_choice == "all" }),
    ]
    .into_iter()
    .chain(Status::ALL.iter().map(|st| json!({ "value": st.as_str(), "label": super::status_label(&page, *st), "selected": status_choice == st.as_str() })))
    .collect();
    let jurisdictions: Vec<Value> = ["cn", "eu", "us-ca"]
        .iter()
        .map(|j| json!({ "value": j, "label": page.t(&format!("jurisdictions.{j}")), "selected": given(&query.jurisdiction) == Some(*j) }))
        .collect();
    let ctx = json!({
        "rows": rows,
        "total": total,
        "total_text": page.count("queue.total", total),
        "counts": counts,
        "bad_filter": bad.map(|f| page.t(&format!("queue.bad.{f}"))),
        "filters": {
            "status": status_options,
            "kind": options(&page, RequestKind::ALL, RequestKind::as_str, given(&query.kind)),
            "jurisdiction": jurisdictions,
            "assignee_me": given(&query.assignee) == Some("me"),
            "due_within": given(&query.due_within).unwrap_or_default(),
            "overdue": flag(&query.overdue),
            "second": flag(&query.second),
            "duplicate": flag(&query.duplicate),
            "minor": flag(&query.minor),
            "q": given(&query.q).unwrap_or_default(),
        },
        "pager": {
            "current": current,
            "pages": pages,
            "text": page.t("queue.page").replace("{n}", &current.to_string()).replace("{of}", &pages.to_string()),
            "prev": (current > 1).then(|| link_for(current - 1)),
            "next": (current < pages).then(|| link_for(current + 1)),
        },
        "csv": csv,
        "assignable": assignable,
        "bulk_notice": bulk_notice,
        "back": back,
    });
    let status = if bad.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    finish(page.render(&n, status, "queue", &title, ctx), &user)
}

/// The most rows one export holds; a larger export is refused with a hint to filter.
pub const CSV_LIMIT: i64 = 10_000;

/// One CSV cell: quoted when needed, and never read as a formula by a spreadsheet.
fn cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The filtered queue as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
/// Chinese right): the same columns as the screen, no contact data.
pub async fn csv(req: HttpRequest, s: web::Data<Services>, n: Tpl) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let page = page_for(&req, &user);
    let query = web::Query::<QueueQuery>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let at = now();
    let mut filter = match filter_of(&query, &user.staff.id, at) {
        Ok(f) => f,
        Err(field) => {
            let e = crate::web::ApiError::invalid(
                "invalid_filter",
                page.t(&format!("queue.bad.{field}")),
                page.t(&format!("queue.bad.{field}")),
            );
            return super::error_page(&page, &n, &user, &e);
        }
    };
    filter.offset = 0;
    filter.limit = CSV_LIMIT + 1;
    let (services, p, actor) = (s.clone(), page.clone(), user.actor.clone());
    let built = blocking(move || {
        // A report: read where reports read (the replica, when there is one).
        let (rows, total) =
            crate::storage::requests::list(&mut *services.reports_db().0.conn()?, &filter)?;
        if total > CSV_LIMIT {
            return Ok(None);
        }
        crate::service::audit_log::record(
            &services,
            &actor,
            crate::storage::audit_log::action::QUEUE_EXPORTED,
            None,
            json!({ "rows": rows.len() }),
            at,
        )?;
        let staff = StaffList::load(&services)?;
        let mut out = String::from("\u{feff}");
        let header: Vec<String> = [
            "reference",
            "kind",
            "jurisdiction",
            "status",
            "received",
            "due",
            "left",
            "assignee",
            "flags",
        ]
        .iter()
        .map(|c| cell(&p.t(&format!("queue.csv.{c}"))))
        .collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for r in &rows {
            let v = row_view(&p, &services, r, &staff, at);
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            let flags: Vec<String> = [
                ("duplicate", "flag_duplicate"),
                ("minor", "flag_minor"),
                ("prepared", "flag_prepared"),
            ]
            .iter()
            .filter(|(k, _)| v[*k] == true)
            .map(|(_, w)| p.t(&format!("queue.{w}")))
            .collect();
            let line = [
                text("reference"),
                text("kind"),
                text("jurisdiction"),
                text("status"),
                text("received"),
                text("due"),
                v["left"]["text"].as_str().unwrap_or_default().to_owned(),
                text("assignee"),
                flags.join(" "),
            ];
            out.push_str(&line.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        Ok(Some(out))
    })
    .await;
    match built {
        Ok(Some(body)) => {
            let mut b = HttpResponse::Ok();
            crate::web::portal::page::secure(&mut b);
            let res = b
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    "Content-Disposition",
                    format!(
                        "attachment; filename=\"rightsflow-queue-{}.csv\"",
                        at.format("%Y%m%d-%H%M")
                    ),
                ))
                .body(body);
            finish(res, &user)
        }
        Ok(None) => {
            let msg = page.count("queue.csv_too_many", CSV_LIMIT);
            let e = crate::web::ApiError::invalid("export_too_large", msg.clone(), msg);
            super::error_page(&page, &n, &user, &e)
        }
        Err(e) => super::error_page(&page, &n, &user, &e),
    }
}

/// Bulk actions on the rows ticked in the queue: assign them all to someone, or remind each
/// one's assignee. Each request goes through the core on its own; what could not be done is
/// counted and said.
pub async fn bulk(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (user, page, posted) = match super::session::form(&req, &s, &n, body).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    if !matches!(&user.actor, crate::domain::Actor::Staff { role, .. } if role.acts()) {
        let e = crate::web::ApiError::from(ServiceError::NotPermitted);
        return super::error_page(&page, &n, &user, &e);
    }
    let ids: Vec<String> = posted
        .0
        .iter()
        .filter(|(k, _)| k == "ids")
        .map(|(_, v)| v.clone())
        .take(PAGE_SIZE as usize)
        .collect();
    let action = posted.one("bulk").unwrap_or_default().to_owned();
    let assignee = posted
        .one("assignee")
        .filter(|a| *a != "none")
        .map(str::to_owned);
    let back = posted
        .one("back")
        .filter(|b| b.starts_with("/console/queue"))
        .unwrap_or("/console/queue")
        .to_owned();
    let (services, actor) = (s.clone(), user.actor.clone());
    let done = blocking(move || {
        let (mut ok, mut refused) = (0usize, 0usize);
        for id in &ids {
            let outcome = match action.as_str() {
                "assign" => {
                    let command = crate::domain::Command::Assign {
                        assignee: assignee.clone(),
                    };
                    crate::service::requests::act(&services, id, &actor, &command, None, now())
                        .map(|_| true)
                }
                "remind" => {
                    crate::notifications::reminders::remind_assignee(&services, id, &actor, now())
                }
                _ => Err(ServiceError::NotFound),
            };
            match outcome {
                Ok(true) => ok += 1,
                Ok(false)
                | Err(ServiceError::Transition(_))
                | Err(ServiceError::NotFound)
                | Err(ServiceError::UnknownAssignee) => refused += 1,
                Err(e) => return Err(e),
            }
        }
        Ok((ok, refused))
    })
    .await;
    match done {
        Ok((ok, refused)) => {
            let sep = if back.contains('?') { '&' } else { '?' };
            finish(
                page.redirect(&format!("{back}{sep}done={ok}&refused={refused}")),
                &user,
            )
        }
        Err(e) => super::error_page(&page, &n, &user, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(cell("DSR-1"), "DSR-1");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(cell("-1"), "'-1");
    }
}

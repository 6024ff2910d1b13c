//! One request in the console: everything about it, its timeline, identity evidence, results,
//! messages and notes, and a form for each command the core allows this staff member now
//! (and only those). Rejections and extensions are previewed before they are confirmed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::queue::{time_left, StaffList};
use super::session::{finish, form, page_for, signed_in};
use super::Tpl;
use crate::domain::{allowed_commands, apply, Actor, Command, Message, RejectionReason};
use crate::notifications::context;
use crate::notifications::templates::Audience;
use crate::service::staff::ConsoleUser;
use crate::service::{now, requests, ServiceError, Services};
use crate::storage::from_db_time;
use crate::storage::rows::StoredRequest;
use crate::web::error::{blocking, ApiError};
use crate::web::portal::forms::Posted;
use crate::web::portal::page::Page;
use crate::web::views::status_class;

/// What a preview shows before a reject or extend is confirmed.
struct Preview {
    command: &'static str,
    fields: Vec<(String, String)>,
    letter: Option<String>,
    new_due: Option<String>,
}

/// Everything the request page shows, read in one blocking step.
fn context_for(
    page: &Page,
    s: &Services,
    n: &crate::notifications::Notifier,
    user: &ConsoleUser,
    r: &StoredRequest,
    preview: Option<&Preview>,
    error: Option<String>,
) -> Result<Value, ServiceError> {
    let at = now();
    let events = requests::events(s, &r.id)?;
    let allowed = allowed_commands(&r.state, &user.actor, &s.context(at));
    let staff = StaffList::load(s)?;
    let name_of = |id: &str| staff.name(id);
    let timeline: Vec<Value> = events
        .iter()
        .rev()
        .map(|(seq, e)| {
            let who = match &e.actor {
                Actor::Staff { id, role } => format!(
                    "{} ({})",
                    name_of(id),
                    page.t(&format!("roles.{}", role.as_str()))
                ),
                Actor::Subject => page.t("actors.subject"),
                Actor::System => page.t("actors.system"),
            };
            let said: Vec<String> = [
                "question",
                "message",
                "comment",
                "reason",
                "explanation",
                "summary",
                "text",
                "evidence",
                "method",
                "assignee",
            ]
            .iter()
            .filter_map(|k| {
                let v = e.details.get(*k)?.as_str()?;
                let v = if *k == "assignee" {
                    name_of(v)
                } else {
                    v.to_owned()
                };
                Some(format!("{}: {v}", page.t(&format!("fields.{k}"))))
            })
            .collect();
            json!({
                "seq": seq,
                "at": page.time(e.at),
                "command": page.t(&format!("commands.{}", e.command)),
                "who": who,
                "from": e.from.map(|f| super::status_label(page, f)),
                "to": super::status_label(page, e.to),
                "said": said,
                "note": e.command == "note",
            })
        })
        .collect();
    let evidence: Vec<Value> = events
        .iter()
        .filter(|(_, e)| e.command == "verify" || e.command == "verification_failed")
        .map(|(_, e)| {
            json!({
                "at": page.time(e.at),
                "ok": e.command == "verify",
                "method": e.details.get("method").and_then(Value::as_str).map(|m| page.t(&format!("methods.{m}"))),
                "evidence": e.details.get("evidence").and_then(Value::as_str),
            })
        })
        .collect();
    let mut conn = s.db().conn()?;
    let messages: Vec<Value> = crate::storage::inbox::for_request(&mut conn, &r.id)?
        .iter()
        .rev()
        .map(|m| json!({ "subject": m.subject, "at": page.time(from_db_time(m.created_at)), "body": m.body }))
        .collect();
    let results: Vec<Value> = crate::storage::results::live_for_request(&mut conn, &r.id, crate::storage::to_db_time(at))?
        .iter()
        .map(|m| json!({ "file_name": m.file_name, "size": m.size, "downloads": m.downloads, "expires": page.time(from_db_time(m.expires_at)), "sha256": m.sha256 }))
        .collect();
    let systems = s.systems();
    let task_rows = crate::storage::tasks::for_request(&mut conn, &r.id)?;
    // A request an agent or a controller sent says so, and which one.
    let via = match crate::storage::drp::agent_of_request(&mut conn, &r.id)? {
        Some(agent) => Some((page.t("request.via_drp"), agent)),
        None => crate::storage::opendsr::controller_of_request(&mut conn, &r.id)?
            .map(|c| (page.t("request.via_opendsr"), c)),
    }
    .map(|(label, sender)| json!({ "label": label, "sender": sender }));
    let tasks: Vec<Value> = task_rows
        .iter()
        .map(|t| {
            let system = systems.find(&t.task.system);
            let instructions = system.and_then(|x| match &x.connector {
                crate::fulfilment::registry::Connector::Manual { instructions, .. } => {
                    Some(instructions.as_str())
                }
                _ => None,
            });
            let open = t.task.status == crate::storage::tasks::PENDING;
            // Ended: as the task says. Open: as its outbox row stands (a task whose retries ran
            // out shows `failed` with the last error); once its row is done, it waits for the
            // system's callback, or for staff when it is a checklist item.
            let state = match t.task.status.as_str() {
                crate::storage::tasks::PENDING if t.run_status == crate::storage::outbox::DONE => {
                    if instructions.is_some() {
                        "waiting_staff"
                    } else {
                        "waiting_callback"
                    }
                }
                crate::storage::tasks::PENDING => t.run_status.as_str(),
                other => other,
            };
            json!({
                "id": t.task.id,
                "open": open,
                "instructions": instructions,
                "manual": open && instructions.is_some(),
                "system": systems.find(&t.task.system).map_or(t.task.system.as_str(), |x| x.label.as_str()),
                "action": page.t(&format!("tasks.actions.{}", t.task.action)),
                "state": page.t(&format!("tasks.states.{state}")),
                "state_code": state,
                "attempts": t.attempts,
                "error": (state == "failed").then(|| t.last_error.clone()).flatten(),
                "done_at": t.task.done_at.map(|d| page.time(from_db_time(d))),
            })
        })
        .collect();
    drop(conn);
    // A restriction in force stays after completion; reviewers lift it with notice.
    use crate::fulfilment::restriction::{standing_of, Standing};
    let restriction = match standing_of(r, &task_rows) {
        Standing::None => Value::Null,
        Standing::InForce => json!({ "in_force": true }),
        Standing::Lifting(at) => json!({ "lifting_at": page.time(at) }),
        Standing::Lifted => json!({ "lifted": true }),
    };
    let assignable = staff.assignable(r.state.assignee.as_deref());
    let reasons: Vec<Value> = RejectionReason::ALL
        .iter()
        .map(|x| json!({ "value": x.as_str(), "label": super::label(page, *x) }))
        .collect();
    let can = |c: &str| allowed.contains(&c);
    let kind = r.state.kind;
    let four_eyes = s.policy().kind(kind).four_eyes;
    let left = time_left(s, r, at);
    let details = r.details.clone();
    let preview = preview.map(|p| {
        let fields: Vec<Value> = p
            .fields
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        json!({ "command": p.command, "fields": fields, "letter": p.letter, "new_due": p.new_due })
    });
    let can = json!({
        "assign": can("assign"), "request_info": can("request_info"), "verify": can("verify"),
        "approve": can("approve"), "reject": can("reject"), "extend": can("extend"),
        "start_fulfilment": can("start_fulfilment"), "complete": can("complete"), "note": can("note"),
    });
    let subject = json!({
        "name": r.contact.name,
        "email": r.contact.email.as_ref().map(|e| e.as_str().to_owned()),
        "phone": r.contact.phone.as_ref().map(|p| p.as_str().to_owned()),
    });
    let left = left.map(|(n, class)| json!({ "class": class, "text": if n < 0 { page.t("queue.overdue") } else { page.count("queue.days_left", n) } }));
    let methods: Vec<String> = r
        .state
        .verified_methods
        .iter()
        .map(|m| page.t(&format!("methods.{}", m.as_str())))
        .collect();
    let mut facts = json!({
        "id": r.id,
        "reference": r.reference.as_str(),
        "version": r.state.version,
        "kind": super::label(page, kind),
        "kind_code": kind.as_str(),
        "jurisdiction": page.t(&format!("jurisdictions.{}", r.state.jurisdiction.as_str())),
        "status": super::status_label(page, r.state.status),
        "status_code": r.state.status.as_str(),
        "status_class": status_class(r.state.status),
        "channel": page.t(&format!("channels.{}", r.channel.as_str())),
        "via": via,
        "locale": r.locale.as_str(),
        "received": page.time(r.state.received_at),
        "verified": r.state.verified_at.map(|t| page.time(t)),
        "methods": methods,
        "representative": r.state.representative.map(|x| page.t(&format!("representatives.{}", x.as_str()))),
        "due": r.state.due.as_ref().map(|d| page.deadline(d.ends_at)),
        "left": left,
        "acknowledge_by": r.state.acknowledge_by.as_ref().map(|d| page.deadline(d.ends_at)),
        "extended": r.state.extended_at.is_some(),
        "assignee": r.state.assignee.as_deref().map(name_of),
        "prepared_by": r.state.first_approval_by.as_deref().map(name_of),
        "four_eyes": four_eyes,
        "duplicate_of": r.duplicate_of,
        "subject": subject,
        "rejection": r.state.rejection.map(|x| super::label(page, x)),
    });
    let more = json!({
        "details": details_rows(page, &details),
        "timeline": timeline,
        "evidence": evidence,
        "messages": messages,
        "results": results,
        "tasks": tasks,
        "restriction": restriction,
        // Reviewers and admins record why a task cannot be done.
        "can_waive": matches!(&user.actor, crate::domain::Actor::Staff { role, .. } if role.decides()),
        // Checklist items are done by whoever works the request (not auditors).
        "can_mark_done": matches!(&user.actor, crate::domain::Actor::Staff { role, .. } if *role != crate::domain::Role::Auditor),
        "read_only": allowed.is_empty(),
        "can": can,
        "complaint": kind == crate::domain::RequestKind::Complaint,
        "assignable": assignable,
        "reasons": reasons,
        "me": user.staff.id,
        "preview": preview,
        "error": error,
        "app_name": n.site.app_name,
    });
    if let (Some(a), Value::Object(b)) = (facts.as_object_mut(), more) {
        a.extend(b);
    }
    Ok(facts)
}

/// The request's details as label/value rows, whatever the kind.
fn details_rows(page: &Page, details: &Value) -> Vec<Value> {
    let Some(map) = details.as_object() else {
        return vec![];
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        Value::Object(o) => o
                            .iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                            .collect::<Vec<_>>()
                            .join(", "),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            json!({ "label": page.t(&format!("details.{k}")), "key": k, "value": worded(page, k, &text) })
        })
        .collect()
}

/// How the page is shown: its status code, and a preview or an error at the top.
struct Shown {
    status: StatusCode,
    preview: Option<Preview>,
    error: Option<String>,
    /// "Done": the page after an action was applied.
    notice: bool,
}

impl Shown {
    fn ok() -> Shown {
        Shown {
            status: StatusCode::OK,
            preview: None,
            error: None,
            notice: false,
        }
    }

    fn error(status: StatusCode, message: String) -> Shown {
        Shown {
            status,
            preview: None,
            error: Some(message),
            notice: false,
        }
    }
}

/// Codes in the details (`orders`, `objection`) in words, from the portal's option lists; free
/// text stays as the subject wrote it.
fn worded(page: &Page, key: &str, text: &str) -> String {
    let list = match key {
        "categories" => "categories",
        "consents" => "consents",
        "format" => "formats",
        "scope" => "scopes",
        "ground" => "grounds",
        _ => return text.to_owned(),
    };
    text.split("; ")
        .map(|code| {
            let w = crate::web::portal::page::word(page.locale, &format!("options.{list}.{code}"));
            if w.is_empty() {
                code.to_owned()
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join("；")
}

async fn render(
    req: &HttpRequest,
    s: &web::Data<Services>,
    n: &Tpl,
    user: &ConsoleUser,
    r: StoredRequest,
    shown: Shown,
) -> HttpResponse {
    let Shown {
        status,
        preview,
        error,
        notice,
    } = shown;
    let page = page_for(req, user).showing_times();
    let title = format!("{} · {}", page.t("request.title"), r.reference);
    let (services, notifier, p, u) = (s.clone(), n.clone(), page.clone(), user.clone());
    let loaded =
        blocking(move || context_for(&p, &services, &notifier, &u, &r, preview.as_ref(), error))
            .await;
    match loaded {
        Ok(mut ctx) => {
            ctx["notice"] = json!(notice.then(|| page.t("request.done")));
            finish(page.render(n, status, "request", &title, ctx), user)
        }
        Err(e) => super::error_page(&page, n, user, &e),
    }
}

pub async fn show(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
) -> HttpResponse {
    let user = match signed_in(&req, &s).await {
        Ok(u) => u,
        Err(to) => return to,
    };
    let services = s.clone();
    let id = path.into_inner();
    let done = crate::web::portal::page::web_query(&req, "done").is_some();
    let actor = user.actor.clone();
    match blocking(move || requests::open_for_staff(&services, &actor, &id)).await {
        Ok(r) => {
            let shown = Shown {
                notice: done,
                ..Shown::ok()
            };
            render(&req, &s, &n, &user, r, shown).await
        }
        Err(e) => super::error_page(&page_for(&req, &user), &n, &user, &e),
    }
}

/// The command a form asks for, as the staff API's JSON body.
fn command_json(p: &Posted) -> Result<Value, String> {
    let name = p.one("command").ok_or("command")?;
    let mut body = Map::new();
    body.insert("command".into(), name.into());
    let text = |k: &str| {
        p.one(k)
            .map(|v| Value::from(v.to_owned()))
            .unwrap_or(Value::Null)
    };
    match name {
        "assign" => {
            let who = p.one("assignee").filter(|a| *a != "none");
            body.insert("assignee".into(), who.map_or(Value::Null, Value::from));
        }
        "request_info" => {
            body.insert("question".into(), text("question"));
        }
        "verify" => {
            body.insert("method".into(), "staff_check".into());
            body.insert("evidence".into(), text("evidence"));
        }
        "approve" => {
            body.insert("comment".into(), text("comment"));
        }
        "reject" => {
            body.insert("reason".into(), text("reject_reason"));
            body.insert("explanation".into(), text("explanation"));
        }
        "extend" => {
            body.insert("reason".into(), text("reason"));
        }
        "complete" => {
            body.insert("summary".into(), text("summary"));
        }
        "note" => {
            body.insert("text".into(), text("text"));
        }
        "start_fulfilment" => {}
        _ => return Err("command".into()),
    }
    Ok(Value::Object(
        body.into_iter().filter(|(_, v)| !v.is_null()).collect(),
    ))
}

/// Applies a command from a form. Reject and extend are shown first (the letter, the new
/// date) and applied only when confirmed.
pub async fn act(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (user, page, posted) = match form(&req, &s, &n, body).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let id = path.into_inner();
    let services = s.clone();
    let rid = id.clone();
    let r = match blocking(move || requests::get(&services, &rid)).await {
        Ok(r) => r,
        Err(e) => return super::error_page(&page, &n, &user, &e),
    };
    let parsed = command_json(&posted)
        .map_err(|_| ApiError::invalid("invalid_command", "未知的操作", "Unknown action"))
        .and_then(|json| {
            serde_json::from_value::<Command>(json).map_err(crate::web::json_body_error)
        });
    let command = match parsed {
        Ok(c) => c,
        Err(e) => {
            let msg = e.message(page.locale).to_owned();
            let shown = Shown::error(StatusCode::UNPROCESSABLE_ENTITY, msg);
            return render(&req, &s, &n, &user, r, shown).await;
        }
    };
    let version = posted.one("version").and_then(|v| v.parse::<i64>().ok());
    let confirmed = posted.one("confirm") == Some("1");
    if matches!(command, Command::Reject { .. } | Command::Extend { .. }) && !confirmed {
        let (services, notifier, actor) = (s.clone(), n.clone(), user.actor.clone());
        let (r2, locale, cmd) = (r.clone(), r.locale, command.clone());
        let preview = blocking(move || {
            let outcome = apply(&r2.state, &actor, &cmd, &services.context(now()))?;
            let mut after = r2.clone();
            after.state = outcome.state;
            let letter = match &cmd {
                Command::Reject { .. } => {
                    let ctx = context::build(
                        &notifier.site,
                        services.policy(),
                        &after,
                        locale,
                        Message::Rejected,
                        Some(&outcome.event),
                        &Map::new(),
                    );
                    notifier
                        .templates
                        .render_email(locale, Audience::Subject, Message::Rejected.as_str(), &ctx)
                        .map(|m| format!("{}\n\n{}", m.subject, m.text))
                        .ok()
                }
                _ => None,
            };
            Ok((letter, after.state.due.map(|d| d.ends_at)))
        })
        .await;
        return match preview {
            Ok((letter, due)) => {
                let fields: Vec<(String, String)> = posted
                    .0
                    .iter()
                    .filter(|(k, _)| k != "csrf" && k != "confirm")
                    .cloned()
                    .collect();
                let p = Preview {
                    command: if matches!(command, Command::Reject { .. }) {
                        "reject"
                    } else {
                        "extend"
                    },
                    fields,
                    letter,
                    new_due: due.map(|d| page.deadline(d)),
                };
                render(
                    &req,
                    &s,
                    &n,
                    &user,
                    r,
                    Shown {
                        preview: Some(p),
                        ..Shown::ok()
                    },
                )
                .await
            }
            Err(e) => {
                let msg = e.message(page.locale).to_owned();
                render(&req, &s, &n, &user, r, Shown::error(e.status(), msg)).await
            }
        };
    }
    let (services, actor) = (s.clone(), user.actor.clone());
    let rid = id.clone();
    match blocking(move || requests::act(&services, &rid, &actor, &command, version, now())).await {
        Ok(_) => finish(
            page.redirect(&format!("/console/requests/{id}?done=1")),
            &user,
        ),
        Err(e) => {
            let msg = e.message(page.locale).to_owned();
            render(&req, &s, &n, &user, r, Shown::error(e.status(), msg)).await
        }
    }
}

/// A reviewer records why a fulfilment task cannot be done (`reason`); the request completes
/// once every task has ended, and the subject is told the reason.
pub async fn waive(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<(String, String)>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    task_form(req, s, n, path, body, |services, actor, task, posted| {
        let reason = posted.one("reason").unwrap_or_default();
        crate::fulfilment::run::waive(services, actor, task, reason, crate::service::now())
    })
    .await
}

/// Staff mark a checklist task done: what they did (`what`) and, optionally, where the
/// evidence is (`evidence`).
pub async fn mark_done(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<(String, String)>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    task_form(req, s, n, path, body, |services, actor, task, posted| {
        crate::fulfilment::run::mark_done(
            services,
            actor,
            task,
            posted.one("what").unwrap_or_default(),
            posted.one("evidence"),
            crate::service::now(),
        )
    })
    .await
}

/// A reviewer lifts a restriction in force (`reason`); the subject is told now.
pub async fn lift_restriction(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let id = path.into_inner();
    let path = web::Path::from((id.clone(), id));
    task_form(req, s, n, path, body, |services, actor, request, posted| {
        let reason = posted.one("reason").unwrap_or_default();
        crate::fulfilment::restriction::lift(
            services,
            actor,
            request,
            reason,
            crate::service::now(),
        )
        .map(|_| ())
    })
    .await
}

/// A form on a request page (a task's, or the request's own: then both path parts are the
/// request id): checked like every console form, `act` run off the async threads; the request
/// page again with the outcome (or the error beside the form).
async fn task_form(
    req: HttpRequest,
    s: web::Data<Services>,
    n: Tpl,
    path: web::Path<(String, String)>,
    body: web::Form<Vec<(String, String)>>,
    act: impl FnOnce(
            &Services,
            &crate::domain::Actor,
            &str,
            &crate::web::portal::forms::Posted,
        ) -> Result<(), crate::service::ServiceError>
        + Send
        + 'static,
) -> HttpResponse {
    let (user, page, posted) = match form(&req, &s, &n, body).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let (id, task) = path.into_inner();
    let (services, actor) = (s.clone(), user.actor.clone());
    let done = blocking(move || act(&services, &actor, &task, &posted)).await;
    match done {
        Ok(()) => finish(
            page.redirect(&format!("/console/requests/{id}?done=1")),
            &user,
        ),
        Err(e) if e.status() == StatusCode::FORBIDDEN || e.status() == StatusCode::NOT_FOUND => {
            super::error_page(&page, &n, &user, &e)
        }
        Err(e) => {
            let services = s.clone();
            match blocking(move || requests::get(&services, &id)).await {
                Ok(r) => {
                    let msg = e.message(page.locale).to_owned();
                    render(&req, &s, &n, &user, r, Shown::error(e.status(), msg)).await
                }
                Err(e) => super::error_page(&page, &n, &user, &e),
            }
        }
    }
}

//! The one transition function. Given a state, an actor and a command it returns the next state,
//! the audit event and the effects to carry out, or says why the command is not allowed now.
//! It reads the clock only through `Context::now`, so tests drive time by hand.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::identity;
use super::{
    Actor, ClockStart, Command, Effect, Event, FreeText, Jurisdiction, Message, Policy, Recipient,
    RejectionReason, Relationship, RequestKind, RequestState, Status, TransitionError,
    VerificationMethod,
};
use crate::clock::{due_after, extended_due, CalendarSet, Due};

/// Everything outside the request that a transition may read.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub policy: &'a Policy,
    pub calendars: &'a CalendarSet,
}

/// An accepted command: the new state, its one audit event, and the effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: RequestState,
    pub event: Event,
    pub effects: Vec<Effect>,
}

/// A new request: received at `received_at` (in the past for letters and phone calls), by
/// whoever logged it. Submission is always accepted; the input was parsed before it got here.
pub fn submit(
    kind: RequestKind,
    jurisdiction: Jurisdiction,
    received_at: DateTime<Utc>,
    representative: Option<Relationship>,
    actor: &Actor,
    ctx: &Context<'_>,
) -> Outcome {
    let rules = ctx.policy.rules(jurisdiction);
    let due = (rules.clock_starts == ClockStart::Receipt)
        .then(|| respond_due(jurisdiction, received_at, ctx));
    let acknowledge_by = rules.acknowledge.map(|period| {
        due_after(
            received_at,
            period,
            rules.time_zone,
            ctx.calendars,
            &rules.calendar_region,
        )
    });
    let state = RequestState {
        kind,
        jurisdiction,
        status: Status::AwaitingVerification,
        received_at,
        verified_at: None,
        verified_methods: Vec::new(),
        representative,
        due,
        acknowledge_by,
        extended_at: None,
        assignee: None,
        first_approval_by: None,
        approved_at: None,
        fulfilment_started_at: None,
        closed_at: None,
        rejection: None,
        version: 1,
    };
    let event = Event {
        command: "submit".into(),
        actor: actor.clone(),
        at: ctx.now,
        from: None,
        to: state.status,
        details: json!({ "kind": kind, "jurisdiction": jurisdiction, "received_at": received_at, "due": state.due, "representative": representative }),
    };
    Outcome {
        state,
        event,
        effects: vec![notify_subject(Message::Received)],
    }
}

/// Applies one command. On error nothing has changed: the caller writes nothing.
pub fn apply(
    state: &RequestState,
    actor: &Actor,
    command: &Command,
    ctx: &Context<'_>,
) -> Result<Outcome, TransitionError> {
    let name = command.name();
    if state.status.is_final() && !matches!(command, Command::Note { .. }) {
        return Err(TransitionError::Closed {
            status: state.status,
        });
    }
    check_permission(state, actor, command, ctx.policy)?;

    let mut next = state.clone();
    let mut effects = Vec::new();
    let mut extra = serde_json::Map::new();
    let require = |allowed: &[Status]| {
        if allowed.contains(&state.status) {
            Ok(())
        } else {
            Err(TransitionError::WrongStatus {
                command: name,
                status: state.status,
            })
        }
    };

    match command {
        Command::Verify { method, evidence } => {
            require(&[Status::AwaitingVerification])?;
            if *method == VerificationMethod::StaffCheck && evidence.is_none() {
                return Err(TransitionError::EvidenceRequired);
            }
            if !next.verified_methods.contains(method) {
                next.verified_methods.push(*method);
            }
            let requirement = ctx.policy.identity(state.kind);
            if let Some(still) =
                identity::missing(requirement, state.representative, &next.verified_methods)
            {
                // Proved in part: recorded, and the request waits for the rest.
                extra.insert("still_needed".into(), json!(still));
            } else {
                next.verified_at = Some(ctx.now);
                if next.due.is_none() {
                    let due = respond_due(state.jurisdiction, ctx.now, ctx);
                    extra.insert("due".into(), json!(due));
                    next.due = Some(due);
                }
                effects.push(notify_subject(Message::Verified));
                if ctx.policy.kind(state.kind).review_required {
                    next.status = Status::InReview;
                    effects.push(Effect::Notify {
                        to: Recipient::Reviewers,
                        message: Message::ReviewNeeded,
                    });
                } else {
                    // Approved automatically once verified (by default, consent withdrawal).
                    next.status = Status::InProgress;
                    next.approved_at = Some(ctx.now);
                    extra.insert("auto_approved".into(), json!(true));
                    effects.push(Effect::StartFulfilment);
                }
            }
        }
        Command::VerificationFailed { .. } => {
            require(&[Status::AwaitingVerification])?;
        }
        Command::Expire => {
            require(&[Status::AwaitingVerification])?;
            // A subject who proved part of their identity did their share; the rest (a staff
            // check) is staff's, so the request waits for staff rather than expiring.
            if !state.verified_methods.is_empty() {
                return Err(TransitionError::WrongStatus {
                    command: name,
                    status: state.status,
                });
            }
            let until =
                state.received_at + Duration::days(i64::from(ctx.policy.verification_window_days));
            if ctx.now < until {
                return Err(TransitionError::VerificationWindowOpen { until });
            }
            close(&mut next, Status::Expired, ctx.now);
            effects.push(notify_subject(Message::Expired));
        }
        Command::RequestInfo { .. } => {
            require(&[Status::InReview])?;
            next.status = Status::AwaitingSubject;
            effects.push(notify_subject(Message::InfoRequested));
        }
        Command::SubjectReply { .. } => {
            require(&[Status::AwaitingSubject])?;
            next.status = Status::InReview;
            effects.push(notify_staff(
                state.assignee.as_deref(),
                Message::ReplyReceived,
            ));
        }
        Command::Assign { assignee } => {
            next.assignee = assignee.clone();
            if let Some(to) = assignee
                .as_deref()
                .filter(|to| Some(*to) != actor.staff_id())
            {
                effects.push(Effect::Notify {
                    to: Recipient::Staff(to.to_owned()),
                    message: Message::Assigned,
                });
            }
        }
        Command::Approve { .. } => {
            require(&[Status::InReview])?;
            let four_eyes = ctx.policy.kind(state.kind).four_eyes;
            let me = actor.staff_id().map(str::to_owned);
            match (&state.first_approval_by, four_eyes) {
                (None, true) => {
                    next.first_approval_by = me;
                    extra.insert("stage".into(), json!("first"));
                    effects.push(Effect::Notify {
                        to: Recipient::Reviewers,
                        message: Message::SecondApprovalNeeded,
                    });
                }
                (first, _) => {
                    if four_eyes && first.as_deref() == actor.staff_id() {
                        return Err(TransitionError::SameApprover);
                    }
                    next.status = Status::InProgress;
                    next.approved_at = Some(ctx.now);
                    extra.insert(
                        "stage".into(),
                        json!(if four_eyes { "second" } else { "final" }),
                    );
                    effects.push(notify_subject(Message::Approved));
                    effects.push(Effect::StartFulfilment);
                }
            }
        }
        Command::Reject { reason, .. } => {
            require(&[
                Status::AwaitingVerification,
                Status::InReview,
                Status::AwaitingSubject,
            ])?;
            close(&mut next, Status::Rejected, ctx.now);
            next.rejection = Some(*reason);
            effects.push(notify_subject(Message::Rejected));
        }
        Command::Extend { .. } => {
            let rules = ctx.policy.rules(state.jurisdiction);
            let extension = rules
                .extension
                .ok_or(TransitionError::ExtensionNotAvailable)?;
            if state.extended_at.is_some() {
                return Err(TransitionError::AlreadyExtended);
            }
            let due = state.due.as_ref().ok_or(TransitionError::NoDueDate)?;
            if ctx.now > due.ends_at {
                return Err(TransitionError::PastDue);
            }
            let start = clock_start(state, rules.clock_starts).ok_or(TransitionError::NoDueDate)?;
            let extended = extended_due(
                start,
                rules.respond,
                extension,
                rules.time_zone,
                ctx.calendars,
                &rules.calendar_region,
            );
            extra.insert("previous_due".into(), json!(due));
            extra.insert("due".into(), json!(extended));
            next.due = Some(extended);
            next.extended_at = Some(ctx.now);
            effects.push(notify_subject(Message::Extended));
        }
        Command::StartFulfilment => {
            require(&[Status::InProgress])?;
            if state.fulfilment_started_at.is_some() {
                return Err(TransitionError::WrongStatus {
                    command: name,
                    status: state.status,
                });
            }
            next.fulfilment_started_at = Some(ctx.now);
        }
        Command::Complete { .. } => {
            require(&[Status::InProgress])?;
            close(&mut next, Status::Completed, ctx.now);
            effects.push(notify_subject(if state.kind == RequestKind::Complaint {
                Message::ComplaintAnswered
            } else {
                Message::Completed
            }));
        }
        Command::Withdraw { .. } => {
            require(&[
                Status::AwaitingVerification,
                Status::InReview,
                Status::AwaitingSubject,
                Status::InProgress,
            ])?;
            if state.fulfilment_started_at.is_some() {
                return Err(TransitionError::FulfilmentStarted);
            }
            close(&mut next, Status::Withdrawn, ctx.now);
            effects.push(notify_subject(Message::Withdrawn));
            if let Some(assignee) = state
                .assignee
                .as_ref()
                .filter(|a| Some(a.as_str()) != actor.staff_id())
            {
                effects.push(Effect::Notify {
                    to: Recipient::Staff(assignee.clone()),
                    message: Message::Withdrawn,
                });
            }
        }
        Command::Note { .. } => {}
    }

    next.version = state.version + 1;
    let mut details = serde_json::to_value(command).unwrap_or_else(|_| json!({}));
    if let Some(map) = details.as_object_mut() {
        map.remove("command");
        map.extend(extra);
    }
    let event = Event {
        command: name.to_owned(),
        actor: actor.clone(),
        at: ctx.now,
        from: Some(state.status),
        to: next.status,
        details,
    };
    Ok(Outcome {
        state: next,
        event,
        effects,
    })
}

/// The commands `actor` may issue now, found by asking `apply` itself with a sample of each,
/// so the console shows exactly what the core would accept (assign and note are always listed
/// when permitted; their arguments cannot make them fail).
pub fn allowed_commands(
    state: &RequestState,
    actor: &Actor,
    ctx: &Context<'_>,
) -> Vec<&'static str> {
    let sample = FreeText::parse("-").ok();
    let Some(text) = sample else {
        return Vec::new();
    };
    let samples = [
        Command::Verify {
            method: VerificationMethod::StaffCheck,
            evidence: Some(text.clone()),
        },
        Command::Expire,
        Command::RequestInfo {
            question: text.clone(),
        },
        Command::SubjectReply {
            message: text.clone(),
        },
        Command::Assign { assignee: None },
        Command::Approve { comment: None },
        Command::Reject {
            reason: RejectionReason::LegalExemption,
            explanation: text.clone(),
        },
        Command::Extend {
            reason: text.clone(),
        },
        Command::StartFulfilment,
        Command::Complete {
            summary: text.clone(),
        },
        Command::Withdraw { reason: None },
        Command::Note { text },
    ];
    samples
        .iter()
        .filter(|cmd| apply(state, actor, cmd, ctx).is_ok())
        .map(Command::name)
        .collect()
}

/// Who may issue what. Subjects act on their own request; the system runs scheduled and
/// automatic steps; staff act by role: auditors only read, and only those who decide
/// (reviewers, admins) reject, extend, or give an approval that releases a request.
fn check_permission(
    state: &RequestState,
    actor: &Actor,
    command: &Command,
    policy: &Policy,
) -> Result<(), TransitionError> {
    let allowed = match actor {
        Actor::Subject => matches!(
            command,
            Command::Withdraw { .. } | Command::SubjectReply { .. }
        ),
        // The system proves identity by codes, links and platform tokens; a staff check is
        // staff's to record.
        Actor::System => match command {
            Command::Verify { method, .. } => *method != VerificationMethod::StaffCheck,
            Command::Expire
            | Command::VerificationFailed { .. }
            | Command::StartFulfilment
            | Command::Complete { .. }
            // What fulfilment did in each system, for the record.
            | Command::Note { .. } => true,
            _ => false,
        },
        Actor::Staff { role, .. } => {
            role.acts()
                && match command {
                    Command::Reject { .. } | Command::Extend { .. } => role.decides(),
                    // Staff record the checks they made, never a code someone else received.
                    Command::Verify { method, .. } => *method == VerificationMethod::StaffCheck,
                    Command::VerificationFailed { .. } => false,
                    // An agent may prepare a four-eyes request (the first approval) but never
                    // release one.
                    Command::Approve { .. } => {
                        role.decides()
                            || (policy.kind(state.kind).four_eyes
                                && state.first_approval_by.is_none())
                    }
                    _ => true,
                }
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(TransitionError::NotPermitted {
            command: command.name(),
        })
    }
}

fn respond_due(jurisdiction: Jurisdiction, start: DateTime<Utc>, ctx: &Context<'_>) -> Due {
    let rules = ctx.policy.rules(jurisdiction);
    due_after(
        start,
        rules.respond,
        rules.time_zone,
        ctx.calendars,
        &rules.calendar_region,
    )
}

fn clock_start(state: &RequestState, starts: ClockStart) -> Option<DateTime<Utc>> {
    match starts {
        ClockStart::Receipt => Some(state.received_at),
        ClockStart::Verification => state.verified_at,
    }
}

fn close(state: &mut RequestState, status: Status, at: DateTime<Utc>) {
    state.status = status;
    state.closed_at = Some(at);
}

fn notify_subject(message: Message) -> Effect {
    Effect::Notify {
        to: Recipient::Subject,
        message,
    }
}

fn notify_staff(assignee: Option<&str>, message: Message) -> Effect {
    let to = match assignee {
        Some(id) => Recipient::Staff(id.to_owned()),
        None => Recipient::Reviewers,
    };
    Effect::Notify { to, message }
}

#[cfg(test)]
#[path = "transition_tests.rs"]
mod tests;

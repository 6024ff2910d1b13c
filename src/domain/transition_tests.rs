//! Rules of the transition function, one test each, then property tests over random command
//! sequences.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;

use super::*;
use crate::clock::CalendarSet;
use crate::domain::{FreeText, RejectionReason, Relationship, Role, VerificationMethod};

struct World {
    policy: Policy,
    calendars: CalendarSet,
}

impl World {
    fn new() -> Self {
        World {
            policy: Policy::default(),
            calendars: CalendarSet::builtin(),
        }
    }
    fn ctx(&self, now: DateTime<Utc>) -> Context<'_> {
        Context {
            now,
            policy: &self.policy,
            calendars: &self.calendars,
        }
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn text(s: &str) -> FreeText {
    FreeText::parse(s).unwrap()
}

fn staff(id: &str, role: Role) -> Actor {
    Actor::Staff {
        id: id.into(),
        role,
    }
}

fn agent() -> Actor {
    staff("agent-1", Role::Agent)
}
fn reviewer() -> Actor {
    staff("reviewer-1", Role::Reviewer)
}
fn reviewer2() -> Actor {
    staff("reviewer-2", Role::Reviewer)
}

fn verify() -> Command {
    Command::Verify {
        method: VerificationMethod::StaffCheck,
        evidence: Some(text("核对了身份证原件")),
    }
}

/// A one-time code the subject entered (the system records it).
fn code() -> Command {
    Command::Verify {
        method: VerificationMethod::EmailCode,
        evidence: None,
    }
}

/// The proofs that fully verify a request of `kind` made by the subject themselves.
fn proof(kind: RequestKind) -> Vec<(Actor, Command)> {
    match kind {
        RequestKind::Deletion | RequestKind::Portability => {
            vec![(Actor::System, code()), (agent(), verify())]
        }
        _ => vec![(Actor::System, code())],
    }
}
fn approve() -> Command {
    Command::Approve { comment: None }
}
fn complete() -> Command {
    Command::Complete {
        summary: text("done"),
    }
}
fn reject() -> Command {
    Command::Reject {
        reason: RejectionReason::NoDataHeld,
        explanation: text("查无数据"),
    }
}

/// Applies a script of commands that must all be accepted, returning the final state.
fn run(
    w: &World,
    state: RequestState,
    now: DateTime<Utc>,
    script: &[(Actor, Command)],
) -> RequestState {
    script.iter().fold(state, |s, (actor, cmd)| {
        apply(&s, actor, cmd, &w.ctx(now))
            .unwrap_or_else(|e| panic!("{} refused: {e}", cmd.name()))
            .state
    })
}

fn new_request(
    w: &World,
    kind: RequestKind,
    j: Jurisdiction,
    received: DateTime<Utc>,
) -> RequestState {
    submit(kind, j, received, None, &Actor::Subject, &w.ctx(received)).state
}

#[test]
fn submission_starts_the_receipt_clock_but_not_the_verification_clock() {
    let w = World::new();
    let t = at("2026-03-01T18:00:00Z");
    let cn = submit(
        RequestKind::Access,
        Jurisdiction::Cn,
        t,
        None,
        &Actor::Subject,
        &w.ctx(t),
    );
    assert_eq!(cn.state.status, Status::AwaitingVerification);
    assert_eq!(cn.state.due, None);
    assert_eq!(cn.event.command, "submit");
    let ca = new_request(&w, RequestKind::Access, Jurisdiction::UsCa, t);
    assert_eq!(ca.due.map(|d| d.date), NaiveDate::from_ymd_opt(2026, 4, 15));
    assert!(ca.acknowledge_by.is_some());
}

#[test]
fn verification_starts_the_cn_clock_in_working_days() {
    let w = World::new();
    let t = at("2026-09-28T02:00:00Z"); // 10:00 in Shanghai
    let s = run(
        &w,
        new_request(&w, RequestKind::Access, Jurisdiction::Cn, t),
        t,
        &[(agent(), verify())],
    );
    assert_eq!(s.status, Status::InReview);
    let due = s.due.unwrap();
    assert_eq!(due.date, NaiveDate::from_ymd_opt(2026, 10, 23).unwrap());
    assert_eq!(due.ends_at, at("2026-10-23T15:59:59Z"));
}

#[test]
fn consent_withdrawal_is_approved_automatically_once_verified() {
    let w = World::new();
    let t = at("2026-05-06T01:00:00Z");
    let s = new_request(&w, RequestKind::ConsentWithdrawal, Jurisdiction::Cn, t);
    let out = apply(&s, &Actor::System, &code(), &w.ctx(t)).unwrap();
    assert_eq!(out.state.status, Status::InProgress);
    assert!(out.effects.contains(&Effect::StartFulfilment));
    let access = new_request(&w, RequestKind::Access, Jurisdiction::Cn, t);
    let out = apply(&access, &Actor::System, &code(), &w.ctx(t)).unwrap();
    assert_eq!(out.state.status, Status::InReview);
    assert!(!out.effects.contains(&Effect::StartFulfilment));
}

#[test]
fn strong_kinds_and_representatives_need_the_staff_check_too() {
    let w = World::new();
    let t = at("2026-05-06T01:00:00Z");
    // Deletion: a code alone is recorded but does not verify.
    let s = new_request(&w, RequestKind::Deletion, Jurisdiction::Cn, t);
    let half = apply(&s, &Actor::System, &code(), &w.ctx(t)).unwrap();
    assert_eq!(half.state.status, Status::AwaitingVerification);
    assert_eq!(half.state.verified_at, None);
    assert_eq!(half.event.details["still_needed"], "staff_check");
    assert!(half.effects.is_empty());
    let full = apply(&half.state, &agent(), &verify(), &w.ctx(t)).unwrap();
    assert_eq!(full.state.status, Status::InReview);
    assert_eq!(
        full.state.verified_methods,
        vec![
            VerificationMethod::EmailCode,
            VerificationMethod::StaffCheck
        ]
    );
    // A platform sign-in is enough on its own.
    let p = apply(
        &s,
        &Actor::System,
        &Command::Verify {
            method: VerificationMethod::PlatformToken,
            evidence: None,
        },
        &w.ctx(t),
    )
    .unwrap();
    assert_eq!(p.state.status, Status::InReview);
    // A guardian's request needs the staff check whatever the kind.
    let g = submit(
        RequestKind::Access,
        Jurisdiction::Cn,
        t,
        Some(Relationship::Guardian),
        &Actor::Subject,
        &w.ctx(t),
    )
    .state;
    let half = apply(&g, &Actor::System, &code(), &w.ctx(t)).unwrap();
    assert_eq!(half.state.status, Status::AwaitingVerification);
    let full = apply(&half.state, &agent(), &verify(), &w.ctx(t)).unwrap();
    assert_eq!(full.state.status, Status::InReview);
    // A staff check says what was checked.
    let bare = Command::Verify {
        method: VerificationMethod::StaffCheck,
        evidence: None,
    };
    assert_eq!(
        apply(&half.state, &agent(), &bare, &w.ctx(t)).unwrap_err(),
        TransitionError::EvidenceRequired
    );
    // Staff record checks, never codes; the system never records a staff check.
    assert!(apply(&s, &agent(), &code(), &w.ctx(t))
        .unwrap_err()
        .is_permission());
    assert!(apply(&s, &Actor::System, &verify(), &w.ctx(t))
        .unwrap_err()
        .is_permission());
    // A failed attempt is recorded and changes nothing else.
    let failed = Command::VerificationFailed {
        method: VerificationMethod::EmailCode,
        failure: crate::domain::VerificationFailure::WrongCode,
    };
    let out = apply(&s, &Actor::System, &failed, &w.ctx(t)).unwrap();
    assert_eq!(
        (out.state.status, out.state.version),
        (Status::AwaitingVerification, s.version + 1)
    );
    assert_eq!(out.event.details["failure"], "wrong_code");
}

#[test]
fn end_states_accept_nothing_but_notes() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    let late = t + Duration::days(31);
    let base = new_request(&w, RequestKind::Correction, Jurisdiction::Eu, t);
    let verified = run(&w, base.clone(), t, &[(agent(), verify())]);
    let ended = [
        run(&w, verified.clone(), t, &[(reviewer(), reject())]),
        run(
            &w,
            base.clone(),
            t,
            &[(Actor::Subject, Command::Withdraw { reason: None })],
        ),
        run(&w, base.clone(), late, &[(Actor::System, Command::Expire)]),
        run(
            &w,
            verified,
            t,
            &[(reviewer(), approve()), (agent(), complete())],
        ),
    ];
    let every_command = [
        verify(),
        Command::Expire,
        Command::RequestInfo {
            question: text("?"),
        },
        Command::SubjectReply { message: text("!") },
        Command::Assign {
            assignee: Some("agent-1".into()),
        },
        approve(),
        reject(),
        Command::Extend {
            reason: text("busy"),
        },
        Command::StartFulfilment,
        complete(),
        Command::Withdraw { reason: None },
    ];
    for s in &ended {
        assert!(s.status.is_final());
        for cmd in &every_command {
            let err = apply(s, &staff("admin", Role::Admin), cmd, &w.ctx(late)).unwrap_err();
            assert_eq!(
                err,
                TransitionError::Closed { status: s.status },
                "{}",
                cmd.name()
            );
        }
        let noted = apply(
            s,
            &agent(),
            &Command::Note {
                text: text("归档")
            },
            &w.ctx(late),
        )
        .unwrap();
        assert_eq!(noted.state.status, s.status);
        assert_eq!(noted.state.version, s.version + 1);
    }
}

#[test]
fn rejection_needs_a_decider_and_records_its_reason() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    let s = run(
        &w,
        new_request(&w, RequestKind::Access, Jurisdiction::Cn, t),
        t,
        &[(agent(), verify())],
    );
    assert_eq!(
        apply(&s, &agent(), &reject(), &w.ctx(t))
            .unwrap_err()
            .code(),
        "not_permitted"
    );
    let out = apply(&s, &reviewer(), &reject(), &w.ctx(t)).unwrap();
    assert_eq!(out.state.status, Status::Rejected);
    assert_eq!(out.state.rejection, Some(RejectionReason::NoDataHeld));
    assert_eq!(out.event.details["reason"], "no_data_held");
    assert_eq!(out.event.details["explanation"], "查无数据");
    let approved = run(&w, s, t, &[(reviewer(), approve())]);
    let err = apply(&approved, &reviewer(), &reject(), &w.ctx(t)).unwrap_err();
    assert_eq!(
        err,
        TransitionError::WrongStatus {
            command: "reject",
            status: Status::InProgress
        }
    );
}

#[test]
fn extension_follows_the_jurisdiction_once_and_only_before_the_due_date() {
    let w = World::new();
    let extend = Command::Extend {
        reason: text("复杂请求"),
    };
    let t = at("2026-01-31T12:00:00Z");

    let cn = run(
        &w,
        new_request(&w, RequestKind::Access, Jurisdiction::Cn, t),
        t,
        &[(agent(), verify())],
    );
    assert_eq!(
        apply(&cn, &reviewer(), &extend, &w.ctx(t)).unwrap_err(),
        TransitionError::ExtensionNotAvailable
    );

    let eu = new_request(&w, RequestKind::Access, Jurisdiction::Eu, t);
    // 31 Jan + 1 month = 28 Feb 2026, a Saturday: the period runs to Monday 2 March.
    assert_eq!(
        eu.due.as_ref().map(|d| d.date),
        NaiveDate::from_ymd_opt(2026, 3, 2)
    );
    assert_eq!(
        apply(&eu, &agent(), &extend, &w.ctx(t)).unwrap_err().code(),
        "not_permitted"
    );
    let out = apply(&eu, &reviewer(), &extend, &w.ctx(t + Duration::days(10))).unwrap();
    // Two more months, counted from receipt: 30 April 2026 (a Thursday).
    assert_eq!(
        out.state.due.as_ref().map(|d| d.date),
        NaiveDate::from_ymd_opt(2026, 4, 30)
    );
    assert_eq!(out.event.details["previous_due"]["date"], "2026-03-02");
    assert!(out.effects.contains(&Effect::Notify {
        to: Recipient::Subject,
        message: Message::Extended
    }));
    let again = apply(
        &out.state,
        &reviewer(),
        &extend,
        &w.ctx(t + Duration::days(11)),
    );
    assert_eq!(again.unwrap_err(), TransitionError::AlreadyExtended);

    let too_late = at("2026-03-03T00:00:00Z");
    assert_eq!(
        apply(&eu, &reviewer(), &extend, &w.ctx(too_late)).unwrap_err(),
        TransitionError::PastDue
    );

    let ca = new_request(
        &w,
        RequestKind::Deletion,
        Jurisdiction::UsCa,
        at("2026-03-01T18:00:00Z"),
    );
    let out = apply(
        &ca,
        &reviewer(),
        &extend,
        &w.ctx(at("2026-03-02T00:00:00Z")),
    )
    .unwrap();
    assert_eq!(
        out.state.due.map(|d| d.date),
        NaiveDate::from_ymd_opt(2026, 5, 30)
    );
}

#[test]
fn deletion_and_portability_need_two_different_approvers() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    for kind in [RequestKind::Deletion, RequestKind::Portability] {
        let s = run(
            &w,
            new_request(&w, kind, Jurisdiction::Cn, t),
            t,
            &proof(kind),
        );
        let first = apply(&s, &agent(), &approve(), &w.ctx(t)).unwrap();
        assert_eq!(first.state.status, Status::InReview);
        assert_eq!(first.state.first_approval_by.as_deref(), Some("agent-1"));
        assert_eq!(first.event.details["stage"], "first");
        // The agent cannot release it, and neither can whoever gave the first approval.
        assert_eq!(
            apply(&first.state, &agent(), &approve(), &w.ctx(t))
                .unwrap_err()
                .code(),
            "not_permitted"
        );
        let by_reviewer = run(&w, s, t, &[(reviewer(), approve())]);
        let same = apply(&by_reviewer, &reviewer(), &approve(), &w.ctx(t)).unwrap_err();
        assert_eq!(same, TransitionError::SameApprover);
        let second = apply(&first.state, &reviewer(), &approve(), &w.ctx(t)).unwrap();
        assert_eq!(second.state.status, Status::InProgress);
        let second = apply(&by_reviewer, &reviewer2(), &approve(), &w.ctx(t)).unwrap();
        assert_eq!(second.state.status, Status::InProgress);
    }
    // Other kinds take one approval, from a decider.
    let s = run(
        &w,
        new_request(&w, RequestKind::Correction, Jurisdiction::Cn, t),
        t,
        &[(agent(), verify())],
    );
    assert_eq!(
        apply(&s, &agent(), &approve(), &w.ctx(t))
            .unwrap_err()
            .code(),
        "not_permitted"
    );
    assert_eq!(
        apply(&s, &reviewer(), &approve(), &w.ctx(t))
            .unwrap()
            .state
            .status,
        Status::InProgress
    );
}

#[test]
fn withdrawal_is_allowed_until_fulfilment_starts_changing_data() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    let withdraw = Command::Withdraw {
        reason: Some(text("不需要了")),
    };
    let approved = run(
        &w,
        new_request(&w, RequestKind::Restriction, Jurisdiction::Cn, t),
        t,
        &[(agent(), verify()), (reviewer(), approve())],
    );
    let out = apply(&approved, &Actor::Subject, &withdraw, &w.ctx(t)).unwrap();
    assert_eq!(out.state.status, Status::Withdrawn);
    let started = run(
        &w,
        approved,
        t,
        &[(Actor::System, Command::StartFulfilment)],
    );
    assert_eq!(
        apply(&started, &Actor::Subject, &withdraw, &w.ctx(t)).unwrap_err(),
        TransitionError::FulfilmentStarted
    );
}

#[test]
fn expiry_waits_for_the_verification_window() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    let s = new_request(&w, RequestKind::Access, Jurisdiction::Cn, t);
    let early = apply(
        &s,
        &Actor::System,
        &Command::Expire,
        &w.ctx(t + Duration::days(6)),
    );
    assert_eq!(early.unwrap_err().code(), "verification_window_open");
    let out = apply(
        &s,
        &Actor::System,
        &Command::Expire,
        &w.ctx(t + Duration::days(7)),
    )
    .unwrap();
    assert_eq!(out.state.status, Status::Expired);
    // Partly proved (a code on a deletion): it waits for the staff check instead of expiring.
    let deletion = new_request(&w, RequestKind::Deletion, Jurisdiction::Cn, t);
    let half = run(&w, deletion, t, &[(Actor::System, code())]);
    let late = apply(
        &half,
        &Actor::System,
        &Command::Expire,
        &w.ctx(t + Duration::days(60)),
    );
    assert_eq!(late.unwrap_err().code(), "command_not_allowed");
    let verified = run(&w, s, t, &[(agent(), verify())]);
    let err = apply(
        &verified,
        &Actor::System,
        &Command::Expire,
        &w.ctx(t + Duration::days(60)),
    )
    .unwrap_err();
    assert_eq!(err.code(), "command_not_allowed");
}

#[test]
fn questions_go_to_the_subject_and_replies_come_back_to_review() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    let s = run(
        &w,
        new_request(&w, RequestKind::Correction, Jurisdiction::Cn, t),
        t,
        &[
            (agent(), verify()),
            (
                agent(),
                Command::Assign {
                    assignee: Some("agent-1".into()),
                },
            ),
        ],
    );
    let asked = apply(
        &s,
        &agent(),
        &Command::RequestInfo {
            question: text("请提供证明"),
        },
        &w.ctx(t),
    )
    .unwrap();
    assert_eq!(asked.state.status, Status::AwaitingSubject);
    let reply = Command::SubjectReply {
        message: text("已上传"),
    };
    let answered = apply(&asked.state, &Actor::Subject, &reply, &w.ctx(t)).unwrap();
    assert_eq!(answered.state.status, Status::InReview);
    assert_eq!(
        answered.effects,
        vec![Effect::Notify {
            to: Recipient::Staff("agent-1".into()),
            message: Message::ReplyReceived
        }]
    );
}

#[test]
fn who_may_do_what() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    let s = run(
        &w,
        new_request(&w, RequestKind::Access, Jurisdiction::Cn, t),
        t,
        &[(agent(), verify())],
    );
    let note = Command::Note { text: text("n") };
    let cases = [
        (Actor::Subject, approve()),
        (Actor::Subject, note.clone()),
        (Actor::System, reject()),
        (staff("aud", Role::Auditor), note.clone()),
    ];
    for (actor, cmd) in cases {
        let err = apply(&s, &actor, &cmd, &w.ctx(t)).unwrap_err();
        assert!(err.is_permission(), "{actor:?} {}", cmd.name());
    }
    // The system notes what fulfilment did in each data system, for the record.
    assert!(apply(&s, &Actor::System, &note, &w.ctx(t)).is_ok());
}

#[test]
fn allowed_commands_match_what_apply_accepts() {
    let w = World::new();
    let t = at("2026-06-01T01:00:00Z");
    let s = new_request(&w, RequestKind::Deletion, Jurisdiction::Eu, t);
    assert_eq!(
        allowed_commands(&s, &reviewer(), &w.ctx(t)),
        vec!["verify", "assign", "reject", "extend", "withdraw", "note"]
    );
    assert_eq!(
        allowed_commands(&s, &Actor::Subject, &w.ctx(t)),
        vec!["withdraw"]
    );
    assert!(allowed_commands(&s, &staff("aud", Role::Auditor), &w.ctx(t)).is_empty());
}

// ---- property tests ----

fn actors() -> Vec<Actor> {
    vec![
        Actor::Subject,
        Actor::System,
        agent(),
        reviewer(),
        reviewer2(),
        staff("admin", Role::Admin),
        staff("aud", Role::Auditor),
    ]
}

fn command(i: usize) -> Command {
    match i {
        0 => verify(),
        1 => Command::Expire,
        2 => Command::RequestInfo {
            question: text("q"),
        },
        3 => Command::SubjectReply { message: text("r") },
        4 => Command::Assign {
            assignee: Some("agent-1".into()),
        },
        5 => approve(),
        6 => reject(),
        7 => Command::Extend { reason: text("e") },
        8 => Command::StartFulfilment,
        9 => complete(),
        10 => Command::Withdraw { reason: None },
        11 => code(),
        12 => Command::VerificationFailed {
            method: VerificationMethod::SmsCode,
            failure: crate::domain::VerificationFailure::WrongCode,
        },
        _ => Command::Note { text: text("n") },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_command_sequence_keeps_the_request_valid(
        kind in 0..RequestKind::ALL.len(),
        jurisdiction in 0..Jurisdiction::ALL.len(),
        start_day in 0i64..400,
        rep in 0usize..3,
        steps in proptest::collection::vec((0usize..7, 0usize..14, 0i64..(24 * 12)), 1..40),
    ) {
        let w = World::new();
        let mut now = at("2026-01-01T00:00:00Z") + Duration::days(start_day);
        let representative = [None, Some(Relationship::Guardian), Some(Relationship::Agent)][rep];
        let first = submit(RequestKind::ALL[kind], Jurisdiction::ALL[jurisdiction], now, representative, &Actor::Subject, &w.ctx(now));
        let mut state = first.state;
        let mut trail = vec![first.event];
        let actors = actors();
        for (actor, cmd, hours) in steps {
            now += Duration::hours(hours);
            let before = state.clone();
            // `apply` borrows the state immutably: a refused command cannot change it.
            if let Ok(out) = apply(&before, &actors[actor], &command(cmd), &w.ctx(now)) {
                prop_assert_eq!(out.event.from, Some(before.status));
                prop_assert_eq!(out.event.to, out.state.status);
                prop_assert_eq!(out.state.version, before.version + 1);
                if before.status.is_final() {
                    prop_assert_eq!(out.event.command.as_str(), "note", "end states accept only notes");
                    prop_assert_eq!(out.state.status, before.status, "end states are absorbing");
                }
                if let Some(old) = &before.due {
                    let new = out.state.due.as_ref();
                    prop_assert!(new.is_some_and(|d| d.ends_at >= old.ends_at), "due date moved backwards");
                }
                trail.push(out.event);
                state = out.state;
            }
            prop_assert!(state.check_invariants().is_ok(), "{:?}", state.check_invariants());
            prop_assert_eq!(trail.len() as i64, state.version, "one audit entry per accepted command");
        }
    }
}

//! Our statuses and rejection reasons as DRP 1.0's (§3.02), and the Exercise Status object
//! (§3.03). The table is in docs/INTEROP.md; `summary` is the one place that decides it.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::domain::{RejectionReason, RequestState, Status, VerificationMethod};

/// A request's DRP status, reason and expected-by date: what a callback reports a change of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub expected_by: Option<DateTime<Utc>>,
}

/// A proof of identity we made ourselves (not an agent's or a controller's word).
pub fn proved_by_us(m: &VerificationMethod) -> bool {
    !matches!(m, VerificationMethod::AgentAttested)
}

/// DRP's reason for one of our rejection reasons.
pub fn denial_reason(reason: Option<RejectionReason>) -> &'static str {
    use RejectionReason as R;
    match reason {
        Some(R::IdentityNotVerified) => "insuf_verification",
        Some(R::AbuseOfRights) => "suspected_fraud",
        Some(R::NoDataHeld) => "no_match",
        Some(R::Excessive) => "too_many_requests",
        // Exemptions: what was asked for is not covered by the right.
        Some(
            R::LegalObligation
            | R::NationalSecurity
            | R::PublicInterest
            | R::CriminalProceedings
            | R::VitalInterests
            | R::RightsOfOthers
            | R::TradeSecret
            | R::LegalExemption,
        ) => "claim_not_covered",
        Some(R::ManifestlyUnfounded) | None => "other",
    }
}

/// The DRP status of a request in `state`. Requests pass from `open` to `in_progress` at
/// once, as §3.03 asks of a business running the endpoints itself, so `open` is never said.
pub fn summary(state: &RequestState) -> Summary {
    let (status, reason) = match state.status {
        // Waiting for the user to prove who they are to us (our code), or, once they have,
        // for staff.
        Status::AwaitingVerification if !state.verified_methods.iter().any(proved_by_us) => {
            ("in_progress", Some("need_user_verification"))
        }
        Status::AwaitingVerification
        | Status::InReview
        | Status::AwaitingSubject
        | Status::InProgress => ("in_progress", None),
        Status::Completed => ("fulfilled", None),
        Status::Withdrawn => ("revoked", None),
        // Our verification window passed: the verification stage timed out.
        Status::Expired => ("denied", Some("insuf_verification")),
        Status::Rejected => ("denied", Some(denial_reason(state.rejection))),
    };
    Summary {
        status,
        reason,
        expected_by: state.due.as_ref().map(|d| d.ends_at),
    }
}

fn details(state: &RequestState, s: &Summary) -> String {
    let mut text = match (state.status, s.reason) {
        (Status::AwaitingVerification, Some(_)) => {
            "Waiting for the user to confirm their identity with the code we sent them".to_owned()
        }
        (Status::AwaitingVerification, None) => "Waiting for our staff to check identity".into(),
        (Status::AwaitingSubject, _) => "Waiting for the user to answer our question".into(),
        (Status::Rejected, _) => format!(
            "Denied: {}",
            state
                .rejection
                .map_or("no reason recorded", |r| r.label_en())
        ),
        (status, _) => status.label_en().to_owned(),
    };
    if state.extended_at.is_some() && !state.status.is_final() {
        text.push_str("; the deadline was extended as the law allows");
    }
    text
}

/// Where the user goes: to verify, and for results (both the portal's page of the request;
/// it asks for our code before showing anything).
pub struct Links {
    pub request_page: String,
}

/// The Exercise Status object (§3.03) of a request.
pub fn object(
    drp_id: &str,
    agent_request_id: Option<&str>,
    state: &RequestState,
    links: &Links,
    verification_window_days: u32,
) -> Value {
    let s = summary(state);
    let mut o = json!({
        "request_id": drp_id,
        "received_at": state.received_at,
        "status": s.status,
        "processing_details": details(state, &s),
    });
    let put = |o: &mut Value, k: &str, v: Value| {
        if let Some(m) = o.as_object_mut() {
            m.insert(k.to_owned(), v);
        }
    };
    if let Some(id) = agent_request_id {
        put(&mut o, "agent_request_id", json!(id));
    }
    if let Some(r) = s.reason {
        put(&mut o, "reason", json!(r));
    }
    if let Some(t) = s.expected_by {
        put(&mut o, "expected_by", json!(t));
    }
    match (s.status, s.reason) {
        (_, Some("need_user_verification")) => {
            put(&mut o, "user_verification_url", json!(links.request_page));
            let until = state.received_at + Duration::days(i64::from(verification_window_days));
            put(&mut o, "expires_at", json!(until));
        }
        ("fulfilled", _) => {
            put(&mut o, "results_url", json!(links.request_page));
            if let Some(closed) = state.closed_at {
                let until = closed + Duration::days(crate::service::results::LIFETIME_DAYS);
                put(&mut o, "expires_at", json!(until));
            }
        }
        _ => {}
    }
    o
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{Jurisdiction, RequestKind};

    /// A request in `status` with `methods` proved (also OpenDSR's mapping tests).
    pub(crate) fn state(status: Status, methods: &[VerificationMethod]) -> RequestState {
        RequestState {
            kind: RequestKind::Deletion,
            jurisdiction: Jurisdiction::UsCa,
            status,
            received_at: Utc::now(),
            verified_at: None,
            verified_methods: methods.to_vec(),
            representative: None,
            due: None,
            acknowledge_by: None,
            extended_at: None,
            assignee: None,
            first_approval_by: None,
            approved_at: None,
            fulfilment_started_at: None,
            closed_at: status.is_final().then(Utc::now),
            rejection: None,
            version: 1,
        }
    }

    #[test]
    fn every_status_maps_as_the_table_says() {
        use VerificationMethod as M;
        let of = |st: Status, m: &[M]| {
            let s = summary(&state(st, m));
            (s.status, s.reason)
        };
        assert_eq!(
            of(Status::AwaitingVerification, &[]),
            ("in_progress", Some("need_user_verification"))
        );
        assert_eq!(
            of(Status::AwaitingVerification, &[M::AgentAttested]),
            ("in_progress", Some("need_user_verification"))
        );
        assert_eq!(
            of(Status::AwaitingVerification, &[M::EmailCode]),
            ("in_progress", None)
        );
        for st in [
            Status::InReview,
            Status::AwaitingSubject,
            Status::InProgress,
        ] {
            assert_eq!(of(st, &[]), ("in_progress", None));
        }
        assert_eq!(of(Status::Completed, &[]), ("fulfilled", None));
        assert_eq!(of(Status::Withdrawn, &[]), ("revoked", None));
        assert_eq!(
            of(Status::Expired, &[]),
            ("denied", Some("insuf_verification"))
        );
        assert_eq!(of(Status::Rejected, &[]), ("denied", Some("other")));
        // Every status is covered: none maps to `open` or `expired` (see docs/INTEROP.md).
        for st in Status::ALL {
            assert!(!["open", "expired"].contains(&of(*st, &[]).0));
        }
    }

    #[test]
    fn every_rejection_reason_has_a_drp_reason() {
        use RejectionReason as R;
        let table = [
            (R::IdentityNotVerified, "insuf_verification"),
            (R::AbuseOfRights, "suspected_fraud"),
            (R::NoDataHeld, "no_match"),
            (R::Excessive, "too_many_requests"),
            (R::ManifestlyUnfounded, "other"),
            (R::LegalObligation, "claim_not_covered"),
            (R::TradeSecret, "claim_not_covered"),
            (R::LegalExemption, "claim_not_covered"),
        ];
        for (ours, theirs) in table {
            assert_eq!(denial_reason(Some(ours)), theirs, "{ours}");
        }
        let allowed = [
            "suspected_fraud",
            "insuf_verification",
            "no_match",
            "claim_not_covered",
            "outside_jurisdiction",
            "too_many_requests",
            "other",
        ];
        for r in R::ALL {
            assert!(allowed.contains(&denial_reason(Some(*r))), "{r}");
        }
    }

    #[test]
    fn the_object_carries_the_links_each_status_needs() {
        let links = Links {
            request_page: "https://x.test/requests/DSR-AAAA-BBBB".into(),
        };
        let waiting = object(
            "id",
            Some("a-1"),
            &state(Status::AwaitingVerification, &[]),
            &links,
            7,
        );
        assert_eq!(
            waiting["user_verification_url"],
            links.request_page.as_str()
        );
        assert!(waiting["expires_at"].is_string());
        assert_eq!(waiting["agent_request_id"], "a-1");
        assert!(waiting.get("results_url").is_none());
        let done = object("id", None, &state(Status::Completed, &[]), &links, 7);
        assert_eq!(done["status"], "fulfilled");
        assert_eq!(done["results_url"], links.request_page.as_str());
        assert!(done.get("user_verification_url").is_none());
        assert!(done.get("agent_request_id").is_none());
    }
}

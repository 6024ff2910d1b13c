//! Our statuses as OpenDSR's four (§8), and the status object (§8.3). The table is in
//! docs/INTEROP.md; `summary` is the one place that decides it.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::domain::{RequestState, Status};
use crate::interop::drp::status::proved_by_us;

/// A request's OpenDSR status and what the four statuses cannot say: what a callback reports
/// a change of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub status: &'static str,
    /// Our own status, when OpenDSR's says less (a rejection or an expiry is `cancelled`).
    pub ours: &'static str,
    pub reason: Option<&'static str>,
    /// The user must still prove who they are to us (our code).
    pub needs_user_verification: bool,
    pub expected_completion_time: DateTime<Utc>,
}

/// `pending` until fulfilment is approved (and the controller may still cancel), then
/// `in_progress`; every end but completion is `cancelled`, our status and reason told in the
/// extension.
pub fn summary(state: &RequestState) -> Summary {
    let status = match state.status {
        Status::AwaitingVerification | Status::InReview | Status::AwaitingSubject => "pending",
        Status::InProgress => "in_progress",
        Status::Completed => "completed",
        Status::Withdrawn | Status::Rejected | Status::Expired => "cancelled",
    };
    Summary {
        status,
        ours: state.status.as_str(),
        reason: state.rejection.map(|r| r.as_str()),
        needs_user_verification: state.status == Status::AwaitingVerification
            && !state.verified_methods.iter().any(proved_by_us),
        expected_completion_time: expected_completion(state),
    }
}

/// Our due date's end; before our clock starts (not for `gdpr` or `ccpa`, whose clocks start
/// at receipt), the receipt plus a month as the GDPR's ordinary period.
fn expected_completion(state: &RequestState) -> DateTime<Utc> {
    state
        .due
        .as_ref()
        .map(|d| d.ends_at)
        .unwrap_or(state.received_at + Duration::days(30))
}

/// Where the user goes to verify and for results (the portal's page of the request).
pub struct Links {
    pub request_page: String,
}

/// The status object of §8.3 (and, with `status_callback_url`, the body of a callback, §8.6).
pub fn object(
    controller_id: &str,
    subject_request_id: &str,
    state: &RequestState,
    links: &Links,
    processor_domain: &str,
) -> Value {
    let s = summary(state);
    let mut o = json!({
        "controller_id": controller_id,
        "subject_request_id": subject_request_id,
        "request_status": s.status,
        "expected_completion_time": s.expected_completion_time,
        "api_version": super::API_VERSION,
    });
    let mut ext = Map::new();
    ext.insert("status".into(), json!(s.ours));
    // Callbacks may arrive out of order (two sent at once, or one retried late): the
    // request's version orders them.
    ext.insert("sequence".into(), json!(state.version));
    if let Some(r) = s.reason {
        ext.insert("reason".into(), json!(r));
    }
    if s.needs_user_verification {
        ext.insert("user_verification_url".into(), json!(links.request_page));
    }
    if let Some(m) = o.as_object_mut() {
        if s.status == "completed" {
            m.insert("results_url".into(), json!(links.request_page));
        }
        m.insert("extensions".into(), json!({ processor_domain: ext }));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RejectionReason, VerificationMethod};
    use crate::interop::drp::status::tests::state;

    #[test]
    fn every_status_maps_as_the_opendsr_table_says() {
        let table = [
            (Status::AwaitingVerification, "pending"),
            (Status::InReview, "pending"),
            (Status::AwaitingSubject, "pending"),
            (Status::InProgress, "in_progress"),
            (Status::Completed, "completed"),
            (Status::Withdrawn, "cancelled"),
            (Status::Rejected, "cancelled"),
            (Status::Expired, "cancelled"),
        ];
        assert_eq!(
            table.len(),
            Status::ALL.len(),
            "every status is in the table"
        );
        for (ours, theirs) in table {
            let s = summary(&state(ours, &[]));
            assert_eq!(s.status, theirs, "{ours}");
            assert_eq!(s.ours, ours.as_str());
        }
    }

    #[test]
    fn rejections_and_expiries_are_cancelled_with_our_reason_in_the_extension() {
        let links = Links {
            request_page: "https://x.test/requests/DSR-AAAA-BBBB".into(),
        };
        let mut rejected = state(Status::Rejected, &[]);
        rejected.rejection = Some(RejectionReason::NoDataHeld);
        let o = object("ctl", "sr-1", &rejected, &links, "x.test");
        assert_eq!(o["request_status"], "cancelled");
        assert_eq!(o["extensions"]["x.test"]["status"], "rejected");
        assert_eq!(o["extensions"]["x.test"]["reason"], "no_data_held");
        assert!(o.get("results_url").is_none());
        let expired = object(
            "ctl",
            "sr-1",
            &state(Status::Expired, &[]),
            &links,
            "x.test",
        );
        assert_eq!(expired["request_status"], "cancelled");
        assert_eq!(expired["extensions"]["x.test"]["status"], "expired");
        let done = object(
            "ctl",
            "sr-1",
            &state(Status::Completed, &[]),
            &links,
            "x.test",
        );
        assert_eq!(done["results_url"], links.request_page.as_str());
        assert!(done["expected_completion_time"].is_string());
    }

    #[test]
    fn only_a_request_waiting_for_our_own_proof_sends_the_user_to_verify() {
        use VerificationMethod as M;
        let links = Links {
            request_page: "https://x.test/r".into(),
        };
        let url = |methods: &[M]| {
            object(
                "c",
                "s",
                &state(Status::AwaitingVerification, methods),
                &links,
                "d",
            )["extensions"]["d"]
                .get("user_verification_url")
                .is_some()
        };
        assert!(url(&[]));
        assert!(url(&[M::AgentAttested]));
        assert!(!url(&[M::EmailCode]));
    }
}

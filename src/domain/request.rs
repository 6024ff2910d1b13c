//! The workflow state of one request: what the transition function reads and returns. Contact
//! data and free text live elsewhere (storage), because no rule of the workflow depends on them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Jurisdiction, RejectionReason, Relationship, RequestKind, Status, VerificationMethod};
use crate::clock::Due;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestState {
    pub kind: RequestKind,
    pub jurisdiction: Jurisdiction,
    pub status: Status,
    /// When the request reached us (for letters and phone calls, when it really arrived).
    pub received_at: DateTime<Utc>,
    /// Set once the methods proved so far meet the kind's requirement.
    pub verified_at: Option<DateTime<Utc>>,
    /// Every way identity has been proved so far (a code, a platform sign-in, a staff check).
    pub verified_methods: Vec<VerificationMethod>,
    /// Someone acting for the subject, if so.
    pub representative: Option<Relationship>,
    /// The response deadline. None until the clock starts (in `cn`, at verification).
    pub due: Option<Due>,
    /// When receipt must be acknowledged, where the jurisdiction sets a time.
    pub acknowledge_by: Option<Due>,
    pub extended_at: Option<DateTime<Utc>>,
    pub assignee: Option<String>,
    /// On four-eyes kinds, who gave the first approval (prepared the request).
    pub first_approval_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub fulfilment_started_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub rejection: Option<RejectionReason>,
    /// How many commands (the submission included) were accepted: the event log's length.
    pub version: i64,
}

impl RequestState {
    /// Checks the invariants every reachable state keeps. The property tests call it after
    /// every step; storage could call it on load to catch a hand-edited row.
    pub fn check_invariants(&self) -> Result<(), String> {
        let verified_states = [
            Status::InReview,
            Status::AwaitingSubject,
            Status::InProgress,
            Status::Completed,
        ];
        let rules = [
            (
                self.status.is_final() == self.closed_at.is_some(),
                "closed_at is set exactly in end states",
            ),
            (
                !verified_states.contains(&self.status) || self.verified_at.is_some(),
                "a request past verification has verified_at",
            ),
            (
                self.verified_at.is_none() || !self.verified_methods.is_empty(),
                "a verified request says how it was verified",
            ),
            (
                self.verified_at.is_none() || self.due.is_some(),
                "a verified request has a due date",
            ),
            (
                !matches!(self.status, Status::InProgress | Status::Completed)
                    || self.approved_at.is_some(),
                "a request in progress or completed was approved",
            ),
            (
                (self.status == Status::Rejected) == self.rejection.is_some(),
                "a rejection reason is present exactly when rejected",
            ),
            (
                self.fulfilment_started_at.is_none() || self.approved_at.is_some(),
                "fulfilment starts only after approval",
            ),
            (
                self.extended_at.is_none() || self.due.is_some(),
                "only a request with a due date can be extended",
            ),
            (self.version >= 1, "the submission is always in the log"),
        ];
        match rules.iter().find(|(ok, _)| !ok) {
            Some((_, rule)) => Err(format!("invariant broken: {rule} (status {})", self.status)),
            None => Ok(()),
        }
    }
}

//! What the caller must carry out after a command is accepted. The core only describes these;
//! storage writes them (outbox rows) in the same transaction as the state change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Actor, Status};
use crate::text_enum;

text_enum! {
    /// The messages the workflow sends. Each names a template set (one per locale).
    pub enum Message("message") {
        Received = "request_received",
        /// A one-time code (sent by identity verification, issue #4).
        VerificationCode = "verification_code",
        Verified = "identity_verified",
        /// To deciders: a verified request waits for review.
        ReviewNeeded = "review_needed",
        InfoRequested = "info_requested",
        ReplyReceived = "reply_received",
        Assigned = "request_assigned",
        SecondApprovalNeeded = "second_approval_needed",
        Approved = "request_approved",
        Rejected = "request_rejected",
        Extended = "deadline_extended",
        Completed = "request_completed",
        /// Completion of a complaint: the written answer.
        ComplaintAnswered = "complaint_answered",
        Withdrawn = "request_withdrawn",
        Expired = "request_expired",
        /// To the subject, before a restriction of processing is lifted (fulfilment, issue #7).
        RestrictionLifting = "restriction_lifting",
        /// Staff reminders from the deadline job.
        DueSoon = "due_soon",
        Overdue = "overdue",
        /// To the assignee, sent by a colleague from the console's queue.
        Reminder = "staff_reminder",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    /// The data subject, through the contact they gave.
    Subject,
    /// One staff member, by id.
    Staff(String),
    /// Everyone who may take the decision (reviewers and admins).
    Reviewers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    Notify {
        to: Recipient,
        message: Message,
    },
    /// Approved: create the fulfilment tasks for this request.
    StartFulfilment,
}

/// The audit entry for one accepted command: exactly one per command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub command: String,
    pub actor: Actor,
    pub at: DateTime<Utc>,
    /// None only for the submission that created the request.
    pub from: Option<Status>,
    pub to: Status,
    pub details: serde_json::Value,
}

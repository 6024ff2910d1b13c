//! Where a request is in its lifecycle. See docs/ARCHITECTURE.md for the state diagram.

use crate::text_enum;

text_enum! {
    pub enum Status("status") {
        /// Submitted; the subject has not yet proved who they are.
        AwaitingVerification = "awaiting_verification",
        /// Verified; staff are reviewing it.
        InReview = "in_review",
        /// Staff asked the subject for more information.
        AwaitingSubject = "awaiting_subject",
        /// Approved; fulfilment is under way.
        InProgress = "in_progress",
        Completed = "completed",
        Rejected = "rejected",
        /// Cancelled by the subject.
        Withdrawn = "withdrawn",
        /// Identity never verified in time.
        Expired = "expired",
    }
}

impl Status {
    /// End states are absorbing: they accept nothing but notes.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Rejected | Status::Withdrawn | Status::Expired
        )
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Status::AwaitingVerification => "待验证身份",
            Status::InReview => "审核中",
            Status::AwaitingSubject => "等待您补充信息",
            Status::InProgress => "处理中",
            Status::Completed => "已完成",
            Status::Rejected => "已拒绝",
            Status::Withdrawn => "已撤回",
            Status::Expired => "已过期",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Status::AwaitingVerification => "Awaiting identity verification",
            Status::InReview => "In review",
            Status::AwaitingSubject => "Awaiting your reply",
            Status::InProgress => "In progress",
            Status::Completed => "Completed",
            Status::Rejected => "Rejected",
            Status::Withdrawn => "Withdrawn",
            Status::Expired => "Expired",
        }
    }
}

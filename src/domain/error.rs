//! Why a command was refused. Each variant has a stable code (the API's `error.code`) and a
//! message in Chinese and English.

use chrono::{DateTime, Utc};

use super::Status;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("The request is {status}; an ended request accepts only notes")]
    Closed { status: Status },
    #[error("You may not {command} this request")]
    NotPermitted { command: &'static str },
    #[error("The command {command} is not allowed while the request is {status}")]
    WrongStatus {
        command: &'static str,
        status: Status,
    },
    #[error("This jurisdiction allows no extension")]
    ExtensionNotAvailable,
    #[error("The deadline was already extended once")]
    AlreadyExtended,
    #[error("The deadline has not started yet (identity not verified)")]
    NoDueDate,
    #[error("The due date has passed; it can no longer be extended")]
    PastDue,
    #[error("The second approval must come from a different staff member")]
    SameApprover,
    #[error("Fulfilment has started changing data; the request can no longer be withdrawn")]
    FulfilmentStarted,
    #[error("A staff check must say what evidence was checked")]
    EvidenceRequired,
    #[error("The subject still has until {} to verify", until.format("%Y-%m-%d %H:%M UTC"))]
    VerificationWindowOpen { until: DateTime<Utc> },
}

impl TransitionError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "request_closed",
            Self::NotPermitted { .. } => "not_permitted",
            Self::WrongStatus { .. } => "command_not_allowed",
            Self::ExtensionNotAvailable => "extension_not_available",
            Self::AlreadyExtended => "already_extended",
            Self::NoDueDate => "no_due_date",
            Self::PastDue => "past_due",
            Self::SameApprover => "second_approver_required",
            Self::FulfilmentStarted => "fulfilment_started",
            Self::VerificationWindowOpen { .. } => "verification_window_open",
            Self::EvidenceRequired => "evidence_required",
        }
    }

    /// True when the actor lacks the right (HTTP 403); otherwise the request's state is what
    /// forbids the command (HTTP 409).
    pub fn is_permission(&self) -> bool {
        matches!(self, Self::NotPermitted { .. })
    }

    /// True when the command itself lacks something (HTTP 422), not the state or the right.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Self::EvidenceRequired)
    }

    pub fn message_en(&self) -> String {
        self.to_string()
    }

    pub fn message_zh(&self) -> String {
        match self {
            Self::Closed { status } => format!("该请求已{}，只能添加备注", status.label_zh()),
            Self::NotPermitted { command } => format!("您无权执行此操作（{command}）"),
            Self::WrongStatus { command, status } => {
                format!(
                    "请求当前状态为“{}”，不能执行此操作（{command}）",
                    status.label_zh()
                )
            }
            Self::ExtensionNotAvailable => "该法域不允许延期".into(),
            Self::AlreadyExtended => "期限已延长过一次，不能再次延期".into(),
            Self::NoDueDate => "身份尚未验证，处理期限尚未开始计算".into(),
            Self::PastDue => "已超过处理期限，不能再延期".into(),
            Self::SameApprover => "第二次批准必须由另一名工作人员作出".into(),
            Self::FulfilmentStarted => "请求已开始执行并修改数据，无法撤回".into(),
            Self::EvidenceRequired => "人工核验须注明所核对的证明材料".into(),
            Self::VerificationWindowOpen { until } => {
                format!(
                    "申请人仍可在 {} 之前完成身份验证",
                    until.format("%Y-%m-%d %H:%M UTC")
                )
            }
        }
    }
}

//! Commands as data: everything anyone can ask of a request. The JSON form
//! (`{"command": "reject", "reason": "no_data_held", "explanation": "…"}`) is the staff API's
//! action body and the event log's record of what was asked.

use serde::{Deserialize, Serialize};

use super::{FreeText, RejectionReason};
use crate::text_enum;

text_enum! {
    /// How identity was proved.
    pub enum VerificationMethod("verification method") {
        EmailCode = "email_code",
        SmsCode = "sms_code",
        MagicLink = "magic_link",
        PlatformToken = "platform_token",
        /// Staff checked evidence by hand (guardians, relatives, agents, letters).
        StaffCheck = "staff_check",
        /// An authorised agent of the Data Rights Protocol attested, in a request it signed,
        /// that it verified the subject's email address or phone number (docs/INTEROP.md).
        /// Weaker than our own check: see `identity::missing`.
        AgentAttested = "agent_attested",
    }
}

text_enum! {
    /// Why a verification attempt failed (recorded; the code itself never is).
    pub enum VerificationFailure("verification failure") {
        WrongCode = "wrong_code",
        Expired = "expired",
        Locked = "locked",
        LinkUsed = "link_used",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// One proof of identity. The request counts as verified once the proofs so far meet the
    /// kind's requirement (and, for a representative, include a staff check). A staff check
    /// says what evidence was checked.
    Verify {
        method: VerificationMethod,
        #[serde(default)]
        evidence: Option<FreeText>,
    },
    /// A failed verification attempt, for the record.
    VerificationFailed {
        method: VerificationMethod,
        failure: VerificationFailure,
    },
    /// The verification window passed without verification.
    Expire,
    /// Staff ask the subject for more information.
    RequestInfo { question: FreeText },
    /// The subject answers a question.
    SubjectReply { message: FreeText },
    /// Give the request to a staff member (by id), or take it from everyone (null).
    Assign { assignee: Option<String> },
    /// Approve; on four-eyes kinds the first approval prepares and a second releases.
    Approve {
        #[serde(default)]
        comment: Option<FreeText>,
    },
    Reject {
        reason: RejectionReason,
        explanation: FreeText,
    },
    /// Take the jurisdiction's extension, once, before the due date, with reasons.
    Extend { reason: FreeText },
    /// Fulfilment has begun changing data; from now on the subject can no longer withdraw.
    StartFulfilment,
    /// Fulfilment is done; the summary is what the subject is told (for a complaint, the
    /// written answer).
    Complete { summary: FreeText },
    /// The subject cancels the request.
    Withdraw {
        #[serde(default)]
        reason: Option<FreeText>,
    },
    /// An internal note; allowed in every state, changes nothing else.
    Note { text: FreeText },
}

impl Command {
    /// The stable name, as in the JSON `command` field and the event log.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Verify { .. } => "verify",
            Command::VerificationFailed { .. } => "verification_failed",
            Command::Expire => "expire",
            Command::RequestInfo { .. } => "request_info",
            Command::SubjectReply { .. } => "subject_reply",
            Command::Assign { .. } => "assign",
            Command::Approve { .. } => "approve",
            Command::Reject { .. } => "reject",
            Command::Extend { .. } => "extend",
            Command::StartFulfilment => "start_fulfilment",
            Command::Complete { .. } => "complete",
            Command::Withdraw { .. } => "withdraw",
            Command::Note { .. } => "note",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_from_json_and_name_themselves_the_same_way() {
        let cmd: Command = serde_json::from_str(
            r#"{"command":"reject","reason":"no_data_held","explanation":"查无此人"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cmd.name(), "reject");
        let back = serde_json::to_value(&cmd).unwrap_or_default();
        assert_eq!(back["command"], "reject");
        assert!(
            serde_json::from_str::<Command>(r#"{"command":"reject","reason":"because"}"#).is_err()
        );
        assert!(serde_json::from_str::<Command>(r#"{"command":"note","text":"  "}"#).is_err());
        assert!(serde_json::from_str::<Command>(r#"{"command":"launch"}"#).is_err());
    }
}

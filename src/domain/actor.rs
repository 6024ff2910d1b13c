//! Who issues a command. The core decides what each actor may do, so handlers never check
//! roles or statuses themselves.

use serde::{Deserialize, Serialize};

use crate::text_enum;

text_enum! {
    /// Staff roles. `agent` triages and prepares, `reviewer` decides, `admin` runs the
    /// system, `auditor` only reads.
    pub enum Role("role") {
        Agent = "agent",
        Reviewer = "reviewer",
        Admin = "admin",
        Auditor = "auditor",
    }
}

impl Role {
    /// May take decisions that bind the controller: approve, reject, extend.
    pub fn decides(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }

    /// May change anything at all (auditors are read-only).
    pub fn acts(self) -> bool {
        !matches!(self, Role::Auditor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// The data subject (or their representative), through the portal or API.
    Subject,
    /// A staff member, by id, with the role they held when they acted.
    Staff { id: String, role: Role },
    /// Rightsflow itself: scheduled jobs such as expiry.
    System,
}

impl Actor {
    pub fn kind_str(&self) -> &'static str {
        match self {
            Actor::Subject => "subject",
            Actor::Staff { .. } => "staff",
            Actor::System => "system",
        }
    }

    /// Staff who act (not auditors) may log a request received by phone, letter or in person.
    pub fn may_log_requests(&self) -> bool {
        matches!(self, Actor::Staff { role, .. } if role.acts())
    }

    /// Admins run the system: staff accounts, policy, failed deliveries.
    pub fn administers(&self) -> bool {
        matches!(
            self,
            Actor::Staff {
                role: Role::Admin,
                ..
            }
        )
    }

    pub fn staff_id(&self) -> Option<&str> {
        match self {
            Actor::Staff { id, .. } => Some(id),
            _ => None,
        }
    }
}

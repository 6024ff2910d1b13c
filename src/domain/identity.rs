//! How strongly a requester must prove who they are, per kind of request (PIPL Art. 6: no more
//! than needed; stronger proof where a mistake would hurt more), and who may act for whom.

use super::VerificationMethod;
use crate::text_enum;

text_enum! {
    /// What a kind of request needs before it counts as verified.
    pub enum IdentityRequirement("identity requirement") {
        /// A one-time code by email or SMS (a magic link, a platform sign-in or a staff check
        /// also do).
        Basic = "basic",
        /// A platform sign-in, or a one-time code plus a staff check.
        Strong = "strong",
    }
}

text_enum! {
    /// Someone acting for the data subject. Such a request always needs a staff check of the
    /// relationship as well.
    pub enum Relationship("relationship") {
        /// The guardian of a minor under 14 (PIPL Art. 31; policy 八).
        Guardian = "guardian",
        /// A near relative of a deceased person (PIPL Art. 49).
        Relative = "relative",
        /// An authorised agent.
        Agent = "agent",
    }
}

impl IdentityRequirement {
    /// The default per kind: deletion and portability are hard to undo or hand data out.
    pub fn default_for(kind: super::RequestKind) -> IdentityRequirement {
        match kind {
            super::RequestKind::Deletion | super::RequestKind::Portability => {
                IdentityRequirement::Strong
            }
            _ => IdentityRequirement::Basic,
        }
    }
}

fn is_code(m: &VerificationMethod) -> bool {
    matches!(
        m,
        VerificationMethod::EmailCode | VerificationMethod::SmsCode | VerificationMethod::MagicLink
    )
}

/// What is still missing, or None when `methods` satisfy the requirement.
pub fn missing(
    requirement: IdentityRequirement,
    representative: Option<Relationship>,
    methods: &[VerificationMethod],
) -> Option<&'static str> {
    let has = |m: VerificationMethod| methods.contains(&m);
    let staff = has(VerificationMethod::StaffCheck);
    let platform = has(VerificationMethod::PlatformToken);
    let code = methods.iter().any(is_code);
    // An agent's attestation is the agent's word, not our check: it is enough where a code
    // would be, and on strong kinds it stands in for the staff check only beside our own code.
    let attested = has(VerificationMethod::AgentAttested);
    if representative.is_some() && !staff {
        return Some("staff_check");
    }
    let ok = match requirement {
        IdentityRequirement::Basic => code || platform || staff || attested,
        IdentityRequirement::Strong => platform || (code && (staff || attested)),
    };
    match (ok, code || platform) {
        (true, _) => None,
        (false, true) => Some("staff_check"),
        (false, false) => Some("code"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VerificationMethod as M;

    #[test]
    fn requirements_combine_methods_as_the_policy_says() {
        use IdentityRequirement::{Basic, Strong};
        assert_eq!(missing(Basic, None, &[M::EmailCode]), None);
        assert_eq!(missing(Basic, None, &[]), Some("code"));
        assert_eq!(missing(Strong, None, &[M::PlatformToken]), None);
        assert_eq!(missing(Strong, None, &[M::SmsCode]), Some("staff_check"));
        assert_eq!(missing(Strong, None, &[M::SmsCode, M::StaffCheck]), None);
        assert_eq!(missing(Strong, None, &[M::StaffCheck]), Some("code"));
        // Acting for someone else always needs the staff check, whatever else is proved.
        assert_eq!(
            missing(Basic, Some(Relationship::Guardian), &[M::EmailCode]),
            Some("staff_check")
        );
        assert_eq!(
            missing(
                Basic,
                Some(Relationship::Guardian),
                &[M::EmailCode, M::StaffCheck]
            ),
            None
        );
        assert_eq!(
            missing(Strong, Some(Relationship::Relative), &[M::PlatformToken]),
            Some("staff_check")
        );
    }

    #[test]
    fn an_agents_attestation_is_weaker_than_our_own_check() {
        use IdentityRequirement::{Basic, Strong};
        assert_eq!(missing(Basic, None, &[M::AgentAttested]), None);
        // Deleting or exporting on an agent's word alone: our own code is still needed…
        assert_eq!(missing(Strong, None, &[M::AgentAttested]), Some("code"));
        // …and with it the attestation stands in for the staff check.
        assert_eq!(
            missing(Strong, None, &[M::AgentAttested, M::EmailCode]),
            None
        );
        assert_eq!(missing(Strong, None, &[M::EmailCode]), Some("staff_check"));
    }
}

//! The policy tables an operator may change without a rebuild (config file): per kind, whether
//! staff review and a second approver are needed; per jurisdiction, how the legal clock runs.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{IdentityRequirement, Jurisdiction, RequestKind};
use crate::clock::Period;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindPolicy {
    /// Staff must approve before fulfilment starts. When false the request is approved
    /// automatically once the subject is verified.
    pub review_required: bool,
    /// Approval needs two different staff members (four eyes): the first approval prepares
    /// the request, the second, by someone else, releases it.
    pub four_eyes: bool,
    /// How strongly the requester must prove who they are; unset means the kind's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityRequirement>,
}

/// When a jurisdiction's response clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStart {
    /// From the moment the request was received (GDPR, CCPA).
    Receipt,
    /// From the moment the subject's identity was verified (China, as commonly applied).
    Verification,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionRules {
    /// Calendar days are counted in this zone (which local day a start falls on, and the
    /// end of the last day).
    pub time_zone: Tz,
    pub clock_starts: ClockStart,
    pub respond: Period,
    /// How much longer the controller may take, once, with reasons. None: no extension.
    pub extension: Option<Period>,
    /// When receipt must be acknowledged, where the law sets a time.
    pub acknowledge: Option<Period>,
    /// Which holiday calendar `working_days` periods use.
    pub calendar_region: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PolicyOverrides")]
pub struct Policy {
    pub kinds: BTreeMap<RequestKind, KindPolicy>,
    pub jurisdictions: BTreeMap<Jurisdiction, JurisdictionRules>,
    /// How long a subject has to verify their identity before the request expires.
    pub verification_window_days: u32,
}

impl Default for Policy {
    fn default() -> Self {
        let kinds = RequestKind::ALL
            .iter()
            .map(|&kind| {
                let policy = KindPolicy {
                    review_required: kind != RequestKind::ConsentWithdrawal,
                    four_eyes: matches!(kind, RequestKind::Deletion | RequestKind::Portability),
                    identity: None,
                };
                (kind, policy)
            })
            .collect();
        let jurisdictions = [
            (
                Jurisdiction::Cn,
                JurisdictionRules {
                    time_zone: chrono_tz::Asia::Shanghai,
                    clock_starts: ClockStart::Verification,
                    respond: Period::WorkingDays(15),
                    extension: None,
                    acknowledge: None,
                    calendar_region: "cn".into(),
                },
            ),
            (
                Jurisdiction::Eu,
                JurisdictionRules {
                    time_zone: chrono_tz::Europe::Brussels,
                    clock_starts: ClockStart::Receipt,
                    respond: Period::Months(1),
                    extension: Some(Period::Months(2)),
                    acknowledge: None,
                    calendar_region: "eu".into(),
                },
            ),
            (
                Jurisdiction::UsCa,
                JurisdictionRules {
                    time_zone: chrono_tz::America::Los_Angeles,
                    clock_starts: ClockStart::Receipt,
                    respond: Period::CalendarDays(45),
                    extension: Some(Period::CalendarDays(45)),
                    acknowledge: Some(Period::BusinessDays(10)),
                    calendar_region: "us-ca".into(),
                },
            ),
        ]
        .into_iter()
        .collect();
        Policy {
            kinds,
            jurisdictions,
            verification_window_days: 7,
        }
    }
}

/// What a config file says: each entry replaces the default for that kind or jurisdiction
/// only, so naming one kind does not silently change the others.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyOverrides {
    #[serde(default)]
    kinds: BTreeMap<RequestKind, KindPolicy>,
    #[serde(default)]
    jurisdictions: BTreeMap<Jurisdiction, JurisdictionRules>,
    verification_window_days: Option<u32>,
}

impl From<PolicyOverrides> for Policy {
    fn from(overrides: PolicyOverrides) -> Self {
        let mut policy = Policy::default();
        policy.kinds.extend(overrides.kinds);
        policy.jurisdictions.extend(overrides.jurisdictions);
        if let Some(days) = overrides.verification_window_days {
            policy.verification_window_days = days;
        }
        policy
    }
}

impl Policy {
    pub fn kind(&self, kind: RequestKind) -> KindPolicy {
        self.kinds.get(&kind).copied().unwrap_or(KindPolicy {
            review_required: true,
            four_eyes: false,
            identity: None,
        })
    }

    pub fn identity(&self, kind: RequestKind) -> IdentityRequirement {
        self.kind(kind)
            .identity
            .unwrap_or_else(|| IdentityRequirement::default_for(kind))
    }

    /// The rules for a jurisdiction; a config that drops one falls back to the built-in
    /// default rather than leaving the request without a clock.
    pub fn rules(&self, jurisdiction: Jurisdiction) -> JurisdictionRules {
        match self.jurisdictions.get(&jurisdiction) {
            Some(rules) => rules.clone(),
            None => Policy::default()
                .jurisdictions
                .remove(&jurisdiction)
                .unwrap_or_else(unreachable_rules),
        }
    }
}

/// The defaults cover every jurisdiction; this exists only so `rules` needs no `unwrap`.
fn unreachable_rules() -> JurisdictionRules {
    JurisdictionRules {
        time_zone: chrono_tz::UTC,
        clock_starts: ClockStart::Receipt,
        respond: Period::CalendarDays(30),
        extension: None,
        acknowledge: None,
        calendar_region: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_brief() {
        let p = Policy::default();
        assert!(!p.kind(RequestKind::ConsentWithdrawal).review_required);
        assert!(p.kind(RequestKind::Access).review_required);
        assert!(
            p.kind(RequestKind::Deletion).four_eyes && p.kind(RequestKind::Portability).four_eyes
        );
        assert!(!p.kind(RequestKind::Correction).four_eyes);
        assert_eq!(p.rules(Jurisdiction::Cn).respond, Period::WorkingDays(15));
        assert_eq!(p.rules(Jurisdiction::Cn).extension, None);
        assert_eq!(p.rules(Jurisdiction::Eu).extension, Some(Period::Months(2)));
    }

    #[test]
    fn policy_reads_from_toml_with_defaults_for_what_is_left_out() {
        let text = r#"
            verification_window_days = 14
            [kinds.correction]
            review_required = true
            four_eyes = true
        "#;
        let p: Policy = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.verification_window_days, 14);
        assert!(p.kind(RequestKind::Correction).four_eyes);
        // Naming one kind leaves the others at their defaults.
        assert!(!p.kind(RequestKind::ConsentWithdrawal).review_required);
        assert!(p.kind(RequestKind::Deletion).four_eyes);
        assert_eq!(
            p.rules(Jurisdiction::UsCa).respond,
            Period::CalendarDays(45)
        );
    }
}

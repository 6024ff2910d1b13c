//! DRP actions (§3.01) as our request kinds, and the identity claims (§3.04) as the subject's
//! contact and our proof of identity (see docs/INTEROP.md for both tables).

use serde_json::{json, Map, Value};

use crate::domain::details::{Consent, DataCategory};
use crate::domain::{Jurisdiction, RequestKind, SubjectContact};

/// What an exercise asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A request of one of our kinds, with its details.
    Request { kind: RequestKind, details: Value },
    /// An opt-in to sale: a consent grant, recorded in the consent ledger at once.
    ConsentGrant { purpose: Consent },
}

/// The consent that "sale" of personal data stands for: sharing with partners (policy 五(四)).
pub const SALE: Consent = Consent::PartnerSharing;

/// The action an `exercise` names. §3.01 spells the sale actions `sale:opt_out`, its example
/// `sale:opt-out`: both are read.
pub fn action(exercise: &str) -> Option<Action> {
    let all_categories: Vec<&str> = DataCategory::ALL.iter().map(|c| c.as_str()).collect();
    let access = || Action::Request {
        kind: RequestKind::Access,
        details: json!({ "categories": all_categories, "format": "page" }),
    };
    Some(match exercise {
        "access" | "access:categories" | "access:specific" => access(),
        "deletion" => Action::Request {
            kind: RequestKind::Deletion,
            details: json!({ "scope": "account" }),
        },
        "sale:opt-out" | "sale:opt_out" => Action::Request {
            kind: RequestKind::ConsentWithdrawal,
            details: json!({ "consents": [SALE.as_str()] }),
        },
        "sale:opt-in" | "sale:opt_in" => Action::ConsentGrant { purpose: SALE },
        _ => return None,
    })
}

/// The jurisdiction of a `regime`: DRP 1.0 encodes the CCPA; a request without a regime is
/// voluntary and runs on the same clock.
pub fn jurisdiction(regime: Option<&str>) -> Option<Jurisdiction> {
    match regime {
        None | Some("ccpa") => Some(Jurisdiction::UsCa),
        Some(_) => None,
    }
}

/// Who the request is about, from the schema.org/Person claims, and whether the agent says it
/// verified the channel we will write to (`email_verified`, or `phone_number_verified` when
/// there is no email).
pub struct Identity {
    pub contact: SubjectContact,
    pub attested: bool,
}

pub fn identity(m: &Map<String, Value>) -> Result<Identity, String> {
    let text = |k: &str| m.get(k).and_then(Value::as_str);
    let yes = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
    let contact = SubjectContact::new(text("name"), text("email"), text("phone_number"))
        .map_err(|e| e.to_string())?;
    let attested = if contact.email.is_some() {
        yes("email_verified")
    } else {
        yes("phone_number_verified")
    };
    Ok(Identity { contact, attested })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drp_action_has_a_kind() {
        let kind = |e: &str| match action(e) {
            Some(Action::Request { kind, .. }) => Some(kind),
            _ => None,
        };
        for e in ["access", "access:categories", "access:specific"] {
            assert_eq!(kind(e), Some(RequestKind::Access), "{e}");
        }
        assert_eq!(kind("deletion"), Some(RequestKind::Deletion));
        assert_eq!(kind("sale:opt-out"), Some(RequestKind::ConsentWithdrawal));
        assert_eq!(kind("sale:opt_out"), Some(RequestKind::ConsentWithdrawal));
        assert_eq!(
            action("sale:opt-in"),
            Some(Action::ConsentGrant { purpose: SALE })
        );
        assert_eq!(
            action("sale:opt_in"),
            Some(Action::ConsentGrant { purpose: SALE })
        );
        assert_eq!(action("erasure"), None);
        // The details each kind gets are valid details of that kind.
        for e in ["access", "deletion", "sale:opt-out"] {
            let Some(Action::Request { kind, details }) = action(e) else {
                panic!("{e}");
            };
            assert!(
                crate::domain::RequestDetails::parse(kind, details).is_ok(),
                "{e}"
            );
        }
    }

    #[test]
    fn attestation_is_about_the_channel_we_write_to() {
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        let id = identity(&m(json!({"email": "a@b.test", "email_verified": true}))).unwrap();
        assert!(id.attested);
        let id = identity(&m(json!({"email": "a@b.test", "phone_number": "+14155550100", "phone_number_verified": true}))).unwrap();
        assert!(
            !id.attested,
            "the code goes to the email, which nobody verified"
        );
        assert!(identity(&m(json!({"name": "A"}))).is_err());
        assert_eq!(jurisdiction(None), Some(Jurisdiction::UsCa));
        assert_eq!(jurisdiction(Some("gdpr")), None);
    }
}

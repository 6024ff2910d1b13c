//! Global Privacy Control: a `Sec-GPC: 1` header on a signed-in platform user's traffic,
//! forwarded by the platform, is an opt-out of sharing with partners and of personalised
//! recommendations and advertising, recorded in the consent ledger with source `gpc`
//! (docs/INTEROP.md).
//!
//! A repeated signal records nothing new: a purpose already withdrawn stays as it is. A grant
//! the user made after a signal was honoured (told of the conflict, they chose to consent, as
//! CCPA regulation §7025(c)(3) allows) is kept: the signal does not undo it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::details::Consent;
use crate::service::{ServiceError, Services};
use crate::storage::consents::{self as store, ConsentEvent};
use crate::storage::to_db_time;

/// The source the ledger records.
pub const SOURCE: &str = "gpc";

/// What the signal opts out of: sale or sharing (with partners, policy 五(四)) and
/// cross-context behavioural advertising (personalised recommendations).
pub const PURPOSES: [Consent; 2] = [
    Consent::PartnerSharing,
    Consent::PersonalisedRecommendations,
];

/// What one signal did, purpose by purpose.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GpcOutcome {
    /// Withdrawn now, by this signal.
    pub withdrawn: Vec<String>,
    /// Withdrawn before (by an earlier signal or otherwise): nothing recorded.
    pub already_withdrawn: Vec<String>,
    /// Granted by the user after an earlier signal was honoured: kept.
    pub kept: Vec<String>,
}

/// Records the signal for a platform account.
pub fn record(
    s: &Services,
    platform_user_id: &str,
    now: DateTime<Utc>,
) -> Result<GpcOutcome, ServiceError> {
    let mut conn = s.db().conn()?;
    let history = store::history(&mut conn, platform_user_id)?;
    let mut out = GpcOutcome::default();
    for purpose in PURPOSES.map(Consent::as_str) {
        let events: Vec<&ConsentEvent> = history.iter().filter(|e| e.purpose == purpose).collect();
        match events.last() {
            Some(last) if !last.granted => {
                out.already_withdrawn.push(purpose.to_owned());
                continue;
            }
            Some(_) if events.iter().any(|e| e.source == SOURCE && !e.granted) => {
                out.kept.push(purpose.to_owned());
                continue;
            }
            _ => {}
        }
        // The id counts the purpose's events: two signals racing write the same id, and the
        // second records nothing.
        let event = ConsentEvent {
            id: format!("gpc:{platform_user_id}:{purpose}:{}", events.len()),
            platform_user_id: Some(platform_user_id.to_owned()),
            email: None,
            purpose: purpose.to_owned(),
            granted: false,
            source: SOURCE.to_owned(),
            request_id: None,
            at: to_db_time(now),
        };
        // The platform forwarded the signal: no webhook goes back to it.
        if store::record(&mut conn, &event, false, now)? {
            out.withdrawn.push(purpose.to_owned());
        } else {
            out.already_withdrawn.push(purpose.to_owned());
        }
    }
    tracing::info!(
        withdrawn = out.withdrawn.len(),
        kept = out.kept.len(),
        "gpc signal recorded"
    );
    Ok(out)
}

/// Whether a `Sec-GPC` header value is the signal: exactly `1` (the GPC specification; any
/// other value is no signal).
pub fn is_signal(value: Option<&str>) -> bool {
    value.map(str::trim) == Some("1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_is_a_signal() {
        assert!(is_signal(Some("1")));
        assert!(is_signal(Some(" 1 ")));
        for v in [None, Some("0"), Some(""), Some("true"), Some("11")] {
            assert!(!is_signal(v), "{v:?}");
        }
    }
}

//! What each kind of request asks for, and nothing more (minimum necessary, PIPL Art. 6).
//! The API takes `details` as JSON; `RequestDetails::parse` turns it into one typed value per
//! kind or says what is wrong.

use serde::{Deserialize, Serialize};

use super::{FreeText, RequestKind};
use crate::text_enum;

text_enum! {
    /// The categories of personal data the privacy policy names (sections 二 and 三).
    pub enum DataCategory("data category") {
        /// Account and basic profile: name, gender, birth date, phone, email, interests.
        Account = "account",
        /// Identity documents (ID card, passport…).
        Identity = "identity",
        Orders = "orders",
        /// Browsing history and in-app clicks.
        BrowsingHistory = "browsing_history",
        SearchHistory = "search_history",
        Location = "location",
        /// Device model, OS, identifiers, IP address, network type.
        Device = "device",
        /// What the user uploaded or published: text, photos, recordings, videos.
        Content = "content",
    }
}

text_enum! {
    /// The consents the policy relies on (sections 四(三), 五(一), 三(二)4, 十).
    pub enum Consent("consent") {
        PersonalisedRecommendations = "personalised_recommendations",
        PartnerSharing = "partner_sharing",
        LocationServices = "location_services",
        MarketingMessages = "marketing_messages",
    }
}

text_enum! {
    pub enum AccessFormat("format") {
        Page = "page",
        Json = "json",
        Csv = "csv",
    }
}

text_enum! {
    pub enum RestrictionGround("restriction ground") {
        DisputedAccuracy = "disputed_accuracy",
        UnlawfulProcessing = "unlawful_processing",
        Objection = "objection",
        NoLongerNeeded = "no_longer_needed",
        Other = "other",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldCorrection {
    pub field: FreeText,
    #[serde(default)]
    pub current_value: Option<FreeText>,
    pub corrected_value: FreeText,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionScope {
    /// Cancel the whole account (注销), ending in deletion or anonymisation.
    Account,
    /// Only the named categories.
    Categories,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestDetails {
    Access(AccessDetails),
    Correction(CorrectionDetails),
    Deletion(DeletionDetails),
    Restriction(RestrictionDetails),
    Portability(PortabilityDetails),
    ConsentWithdrawal(ConsentDetails),
    Complaint(ComplaintDetails),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessDetails {
    pub categories: Vec<DataCategory>,
    #[serde(default = "default_access_format")]
    pub format: AccessFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectionDetails {
    pub fields: Vec<FieldCorrection>,
    /// How the corrected values can be checked (a document the subject can show, a link…).
    /// Described in words: the portal takes no uploads yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<FreeText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionDetails {
    pub scope: DeletionScope,
    #[serde(default)]
    pub categories: Vec<DataCategory>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictionDetails {
    /// What processing to stop.
    pub processing: FreeText,
    pub ground: RestrictionGround,
    #[serde(default)]
    pub explanation: Option<FreeText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortabilityDetails {
    pub categories: Vec<DataCategory>,
    pub format: AccessFormat,
    /// Another processor to send the data to, if the subject wants that (in their words).
    #[serde(default)]
    pub recipient: Option<FreeText>,
    /// A processor the operator registered (`[[fulfilment.destinations]]`, by name) that the
    /// package is sent to once it is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentDetails {
    pub consents: Vec<Consent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintDetails {
    pub subject: FreeText,
    pub account: FreeText,
    #[serde(default)]
    pub related_reference: Option<String>,
}

fn default_access_format() -> AccessFormat {
    AccessFormat::Page
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DetailsError(pub String);

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, DetailsError> {
    serde_json::from_value(value).map_err(|e| DetailsError(e.to_string()))
}

fn non_empty<T>(items: &[T], what: &str) -> Result<(), DetailsError> {
    if items.is_empty() {
        Err(DetailsError(format!("name at least one {what}")))
    } else if items.len() > 50 {
        Err(DetailsError(format!("too many {what} entries")))
    } else {
        Ok(())
    }
}

impl RequestDetails {
    /// Reads the details for `kind` from JSON (`null` counts as `{}`).
    pub fn parse(
        kind: RequestKind,
        value: serde_json::Value,
    ) -> Result<RequestDetails, DetailsError> {
        let value = if value.is_null() {
            serde_json::json!({})
        } else {
            value
        };
        let details = match kind {
            RequestKind::Access => {
                let d: AccessDetails = from_json(value)?;
                non_empty(&d.categories, "data category")?;
                RequestDetails::Access(d)
            }
            RequestKind::Correction => {
                let d: CorrectionDetails = from_json(value)?;
                non_empty(&d.fields, "field to correct")?;
                RequestDetails::Correction(d)
            }
            RequestKind::Deletion => {
                let d: DeletionDetails = from_json(value)?;
                if d.scope == DeletionScope::Categories {
                    non_empty(&d.categories, "data category")?;
                }
                RequestDetails::Deletion(d)
            }
            RequestKind::Restriction => RequestDetails::Restriction(from_json(value)?),
            RequestKind::Portability => {
                let d: PortabilityDetails = from_json(value)?;
                non_empty(&d.categories, "data category")?;
                if d.format == AccessFormat::Page {
                    return Err(DetailsError(
                        "portability needs a machine-readable format: json or csv".into(),
                    ));
                }
                RequestDetails::Portability(d)
            }
            RequestKind::ConsentWithdrawal => {
                let d: ConsentDetails = from_json(value)?;
                non_empty(&d.consents, "consent")?;
                RequestDetails::ConsentWithdrawal(d)
            }
            RequestKind::Complaint => RequestDetails::Complaint(from_json(value)?),
        };
        Ok(details)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_kind_takes_only_what_it_needs() {
        let ok = [
            (
                RequestKind::Access,
                json!({"categories": ["orders", "location"]}),
            ),
            (
                RequestKind::Correction,
                json!({"fields": [{"field": "手机号", "corrected_value": "13900139000"}]}),
            ),
            (RequestKind::Deletion, json!({"scope": "account"})),
            (
                RequestKind::Restriction,
                json!({"processing": "个性化推荐", "ground": "objection"}),
            ),
            (
                RequestKind::Portability,
                json!({"categories": ["orders"], "format": "csv"}),
            ),
            (
                RequestKind::ConsentWithdrawal,
                json!({"consents": ["partner_sharing"]}),
            ),
            (
                RequestKind::Complaint,
                json!({"subject": "客服", "account": "未答复"}),
            ),
        ];
        for (kind, value) in ok {
            let parsed = RequestDetails::parse(kind, value);
            assert!(parsed.is_ok(), "{kind}: {parsed:?}");
        }
        let bad = [
            (RequestKind::Access, json!({})),
            (RequestKind::Access, json!({"categories": ["dreams"]})),
            (
                RequestKind::Access,
                json!({"categories": ["orders"], "id_card": "1101"}),
            ),
            (RequestKind::Deletion, json!({"scope": "categories"})),
            (
                RequestKind::Portability,
                json!({"categories": ["orders"], "format": "page"}),
            ),
            (RequestKind::ConsentWithdrawal, json!({"consents": []})),
            (RequestKind::Complaint, json!({"subject": "x"})),
            (RequestKind::Restriction, json!(null)),
        ];
        for (kind, value) in bad {
            assert!(
                RequestDetails::parse(kind, value.clone()).is_err(),
                "{kind}: {value}"
            );
        }
        let access = RequestDetails::parse(RequestKind::Access, json!({"categories": ["orders"]}));
        assert_eq!(
            access.map(|d| d.to_json()["format"].clone()),
            Ok(json!("page"))
        );
    }
}

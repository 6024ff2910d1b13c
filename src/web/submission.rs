//! The submission body, shared by the subject's and the staff's "new request" routes, and its
//! parsing into a domain `NewRequest` with one error code per kind of mistake.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Deserialize;

use super::error::ApiError;
use crate::domain::{
    Channel, ContactError, Jurisdiction, Locale, Relationship, RequestDetails, RequestKind,
    SubjectContact,
};
use crate::service::requests::NewRequest;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    pub kind: String,
    #[serde(default)]
    pub jurisdiction: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    pub subject: SubjectBody,
    #[serde(default)]
    pub details: serde_json::Value,
    /// Staff only: when the request really arrived (RFC 3339 with offset).
    #[serde(default)]
    pub received_at: Option<DateTime<FixedOffset>>,
    /// Staff only: phone, letter, email, in_person.
    #[serde(default)]
    pub channel: Option<String>,
    /// Someone acting for the subject: `guardian` (of a minor under 14), `relative` (of a
    /// deceased person), `agent`. Such requests always need a staff check.
    #[serde(default)]
    pub representative: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// Only to tell whether the subject is under 14 (who must act through a guardian); it is
    /// not stored.
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
}

/// Under 14 on `today`: PIPL Art. 28 counts their data as sensitive and Art. 31 asks for a
/// guardian (policy 八).
pub fn is_minor(birth: NaiveDate, today: NaiveDate) -> bool {
    birth
        .checked_add_months(chrono::Months::new(14 * 12))
        .is_none_or(|fourteenth| today < fourteenth)
}

impl SubmitBody {
    pub fn parse(self, fallback_locale: Locale, channel: Channel) -> Result<NewRequest, ApiError> {
        let kind: RequestKind = self.kind.parse().map_err(|_| {
            ApiError::invalid(
                "unknown_kind",
                "未知的请求类型；可选：access、correction、deletion、restriction、portability、consent_withdrawal、complaint",
                "Unknown request kind; expected one of access, correction, deletion, restriction, portability, consent_withdrawal, complaint",
            )
        })?;
        let jurisdiction = match self.jurisdiction.as_deref() {
            None => Jurisdiction::default(),
            Some(j) => j.parse().map_err(|_| {
                ApiError::invalid(
                    "unknown_jurisdiction",
                    "未知的法域；可选：cn、eu、us-ca",
                    "Unknown jurisdiction; expected cn, eu or us-ca",
                )
            })?,
        };
        let locale = match self.locale.as_deref() {
            None => fallback_locale,
            Some(l) => Locale::parse_loose(l).ok_or_else(|| {
                ApiError::invalid(
                    "unknown_locale",
                    "不支持的语言；可选：zh-CN、en",
                    "Unsupported locale; expected zh-CN or en",
                )
            })?,
        };
        let contact = SubjectContact::new(
            self.subject.name.as_deref(),
            self.subject.email.as_deref(),
            self.subject.phone.as_deref(),
        )
        .map_err(contact_error)?;
        let details = RequestDetails::parse(kind, self.details).map_err(|e| {
            ApiError::invalid(
                "invalid_details",
                format!("请求内容不完整或有误（{}）：{e}", kind.label_zh()),
                format!(
                    "The details for a {} request are incomplete or wrong: {e}",
                    kind.as_str()
                ),
            )
        })?;
        let representative = match self.representative.as_deref() {
            None => None,
            Some(r) => Some(r.parse::<Relationship>().map_err(|_| {
                ApiError::invalid(
                    "invalid_representative",
                    "代理关系必须是 guardian（监护人）、relative（近亲属）或 agent（受托人）",
                    "representative must be guardian, relative or agent",
                )
            })?),
        };
        let today = Utc::now()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive();
        if self.subject.birth_date.is_some_and(|b| is_minor(b, today))
            && representative != Some(Relationship::Guardian)
        {
            return Err(ApiError::invalid(
                "minor_needs_guardian",
                "不满十四周岁的未成年人需由监护人代为提出请求：请由监护人填写，并注明代理关系为监护人（guardian）",
                "A child under 14 cannot make this request alone: a guardian must make it for them (representative: guardian)",
            ));
        }
        Ok(NewRequest {
            representative,
            platform_user_id: None,
            kind,
            jurisdiction,
            contact,
            details,
            locale,
            channel,
            received_at: self.received_at.map(|t| t.with_timezone(&Utc)),
        })
    }
}

fn contact_error(e: ContactError) -> ApiError {
    let (zh, en) = match e {
        ContactError::InvalidEmail => ("邮箱地址格式不正确", "The email address is not valid"),
        ContactError::InvalidPhone => ("手机号码格式不正确", "The phone number is not valid"),
        ContactError::NoChannel => (
            "请至少提供邮箱或手机号码，以便我们联系您",
            "Give at least an email address or a phone number so we can reach you",
        ),
        ContactError::NameTooLong => ("姓名过长", "The name is too long"),
    };
    ApiError::invalid("invalid_contact", zh, en)
}

//! The seven rights of the privacy policy (section 七), one request kind each.

use crate::text_enum;

text_enum! {
    /// What the subject asks for. The text names are the API and storage names.
    pub enum RequestKind("request kind") {
        /// 访问权 — policy 七(一); PIPL Art. 45 ¶1; GDPR Art. 15.
        Access = "access",
        /// 更正权 — policy 七(二); PIPL Art. 46; GDPR Art. 16.
        Correction = "correction",
        /// 删除权 — policy 七(三); PIPL Art. 47; GDPR Art. 17.
        Deletion = "deletion",
        /// 限制处理权 — policy 七(四); PIPL Art. 44; GDPR Art. 18.
        Restriction = "restriction",
        /// 数据可移植权 — policy 七(五); PIPL Art. 45 ¶3; GDPR Art. 20.
        Portability = "portability",
        /// 撤回同意权 — policy 七(六); PIPL Arts. 15–16; GDPR Art. 7(3).
        ConsentWithdrawal = "consent_withdrawal",
        /// 投诉权 — policy 七(七); PIPL Art. 50.
        Complaint = "complaint",
    }
}

impl RequestKind {
    pub fn label_zh(self) -> &'static str {
        match self {
            RequestKind::Access => "访问个人信息",
            RequestKind::Correction => "更正个人信息",
            RequestKind::Deletion => "删除个人信息",
            RequestKind::Restriction => "限制处理",
            RequestKind::Portability => "数据可移植",
            RequestKind::ConsentWithdrawal => "撤回同意",
            RequestKind::Complaint => "投诉",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            RequestKind::Access => "Access to personal data",
            RequestKind::Correction => "Correction",
            RequestKind::Deletion => "Deletion",
            RequestKind::Restriction => "Restriction of processing",
            RequestKind::Portability => "Data portability",
            RequestKind::ConsentWithdrawal => "Withdrawal of consent",
            RequestKind::Complaint => "Complaint",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_text_name() {
        assert_eq!(RequestKind::ALL.len(), 7);
        for kind in RequestKind::ALL {
            assert_eq!(kind.as_str().parse::<RequestKind>(), Ok(*kind));
            let json = serde_json::to_string(kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        let err = "erasure".parse::<RequestKind>().unwrap_err();
        assert_eq!(err.what, "request kind");
    }
}

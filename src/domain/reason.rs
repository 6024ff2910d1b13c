//! Why a request may be refused. PIPL Art. 50 asks that every refusal state its reasons; the
//! list follows the grounds commonly drawn from GB/T 35273-2020 §8.7, plus identity and abuse.

use crate::text_enum;

text_enum! {
    pub enum RejectionReason("rejection reason") {
        /// The requester could not prove who they are.
        IdentityNotVerified = "identity_not_verified",
        /// Manifestly unfounded (GDPR Art. 12(5)).
        ManifestlyUnfounded = "manifestly_unfounded",
        /// Excessive, in particular repeated, requests.
        Excessive = "excessive",
        /// Directly related to the controller's legal obligations.
        LegalObligation = "legal_obligation",
        /// National security or defence.
        NationalSecurity = "national_security",
        /// Public safety, public health or a major public interest.
        PublicInterest = "public_interest",
        /// Criminal investigation, prosecution, trial or enforcement of judgments.
        CriminalProceedings = "criminal_proceedings",
        /// Evidence shows malice or abuse of rights by the requester.
        AbuseOfRights = "abuse_of_rights",
        /// Protecting life or property where consent is hard to obtain.
        VitalInterests = "vital_interests",
        /// Responding would seriously harm the rights of the subject or others.
        RightsOfOthers = "rights_of_others",
        /// Would disclose trade secrets.
        TradeSecret = "trade_secret",
        /// Another legal exemption, named in the explanation.
        LegalExemption = "legal_exemption",
        /// We hold no personal data about the subject.
        NoDataHeld = "no_data_held",
    }
}

impl RejectionReason {
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::IdentityNotVerified => "无法核实身份",
            Self::ManifestlyUnfounded => "请求明显缺乏依据",
            Self::Excessive => "请求过度或重复",
            Self::LegalObligation => "与履行法律法规规定的义务直接相关",
            Self::NationalSecurity => "与国家安全、国防安全直接相关",
            Self::PublicInterest => "与公共安全、公共卫生、重大公共利益直接相关",
            Self::CriminalProceedings => "与刑事侦查、起诉、审判和判决执行等直接相关",
            Self::AbuseOfRights => "有充分证据表明存在主观恶意或滥用权利",
            Self::VitalInterests => "为维护生命、财产等重大合法权益但难以取得同意",
            Self::RightsOfOthers => "响应将严重损害您或其他个人、组织的合法权益",
            Self::TradeSecret => "涉及商业秘密",
            Self::LegalExemption => "其他法定豁免情形",
            Self::NoDataHeld => "我们未持有您的个人信息",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::IdentityNotVerified => "Identity could not be verified",
            Self::ManifestlyUnfounded => "Manifestly unfounded",
            Self::Excessive => "Excessive or repeated",
            Self::LegalObligation => "Directly related to a legal obligation",
            Self::NationalSecurity => "National security or defence",
            Self::PublicInterest => "Public safety, public health or a major public interest",
            Self::CriminalProceedings => {
                "Criminal investigation, prosecution, trial or enforcement"
            }
            Self::AbuseOfRights => "Evidence of malice or abuse of rights",
            Self::VitalInterests => "Protecting life or property where consent is hard to get",
            Self::RightsOfOthers => "Would seriously harm the rights of the subject or others",
            Self::TradeSecret => "Trade secrets",
            Self::LegalExemption => "Another legal exemption",
            Self::NoDataHeld => "No personal data held",
        }
    }
}

//! The legal regime whose clock a request runs on.

use crate::text_enum;

text_enum! {
    #[derive(Default)]
    pub enum Jurisdiction("jurisdiction") {
        /// PRC: PIPL and GB/T 35273-2020 (the default).
        #[default]
        Cn = "cn",
        /// EU: GDPR.
        Eu = "eu",
        /// California: CCPA/CPRA regulations.
        UsCa = "us-ca",
    }
}

//! The languages people are served in: Simplified Chinese first, English second.

use crate::text_enum;

text_enum! {
    #[derive(Default)]
    pub enum Locale("locale") {
        #[default]
        ZhCn = "zh-CN",
        En = "en",
    }
}

impl Locale {
    /// Picks the best supported language from an `Accept-Language` header value, honouring
    /// q-values; Chinese when nothing matches.
    pub fn negotiate(accept_language: &str) -> Locale {
        let mut best: Option<(f32, Locale)> = None;
        for part in accept_language.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let locale = if tag.starts_with("zh") {
                Locale::ZhCn
            } else if tag.starts_with("en") {
                Locale::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }

    /// Accepts the common spellings (`zh`, `zh-Hans`, `zh_CN`, `en-US`…).
    pub fn parse_loose(text: &str) -> Option<Locale> {
        let t = text.trim().to_ascii_lowercase();
        if t.starts_with("zh") {
            Some(Locale::ZhCn)
        } else if t.starts_with("en") {
            Some(Locale::En)
        } else {
            None
        }
    }
}

text_enum! {
    /// How a request reached us.
    pub enum Channel("channel") {
        /// Submitted by the subject online (API or portal).
        Online = "online",
        Phone = "phone",
        Letter = "letter",
        Email = "email",
        InPerson = "in_person",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_negotiation() {
        assert_eq!(Locale::negotiate(""), Locale::ZhCn);
        assert_eq!(Locale::negotiate("en-US,en;q=0.9"), Locale::En);
        assert_eq!(Locale::negotiate("fr, en;q=0.5, zh-CN;q=0.8"), Locale::ZhCn);
        assert_eq!(Locale::negotiate("de"), Locale::ZhCn);
        assert_eq!(Locale::negotiate("zh;q=0, en"), Locale::En);
        assert_eq!(Locale::parse_loose("zh_Hans"), Some(Locale::ZhCn));
    }
}

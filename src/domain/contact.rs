//! How to reach the data subject. These are personal data: the types parse on the way in
//! (parse, don't validate) and redact themselves in `Debug`, so logs never carry them.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("not a valid email address")]
    InvalidEmail,
    #[error("not a valid phone number")]
    InvalidPhone,
    #[error("give at least an email address or a phone number")]
    NoChannel,
    #[error("the name is too long")]
    NameTooLong,
}

/// An email address with a plausible shape: one `@`, a non-empty local part, a domain of
/// letters, digits, dashes and dots (a single label such as `localhost` is allowed, for
/// intranet mail and the default first admin), no spaces, at most 254 characters. The domain is lower-cased; the local part is kept as
/// given because some mail systems treat it case-sensitively.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, ContactError> {
        let raw = raw.trim();
        if raw.is_empty()
            || raw.len() > 254
            || raw.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ContactError::InvalidEmail);
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(ContactError::InvalidEmail)?;
        // Checked as stored, lower-cased: some capitals lower-case to more than one character
        // (`İ` to `i` and a combining dot, which is not alphanumeric), and the stored address
        // is parsed again each time the request is read.
        let domain = domain.to_lowercase();
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let address = format!("{local}@{domain}");
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || !domain_ok
            || address.len() > 254
        {
            return Err(ContactError::InvalidEmail);
        }
        Ok(EmailAddress(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(<redacted>)")
    }
}

/// A phone number normalised to `+` and digits (E.164 shape: 6 to 15 digits). Spaces, dashes
/// and brackets are dropped; a number without a country code is taken as Chinese (+86), the
/// platform's home market.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, ContactError> {
        let raw = raw.trim();
        let (international, rest) = match raw.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => match raw.strip_prefix("00") {
                Some(rest) => (true, rest),
                None => (false, raw),
            },
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(ContactError::InvalidPhone),
            }
        }
        let full = if international {
            digits
        } else {
            format!("86{digits}")
        };
        if !(6..=15).contains(&full.len()) || full.starts_with('0') {
            return Err(ContactError::InvalidPhone);
        }
        Ok(PhoneNumber(format!("+{full}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneNumber(<redacted>)")
    }
}

/// Who the request is about and how to reach them: at least one channel.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectContact {
    pub name: Option<String>,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
}

impl SubjectContact {
    pub fn new(
        name: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Result<Self, ContactError> {
        let name = blank(name).map(str::to_owned);
        if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            return Err(ContactError::NameTooLong);
        }
        let email = blank(email).map(EmailAddress::parse).transpose()?;
        let phone = blank(phone).map(PhoneNumber::parse).transpose()?;
        if email.is_none() && phone.is_none() {
            return Err(ContactError::NoChannel);
        }
        Ok(SubjectContact { name, email, phone })
    }
}

fn blank(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

impl fmt::Debug for SubjectContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectContact")
            .field("name", &self.name.as_ref().map(|_| "<redacted>"))
            .field("email", &self.email)
            .field("phone", &self.phone)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_parse_and_reject() {
        let e = EmailAddress::parse(" Li.Lei@Example.COM ").map(String::from);
        assert_eq!(e, Ok("Li.Lei@example.com".to_owned()));
        assert!(EmailAddress::parse("admin@localhost").is_ok());
        for bad in [
            "",
            "no-at",
            "a@",
            "a@.com",
            "a b@c.com",
            "@c.com",
            "a@c..com",
            "a@c.com.",
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(ContactError::InvalidEmail),
                "{bad}"
            );
        }
    }

    #[test]
    fn phones_normalise_to_e164() {
        let p = |s| PhoneNumber::parse(s).map(String::from);
        assert_eq!(p("138 0013 8000"), Ok("+8613800138000".to_owned()));
        assert_eq!(p("+1 (415) 555-0100"), Ok("+14155550100".to_owned()));
        assert_eq!(p("0044 20 7946 0000"), Ok("+442079460000".to_owned()));
        assert_eq!(p("12ab"), Err(ContactError::InvalidPhone));
        assert_eq!(p("+12"), Err(ContactError::InvalidPhone));
    }

    #[test]
    fn contact_needs_a_channel_and_redacts_in_debug() {
        assert_eq!(
            SubjectContact::new(Some("张三"), None, Some("  ")),
            Err(ContactError::NoChannel)
        );
        let c = SubjectContact::new(Some("张三"), Some("z@example.cn"), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("张三") && !shown.contains("example"),
            "{shown}"
        );
    }
}

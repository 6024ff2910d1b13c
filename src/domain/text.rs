//! Free text written by people (questions, replies, notes, explanations). It may hold personal
//! data, so its `Debug` prints nothing of it: a stray `{:?}` in a log line leaks nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest free text we accept, in characters.
pub const MAX_FREE_TEXT: usize = 10_000;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FreeText(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreeTextError {
    #[error("the text is empty")]
    Empty,
    #[error("the text is longer than {MAX_FREE_TEXT} characters")]
    TooLong,
}

impl FreeText {
    pub fn parse(text: &str) -> Result<Self, FreeTextError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(FreeTextError::Empty);
        }
        if trimmed.chars().count() > MAX_FREE_TEXT {
            return Err(FreeTextError::TooLong);
        }
        Ok(FreeText(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FreeText {
    type Error = FreeTextError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        FreeText::parse(&value)
    }
}

impl From<FreeText> for String {
    fn from(value: FreeText) -> Self {
        value.0
    }
}

impl fmt::Debug for FreeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FreeText(<{} chars redacted>)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_is_trimmed_bounded_and_redacted_in_debug() {
        let text = FreeText::parse("  我的手机号是13800138000 ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.as_str(), "我的手机号是13800138000");
        assert!(!format!("{text:?}").contains("138"));
        assert_eq!(FreeText::parse("   "), Err(FreeTextError::Empty));
        let long = "字".repeat(MAX_FREE_TEXT + 1);
        assert_eq!(FreeText::parse(&long), Err(FreeTextError::TooLong));
    }
}

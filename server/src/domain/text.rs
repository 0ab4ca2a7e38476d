/// The name a channel gets when the connect body has none.
pub const DEFAULT_CHANNEL_NAME: &str = "WhatsApp QR";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters (got {len})")]
    TooLong { max: usize, len: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// A channel's display name: 1 to 100 characters (Unicode scalar values) after trimming
/// surrounding white space, with no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelName(String);

impl ChannelName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(value: &str) -> Result<Self, TextError> {
        let trimmed = value.trim();
        let len = trimmed.chars().count();
        if len == 0 {
            return Err(TextError::Empty);
        }
        if len > Self::MAX_CHARS {
            return Err(TextError::TooLong { max: Self::MAX_CHARS, len });
        }
        if trimmed.chars().any(char::is_control) {
            return Err(TextError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn default_name() -> Self {
        Self(DEFAULT_CHANNEL_NAME.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A text message body: 1 to 4096 characters, WhatsApp's own limit for what a linked device sends
/// comfortably. Line breaks and tabs are allowed; other control characters are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_CHARS: usize = 4096;

    pub fn parse(value: &str) -> Result<Self, TextError> {
        let len = value.chars().count();
        if value.trim().is_empty() {
            return Err(TextError::Empty);
        }
        if len > Self::MAX_CHARS {
            return Err(TextError::TooLong { max: Self::MAX_CHARS, len });
        }
        if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(TextError::ControlCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(ChannelName::parse("  Ventas  ").unwrap().as_str(), "Ventas");
        assert!(ChannelName::parse(&"ñ".repeat(100)).is_ok());
        assert_eq!(
            ChannelName::parse(&"a".repeat(101)),
            Err(TextError::TooLong { max: 100, len: 101 })
        );
        assert_eq!(ChannelName::parse(""), Err(TextError::Empty));
        assert_eq!(ChannelName::parse("   "), Err(TextError::Empty));
        assert_eq!(ChannelName::parse("a\u{0}b"), Err(TextError::ControlCharacter));
    }

    #[test]
    fn message_texts_keep_line_breaks_and_reject_blank_or_huge() {
        assert!(MessageText::parse("hola\nmundo").is_ok());
        assert_eq!(MessageText::parse(" \n "), Err(TextError::Empty));
        assert!(MessageText::parse(&"x".repeat(4096)).is_ok());
        assert!(MessageText::parse(&"x".repeat(4097)).is_err());
        assert_eq!(MessageText::parse("a\u{7}"), Err(TextError::ControlCharacter));
    }
}

use std::fmt;

/// An E.164 phone number: `+`, a non-zero digit, then 7 to 14 more digits (8 to 15 in all).
///
/// Written without spaces, dashes or brackets, exactly as WhatsApp's JIDs carry it; we do not
/// guess at reformatting, so `+56 9 1234 5678` is an error rather than a silent rewrite.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "phone number must be E.164: `+` followed by 8 to 15 digits, the first not 0 (e.g. +56912345678)"
)]
pub struct PhoneNumberError;

impl PhoneNumber {
    pub fn parse(value: &str) -> Result<Self, PhoneNumberError> {
        let digits = value.strip_prefix('+').ok_or(PhoneNumberError)?;
        let valid = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid { Ok(Self(value.to_owned())) } else { Err(PhoneNumberError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_are_accepted() {
        for ok in ["+56912345678", "+14155550100", "+12345678", "+123456789012345"] {
            assert_eq!(PhoneNumber::parse(ok).map(|p| p.0), Ok(ok.to_owned()), "{ok}");
        }
    }

    #[test]
    fn anything_else_is_rejected() {
        for bad in [
            "",
            "+",
            "56912345678",
            "+1234567",
            "+1234567890123456",
            "+056912345678",
            "+56 9 1234 5678",
            "+56-912345678",
            "+5691234567x",
            "++56912345678",
            "+５６９１２３４５６７８",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}

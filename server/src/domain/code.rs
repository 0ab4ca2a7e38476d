//! Pairing codes ("link with phone number"): eight characters that WhatsApp gives and the person
//! types on the phone.

/// A code as compared and stored: its letters and digits in upper case, so that `abcd-efgh`,
/// `ABCD EFGH` and `ABCDEFGH` are one code (WhatsApp's apps accept each).
pub fn code_key(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

/// A code as WhatsApp's apps show it: `ABCD-EFGH`. Anything not eight characters long is shown
/// as it is.
pub fn grouped_code(code: &str) -> String {
    let key = code_key(code);
    match key.len() {
        8 => format!("{}-{}", &key[..4], &key[4..]),
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_one_code_however_it_is_typed() {
        for typed in ["abcd-efgh", "ABCD EFGH", "ABCDEFGH", " AbCd-eFgH "] {
            assert_eq!(code_key(typed), "ABCDEFGH");
            assert_eq!(grouped_code(typed), "ABCD-EFGH");
        }
        assert_eq!(grouped_code("ABC"), "ABC");
    }
}

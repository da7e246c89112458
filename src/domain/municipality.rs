//! Municipality codes (全国地方公共団体コード, JIS X 0402).
//!
//! The six-digit code is five digits plus a check digit. Files disagree on which
//! form they carry (the GSI layout embeds the five-digit form), so everything is
//! stored and compared in the six-digit form.

use std::fmt;

/// A validated six-digit municipality code such as `172022` (Nanao).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct MunicipalityCode(String);

/// Why a string is not a municipality code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a municipality code has 5 or 6 digits (JIS X 0402), got {0:?}")]
    Shape(String),
    #[error("check digit of {0} should be {1}")]
    CheckDigit(String, char),
}

impl MunicipalityCode {
    /// Accepts the six-digit form (checked) or the five-digit form (check digit added).
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        let digits: String = raw.trim().chars().map(fold_digit).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(CodeError::Shape(raw.to_owned()));
        }
        match digits.len() {
            5 => {
                let check = check_digit(&digits);
                Ok(Self(format!("{digits}{check}")))
            }
            6 => {
                let expected = check_digit(&digits[..5]);
                if digits.ends_with(expected) {
                    Ok(Self(digits))
                } else {
                    Err(CodeError::CheckDigit(digits, expected))
                }
            }
            _ => Err(CodeError::Shape(raw.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MunicipalityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// JIS X 0402 check digit: weights 6..2, then the last digit of 11 − (sum mod 11).
fn check_digit(five: &str) -> char {
    let sum: u32 = five
        .chars()
        .zip([6, 5, 4, 3, 2])
        .map(|(c, w)| c.to_digit(10).unwrap_or(0) * w)
        .sum();
    char::from_digit((11 - sum % 11) % 10, 10).unwrap_or('0')
}

/// Full-width digits (０–９) to ASCII, as municipal spreadsheets often carry them.
pub fn fold_digit(c: char) -> char {
    match c {
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_checks_the_check_digit() {
        assert_eq!(MunicipalityCode::parse("17202").unwrap().as_str(), "172022");
        assert_eq!(MunicipalityCode::parse("01100").unwrap().as_str(), "011002");
        assert_eq!(
            MunicipalityCode::parse("131016").unwrap().as_str(),
            "131016"
        );
        assert_eq!(
            MunicipalityCode::parse("１７２０２２").unwrap().as_str(),
            "172022"
        );
        assert!(matches!(
            MunicipalityCode::parse("172023"),
            Err(CodeError::CheckDigit(_, '2'))
        ));
        assert!(MunicipalityCode::parse("17a02").is_err());
        assert!(MunicipalityCode::parse("1720").is_err());
    }
}

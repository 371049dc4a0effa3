//! The short numeric codes people read off a tablet and type in: enrolment (8 digits, for an
//! administrator) and pairing (6 digits, for the specialist).

use std::fmt;

/// A code of `N` decimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Code<const N: usize>(String);

pub type EnrolmentCode = Code<8>;
pub type PairingCode = Code<6>;

/// A typed code that is not `digits` digits once separators are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must have {digits} digits")]
pub struct InvalidCode {
    pub digits: usize,
}

impl<const N: usize> Code<N> {
    pub const DIGITS: usize = N;

    /// A typed code, with spaces and dashes between the digits allowed.
    pub fn parse(typed: &str) -> Result<Self, InvalidCode> {
        let code: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if code.len() == N && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(code))
        } else {
            Err(InvalidCode { digits: N })
        }
    }

    /// A fresh random code.
    pub fn random() -> Self {
        Self(
            (0..N)
                .map(|_| char::from(b'0' + rand::random_range(0..10u8)))
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Display for Code<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalise() {
        assert_eq!(PairingCode::parse(" 123-456 ").unwrap().as_str(), "123456");
        assert_eq!(PairingCode::parse("12345"), Err(InvalidCode { digits: 6 }));
        assert!(PairingCode::parse("12345a").is_err());
        assert!(
            PairingCode::parse("１２３４５６").is_err(),
            "full-width digits"
        );
        assert_eq!(
            EnrolmentCode::parse("1234 5678").unwrap().as_str(),
            "12345678"
        );
    }

    #[test]
    fn random_codes_have_their_digits() {
        let code = EnrolmentCode::random();
        assert_eq!(code.as_str().len(), 8);
        assert!(EnrolmentCode::parse(code.as_str()).is_ok());
    }
}

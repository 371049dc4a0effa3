//! Text people type, parsed once at the boundary: the API, the pages and the command line all
//! build these, so each limit has one home.

use std::fmt;

/// Why typed text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidText {
    #[error("is empty")]
    Empty,
    #[error("is shorter than {min} characters")]
    TooShort { min: usize },
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("contains a line break or another control character")]
    ControlCharacter,
    #[error("may hold only the letters a–z, digits and the characters . _ - @")]
    NotALogin,
}

/// One line of text: trimmed, `min..=max` characters, no control characters.
fn one_line(text: &str, min: usize, max: usize) -> Result<String, InvalidText> {
    let text = text.trim();
    if text.chars().any(char::is_control) {
        return Err(InvalidText::ControlCharacter);
    }
    let count = text.chars().count();
    if count == 0 && min > 0 {
        return Err(InvalidText::Empty);
    }
    if count < min {
        return Err(InvalidText::TooShort { min });
    }
    if count > max {
        return Err(InvalidText::TooLong { max });
    }
    Ok(text.to_string())
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;

            pub fn parse(text: &str) -> Result<Self, InvalidText> {
                one_line(text, $min, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// The name an account is shown under.
    DisplayName, 1, 200
);
text_newtype!(
    /// What a tablet is called: its desk or room.
    TabletName, 1, 100
);
text_newtype!(
    /// The name of a department, section, service, or an employee's full name.
    DirectoryName, 1, 300
);
text_newtype!(
    /// An employee's position; may be empty.
    Position, 0, 300
);

/// An account's login, normalised once: surrounding whitespace and control characters go,
/// letters are lower-cased. Logins are ASCII (`a–z 0–9 . _ - @`), so two accounts can never
/// look alike (a Cyrillic «а» beside a Latin "a"), and every spelling of one login — `" Admin"`,
/// `"admin\t"`, `"\nADMIN"` — is the same account for sign-in, throttling and creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Login(String);

impl Login {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 64;

    /// The normal form of what someone typed, for lookups and throttling: never refused, so
    /// that every attempt is counted under the account it aims at.
    pub fn normalise(typed: &str) -> String {
        typed
            .trim_matches(|c: char| c.is_whitespace() || c.is_control())
            .to_lowercase()
    }

    pub fn parse(typed: &str) -> Result<Self, InvalidText> {
        let login = Self::normalise(typed);
        if login.chars().any(char::is_control) {
            return Err(InvalidText::ControlCharacter);
        }
        let count = login.chars().count();
        if count < Self::MIN_CHARS {
            return Err(InvalidText::TooShort {
                min: Self::MIN_CHARS,
            });
        }
        if count > Self::MAX_CHARS {
            return Err(InvalidText::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if !login
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(&b))
        {
            return Err(InvalidText::NotALogin);
        }
        Ok(Self(login))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Shortest password a new account may have.
    pub const MIN_CHARS: usize = 10;
    /// Longest password accepted at all, in bytes: argon2 hashes any length, but a megabyte of
    /// password is only a way to make the server work.
    pub const MAX_BYTES: usize = 1000;

    /// A password for a new account or a reset.
    pub fn new_secret(text: &str) -> Result<Self, InvalidText> {
        if text.chars().count() < Self::MIN_CHARS {
            return Err(InvalidText::TooShort {
                min: Self::MIN_CHARS,
            });
        }
        Self::typed(text)
    }

    /// A password typed at sign-in: anything up to the length limit.
    pub fn typed(text: &str) -> Result<Self, InvalidText> {
        if text.len() > Self::MAX_BYTES {
            return Err(InvalidText::TooLong {
                max: Self::MAX_BYTES,
            });
        }
        Ok(Self(text.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<secret>)")
    }
}

/// A comment on a verdict: trimmed, several lines allowed, at most 2,000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comment(String);

impl Comment {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(text: &str) -> Result<Self, InvalidText> {
        let text = text.trim();
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(InvalidText::ControlCharacter);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(InvalidText::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_normalised_once() {
        for typed in [" login", "login\t", "\nlogin", "LOGIN", " LoGiN \r\n"] {
            assert_eq!(Login::parse(typed).unwrap().as_str(), "login", "{typed:?}");
            assert_eq!(Login::normalise(typed), "login", "{typed:?}");
        }
        assert_eq!(
            Login::parse("head.new@office-1").unwrap().as_str(),
            "head.new@office-1"
        );
    }

    #[test]
    fn logins_that_could_look_alike_are_refused() {
        // Cyrillic а, е, о in an otherwise Latin login; full-width letters; a zero-width space.
        for typed in [
            "аdmin",
            "admin\u{0435}",
            "ａｄｍｉｎ",
            "ad\u{200b}min",
            "ad min",
        ] {
            assert_eq!(
                Login::parse(typed),
                Err(InvalidText::NotALogin),
                "{typed:?}"
            );
        }
        assert_eq!(Login::parse("ab"), Err(InvalidText::TooShort { min: 3 }));
        assert_eq!(
            Login::parse(&"a".repeat(65)),
            Err(InvalidText::TooLong { max: 64 })
        );
        assert_eq!(Login::parse("ad\nmin"), Err(InvalidText::ControlCharacter));
    }

    #[test]
    fn names_are_one_trimmed_line() {
        assert_eq!(
            DisplayName::parse("  Иванова О. П. ").unwrap().as_str(),
            "Иванова О. П."
        );
        assert_eq!(DisplayName::parse("   "), Err(InvalidText::Empty));
        assert_eq!(
            DisplayName::parse("a\nb"),
            Err(InvalidText::ControlCharacter)
        );
        assert_eq!(
            TabletName::parse(&"я".repeat(101)),
            Err(InvalidText::TooLong { max: 100 })
        );
        assert!(TabletName::parse(&"я".repeat(100)).is_ok());
        assert!(DirectoryName::parse(&"я".repeat(300)).is_ok());
        assert!(DirectoryName::parse(&"я".repeat(301)).is_err());
        assert_eq!(Position::parse("  ").unwrap().as_str(), "");
    }

    #[test]
    fn passwords_have_a_floor_and_a_ceiling_and_never_print() {
        assert_eq!(
            Password::new_secret("short"),
            Err(InvalidText::TooShort { min: 10 })
        );
        assert!(Password::new_secret("long enough password").is_ok());
        assert!(Password::typed("x").is_ok());
        assert!(Password::typed(&"x".repeat(1001)).is_err());
        let secret = Password::typed("hunter2hunter2").unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn comments_keep_their_lines() {
        assert_eq!(Comment::parse(" a\nb ").unwrap().as_str(), "a\nb");
        assert!(Comment::parse(&"я".repeat(2001)).is_err());
        assert_eq!(
            Comment::parse("a\u{0}b"),
            Err(InvalidText::ControlCharacter)
        );
    }
}

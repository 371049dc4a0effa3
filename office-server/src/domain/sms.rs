//! «Результат готов» by SMS: what a visitor's number may be and how it is shown, what a case
//! number may be, when messages may go out, how long to wait before trying again, and the
//! message's text. No I/O: [`crate::ops::results`] applies these, [`crate::sms`] sends.

use std::fmt;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use phonenumber::country::Id;
use phonenumber::{Mode, Type};

/// Why a typed phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPhone {
    #[error("is not a phone number")]
    NotANumber,
    #[error("is not a mobile number of the office's country")]
    NotMobile,
}

/// A mobile number of the office's country, normalised to E.164 (`8 912 345-67-89` and
/// `+7 (912) 345-67-89` are both `+79123456789`). libphonenumber's metadata decides what is
/// a valid mobile number; an SMS cannot reach a landline.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
    masked: String,
}

impl PhoneNumber {
    /// The longest text accepted before parsing: a number with spaces, brackets and dashes.
    pub const MAX_CHARS: usize = 32;

    pub fn parse(text: &str, country: Id) -> Result<Self, InvalidPhone> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > Self::MAX_CHARS {
            return Err(InvalidPhone::NotANumber);
        }
        let number =
            phonenumber::parse(Some(country), text).map_err(|_| InvalidPhone::NotANumber)?;
        if !number.is_valid() {
            return Err(InvalidPhone::NotANumber);
        }
        if number.country().id() != Some(country)
            || !matches!(
                number.number_type(&phonenumber::metadata::DATABASE),
                Type::Mobile | Type::FixedLineOrMobile
            )
        {
            return Err(InvalidPhone::NotMobile);
        }
        // As people are shown it: the country and operator codes and the last two digits
        // (`+7 912 ***-**-67`), enough to recognise one's own number, not to learn someone's.
        let national = number.national().value().to_string();
        let operator: String = national.chars().take(3).collect();
        let last: String = national
            .chars()
            .skip(national.len().saturating_sub(2))
            .collect();
        Ok(Self {
            e164: number.format().mode(Mode::E164).to_string(),
            masked: format!("+{} {operator} ***-**-{last}", number.code().value()),
        })
    }

    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    pub fn masked(&self) -> String {
        self.masked.clone()
    }
}

/// Never the number itself in a log line.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

/// Why a typed case number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCase {
    #[error("is empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("may hold only letters, digits, spaces and the characters - / . № #")]
    BadCharacter,
}

/// The office's case (application) number, as its case-management system writes it
/// (`12-345/2026`): trimmed, letters, digits, spaces and `- / . № #`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseNumber(String);

impl CaseNumber {
    pub const MAX_CHARS: usize = 40;

    pub fn parse(text: &str) -> Result<Self, InvalidCase> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InvalidCase::Empty);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(InvalidCase::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if !text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '/' | '.' | '№' | '#'))
        {
            return Err(InvalidCase::BadCharacter);
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hours of the office's day in which messages may go out: from `from` until `until`,
/// across midnight when `until` is earlier than `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendingHours {
    pub from: Time,
    pub until: Time,
}

impl SendingHours {
    pub fn allow(&self, zone: &TimeZone, now: Timestamp) -> bool {
        let time = now.to_zoned_datetime(zone.clone()).time();
        if self.from <= self.until {
            self.from <= time && time < self.until
        } else {
            time >= self.from || time < self.until
        }
    }
}

/// How long to wait before the next try after `attempts` failed ones: doubling from `first`,
/// at most `max`.
pub fn retry_delay(attempts: u32, first: SignedDuration, max: SignedDuration) -> SignedDuration {
    let doublings = attempts.saturating_sub(1).min(30);
    let factor = 1i32 << doublings;
    first.checked_mul(factor).unwrap_or(max).min(max)
}

/// The message: the template with `{case}` (the case number, or nothing) and `{office}`
/// filled in. The template is the office's own configuration; what a visitor typed never
/// reaches it.
pub fn message_text(template: &str, case: Option<&CaseNumber>, office: &str) -> String {
    let case = case.map(CaseNumber::as_str).unwrap_or("");
    let text = template.replace("{case}", case).replace("{office}", office);
    // An empty `{case}` must not leave a double space or a space before punctuation.
    let mut tidy = String::with_capacity(text.len());
    for c in text.trim().chars() {
        if c == ' ' && tidy.ends_with(' ') {
            continue;
        }
        if matches!(c, '.' | ',' | '!') && tidy.ends_with(' ') {
            tidy.pop();
        }
        tidy.push(c);
    }
    tidy
}

/// What the server itself records as a message's problem (the gateway's own words are kept
/// as they are); the pages show each in the catalogue's words.
pub mod problem {
    /// The visitor's number was deleted or ran out before the message left.
    pub const NO_NUMBER: &str = "no_number";
    /// The server stopped while the gateway was being asked.
    pub const INTERRUPTED: &str = "interrupted";
    /// The gateway gave no answer within the server's own limit.
    pub const NO_ANSWER: &str = "no_answer";
}

/// A delivery report's type, as Kannel numbers them (other gateways' reports are mapped to
/// these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// 1: on the phone.
    Delivered,
    /// 2: the phone could not be reached in time, or refused it.
    Undelivered,
    /// 4: queued at the operator.
    Queued,
    /// 8: accepted by the operator.
    Accepted,
    /// 16: rejected by the operator.
    Rejected,
    Other,
}

impl ReportKind {
    pub fn of_kannel_type(status: u32) -> Self {
        match status {
            1 => Self::Delivered,
            2 => Self::Undelivered,
            4 => Self::Queued,
            8 => Self::Accepted,
            16 => Self::Rejected,
            _ => Self::Other,
        }
    }

    pub fn meaning(self) -> ReportMeaning {
        match self {
            Self::Delivered => ReportMeaning::Delivered,
            Self::Undelivered | Self::Rejected => ReportMeaning::Failed,
            Self::Queued | Self::Accepted => ReportMeaning::Underway,
            Self::Other => ReportMeaning::Unknown,
        }
    }
}

/// What a delivery report says about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportMeaning {
    /// On the phone: the message is done and the number is deleted.
    Delivered,
    /// The operator or the phone refused it: a person decides.
    Failed,
    /// Accepted or queued by the operator: it was sent, the outcome is not known yet.
    Underway,
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru(text: &str) -> Result<String, InvalidPhone> {
        PhoneNumber::parse(text, Id::RU).map(|p| p.as_e164().to_string())
    }

    #[test]
    fn numbers_are_normalised() {
        for typed in [
            "8 912 345-67-89",
            "+7 (912) 345-67-89",
            "89123456789",
            "+79123456789",
            " 8(912)3456789 ",
            "9123456789",
        ] {
            assert_eq!(ru(typed).as_deref(), Ok("+79123456789"), "{typed}");
        }
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert_eq!(ru(""), Err(InvalidPhone::NotANumber));
        assert_eq!(ru("привет"), Err(InvalidPhone::NotANumber));
        assert_eq!(ru("8 912 345"), Err(InvalidPhone::NotANumber));
        assert_eq!(ru(&"9".repeat(40)), Err(InvalidPhone::NotANumber));
        // A Moscow landline, a Kazakh mobile (also +7), a German mobile.
        assert_eq!(ru("+7 495 123-45-67"), Err(InvalidPhone::NotMobile));
        assert_eq!(ru("+7 701 123-45-67"), Err(InvalidPhone::NotMobile));
        assert_eq!(ru("+49 151 23456789"), Err(InvalidPhone::NotMobile));
    }

    #[test]
    fn numbers_are_shown_masked() {
        let number = PhoneNumber::parse("8 912 345-67-89", Id::RU).unwrap();
        assert_eq!(number.masked(), "+7 912 ***-**-89");
        let number = PhoneNumber::parse("+7 (999) 111-22-33", Id::RU).unwrap();
        assert_eq!(number.masked(), "+7 999 ***-**-33");
        assert!(!format!("{number:?}").contains("34567"));
    }

    #[test]
    fn case_numbers() {
        assert_eq!(
            CaseNumber::parse(" 12-345/2026 ").unwrap().as_str(),
            "12-345/2026"
        );
        assert_eq!(CaseNumber::parse("№ МФЦ-7").unwrap().as_str(), "№ МФЦ-7");
        assert_eq!(CaseNumber::parse("  "), Err(InvalidCase::Empty));
        assert_eq!(CaseNumber::parse("a<b"), Err(InvalidCase::BadCharacter));
        assert_eq!(CaseNumber::parse("a\nb"), Err(InvalidCase::BadCharacter));
        assert!(matches!(
            CaseNumber::parse(&"1".repeat(41)),
            Err(InvalidCase::TooLong { max: 40 })
        ));
    }

    #[test]
    fn sending_hours_within_a_day_and_across_midnight() {
        let zone = TimeZone::get("Europe/Moscow").unwrap();
        let at = |hh: i8, mm: i8| {
            jiff::civil::date(2026, 12, 3)
                .at(hh, mm, 0, 0)
                .to_zoned_datetime(zone.clone())
                .unwrap()
                .timestamp()
        };
        let day = SendingHours {
            from: Time::constant(9, 0, 0, 0),
            until: Time::constant(21, 0, 0, 0),
        };
        assert!(!day.allow(&zone, at(8, 59)));
        assert!(day.allow(&zone, at(9, 0)));
        assert!(day.allow(&zone, at(20, 59)));
        assert!(!day.allow(&zone, at(21, 0)));
        let night = SendingHours {
            from: Time::constant(22, 0, 0, 0),
            until: Time::constant(2, 0, 0, 0),
        };
        assert!(night.allow(&zone, at(23, 0)));
        assert!(night.allow(&zone, at(1, 59)));
        assert!(!night.allow(&zone, at(2, 0)));
        assert!(!night.allow(&zone, at(12, 0)));
    }

    #[test]
    fn retries_back_off_up_to_the_cap() {
        let s = SignedDuration::from_secs;
        assert_eq!(retry_delay(1, s(30), s(3600)), s(30));
        assert_eq!(retry_delay(2, s(30), s(3600)), s(60));
        assert_eq!(retry_delay(4, s(30), s(3600)), s(240));
        assert_eq!(retry_delay(10, s(30), s(3600)), s(3600));
        assert_eq!(retry_delay(u32::MAX, s(30), s(3600)), s(3600));
    }

    #[test]
    fn the_text_is_the_template_filled_in() {
        let case = CaseNumber::parse("12-345").unwrap();
        let template = "Результат по обращению {case} готов. {office}";
        assert_eq!(
            message_text(template, Some(&case), "МФЦ Центральный"),
            "Результат по обращению 12-345 готов. МФЦ Центральный"
        );
        assert_eq!(
            message_text(template, None, "МФЦ"),
            "Результат по обращению готов. МФЦ"
        );
    }

    #[test]
    fn report_types() {
        let meaning = |status| ReportKind::of_kannel_type(status).meaning();
        assert_eq!(meaning(1), ReportMeaning::Delivered);
        assert_eq!(meaning(2), ReportMeaning::Failed);
        assert_eq!(meaning(16), ReportMeaning::Failed);
        assert_eq!(meaning(4), ReportMeaning::Underway);
        assert_eq!(meaning(8), ReportMeaning::Underway);
        assert_eq!(meaning(99), ReportMeaning::Unknown);
    }
}

//! The rules of a visitor's feedback: until when a link may be used, and what a visitor's
//! comment may hold.

use jiff::{SignedDuration, Timestamp};

use super::InvalidText;
use crate::storage::FeedbackLinkState;

/// Until when the link may be submitted: `valid` after its visit's corrected end once the visit
/// has synced, else `valid` after the link was first opened. The tablet's clock alone never
/// decides: a synced visit's end is corrected by the offset the server measured.
pub fn submittable_until(link: &FeedbackLinkState, valid: SignedDuration) -> Timestamp {
    let from = link
        .visit
        .map_or(link.first_opened_at, |visit| visit.corrected_end);
    from.saturating_add(valid).unwrap_or(Timestamp::MAX)
}

/// A visitor's comment: trimmed; line breaks kept; control characters refused; characters that
/// are invisible or turn the text's direction (zero-width spaces and joiners, bidirectional
/// overrides and isolates, the byte-order mark) removed, so that a comment reads on every page
/// and sheet as what it is. Empty: no comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorComment(String);

impl VisitorComment {
    pub fn parse(text: &str, max_chars: usize) -> Result<Option<Self>, InvalidText> {
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(InvalidText::ControlCharacter);
        }
        let visible: String = text.chars().filter(|&c| !is_invisible_format(c)).collect();
        let text = visible.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > max_chars {
            return Err(InvalidText::TooLong { max: max_chars });
        }
        Ok(Some(Self(text.replace("\r\n", "\n"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Unicode format characters that hide text or reorder it.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LinkedVisit;

    #[test]
    fn invisible_and_direction_characters_are_removed() {
        let parsed = VisitorComment::parse("  a\u{202E}b\u{200B}c\u{2066}d\u{FEFF} ", 100)
            .expect("valid")
            .expect("not empty");
        assert_eq!(parsed.as_str(), "abcd");
        assert_eq!(VisitorComment::parse("\u{200B} \u{200D}", 100), Ok(None));
        assert_eq!(
            VisitorComment::parse("a\u{7}b", 100),
            Err(InvalidText::ControlCharacter)
        );
        assert_eq!(
            VisitorComment::parse("абв", 2),
            Err(InvalidText::TooLong { max: 2 })
        );
        assert_eq!(
            VisitorComment::parse("строка 1\r\nстрока 2", 100)
                .expect("valid")
                .expect("not empty")
                .as_str(),
            "строка 1\nстрока 2"
        );
    }

    #[test]
    fn the_window_starts_at_the_synced_end_or_else_the_first_opening() {
        let day = SignedDuration::from_hours(24);
        let opened: Timestamp = "2026-12-01T10:00:00Z".parse().expect("instant");
        let ended: Timestamp = "2026-11-28T10:00:00Z".parse().expect("instant");
        let mut link = FeedbackLinkState {
            visit: None,
            first_opened_at: opened,
            feedback: None,
        };
        assert_eq!(submittable_until(&link, day * 7), opened + day * 7);
        link.visit = Some(LinkedVisit {
            tablet_id: 1,
            corrected_end: ended,
        });
        assert_eq!(submittable_until(&link, day * 7), ended + day * 7);
    }
}

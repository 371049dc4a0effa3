//! The alert rule: an employee's share of Плохо in a sliding window.

use jiff::Timestamp;

use crate::storage::AlertRule;

/// The window the rule looks at: the `rule.window` that ends at `end` (start exclusive, end
/// inclusive).
pub fn window(end: Timestamp, rule: &AlertRule) -> (Timestamp, Timestamp) {
    let start = end.checked_sub(rule.window).unwrap_or(Timestamp::MIN);
    (start, end)
}

/// Whether `bad` Плохо among `rated` rated visits in the window raise an alert.
pub fn is_due(rated: i64, bad: i64, rule: &AlertRule) -> bool {
    rated >= rule.min_ratings.max(1)
        && (bad as f64) * 100.0 >= rule.bad_share_percent * rated as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> AlertRule {
        AlertRule {
            window: jiff::SignedDuration::from_mins(15),
            min_ratings: 4,
            bad_share_percent: 50.0,
        }
    }

    #[test]
    fn half_of_at_least_four_is_due() {
        assert!(is_due(4, 2, &rule()));
        assert!(is_due(10, 5, &rule()));
        assert!(!is_due(3, 3, &rule()), "too few ratings");
        assert!(!is_due(10, 4, &rule()), "under half");
    }

    #[test]
    fn a_window_ends_where_asked() {
        let end: Timestamp = "2026-11-24T06:00:00Z".parse().unwrap();
        let (start, until) = window(end, &rule());
        assert_eq!(until, end);
        assert_eq!(end.duration_since(start).as_mins(), 15);
    }
}

//! The office's working time, in the office's time zone: its production calendar (which days
//! it works), its working hours, and the deadlines counted in working days.

use std::collections::BTreeSet;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::config::{CalendarSettings, WorkingHours};

/// How far a walk through the calendar looks for working days before it gives up; the
/// configuration cannot make a year without them, so this only guards against a loop.
const LONGEST_WALK_DAYS: u32 = 3660;

/// The production calendar: Monday to Friday are working days, Saturday and Sunday are not,
/// except the listed holidays (days off whatever their weekday) and the listed working
/// weekends (a Saturday or Sunday worked in exchange for a day off elsewhere).
#[derive(Debug, Clone)]
pub struct Calendar {
    zone: TimeZone,
    holidays: BTreeSet<Date>,
    working_weekends: BTreeSet<Date>,
}

impl Calendar {
    pub fn new(zone: TimeZone, settings: &CalendarSettings) -> Self {
        Self {
            zone,
            holidays: settings.holidays.iter().copied().collect(),
            working_weekends: settings.working_weekends.iter().copied().collect(),
        }
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        if self.holidays.contains(&date) {
            return false;
        }
        let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
        !weekend || self.working_weekends.contains(&date)
    }

    /// Whether the office is open at `now`: a working day, within the working hours.
    pub fn is_open(&self, now: Timestamp, hours: &WorkingHours) -> bool {
        let local = self.zone.to_datetime(now);
        self.is_working_day(local.date()) && local.time() >= hours.start && local.time() < hours.end
    }

    /// When something that arrived at `arrived` is due, given `days` working days: the end of
    /// the `days`-th working day after the office-local day it arrived on (that day itself
    /// does not count, however early it came).
    pub fn due(&self, arrived: Timestamp, days: u32) -> Timestamp {
        let mut date = self.zone.to_datetime(arrived).date();
        let mut left = days;
        for _ in 0..LONGEST_WALK_DAYS {
            let Ok(next) = date.checked_add(1.day()) else {
                break;
            };
            date = next;
            if self.is_working_day(date) {
                left = left.saturating_sub(1);
                if left == 0 {
                    return self.start_of_day_after(date).unwrap_or(Timestamp::MAX);
                }
            }
        }
        Timestamp::MAX
    }

    /// Everything that arrived before this instant is past its deadline of `days` working
    /// days at `now`: the start of the `days`-th working day counting back from yesterday.
    /// (Arrived on day d, due at the end of the `days`-th working day after d: that has
    /// passed exactly when at least `days` working days lie between d and yesterday.)
    pub fn overdue_before(&self, now: Timestamp, days: u32) -> Timestamp {
        let mut date = self.zone.to_datetime(now).date();
        let mut left = days;
        for _ in 0..LONGEST_WALK_DAYS {
            let Ok(previous) = date.checked_sub(1.day()) else {
                break;
            };
            date = previous;
            if self.is_working_day(date) {
                left = left.saturating_sub(1);
                if left == 0 {
                    return self.start_of_day(date).unwrap_or(Timestamp::MIN);
                }
            }
        }
        Timestamp::MIN
    }

    fn start_of_day(&self, date: Date) -> Option<Timestamp> {
        // Midnight, or the first moment of the day where a clock change skips midnight.
        date.to_datetime(jiff::civil::Time::midnight())
            .to_zoned_datetime(self.zone.clone())
            .and_then(|zoned| zoned.start_of_day())
            .ok()
            .map(|zoned| zoned.timestamp())
    }

    fn start_of_day_after(&self, date: Date) -> Option<Timestamp> {
        self.start_of_day(date.checked_add(1.day()).ok()?)
    }
}

/// When a pairing made at `now` ends: at the close of today's working hours, or — for a pairing
/// made after hours — at the end of the office-local day.
pub fn pairing_ends_at(now: Timestamp, zone: &TimeZone, hours: &WorkingHours) -> Timestamp {
    let local = now.to_zoned_datetime(zone.clone());
    let close = local
        .date()
        .to_datetime(hours.end)
        .to_zoned_datetime(zone.clone())
        .map(|zoned| zoned.timestamp());
    match close {
        Ok(close) if close > now => close,
        _ => local
            .tomorrow()
            .and_then(|tomorrow| tomorrow.start_of_day())
            .map(|zoned| zoned.timestamp())
            // Only at the very end of jiff's calendar; a day from now is as good there.
            .unwrap_or_else(|_| {
                now.saturating_add(jiff::SignedDuration::from_hours(24))
                    .unwrap_or(now)
            }),
    }
}

/// The first instant after `now` at `time` of day in `zone`: today's, or tomorrow's.
pub fn next_time_of_day(now: Timestamp, time: jiff::civil::Time, zone: &TimeZone) -> Timestamp {
    let today = zone.to_datetime(now).date();
    let at = |day: jiff::civil::Date| {
        day.to_datetime(time)
            .to_zoned_datetime(zone.clone())
            .map(|z| z.timestamp())
    };
    match at(today) {
        Ok(due) if due > now => due,
        _ => today
            .tomorrow()
            .and_then(at)
            .unwrap_or(now + jiff::SignedDuration::from_hours(24)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Time, date};
    use proptest::prelude::*;

    /// Yekaterinburg in the first days of 2027, as a production calendar would have it:
    /// the New Year holidays up to Friday 8 January, and Saturday 9 January worked instead.
    fn calendar() -> Calendar {
        let settings = CalendarSettings {
            holidays: (1..=8).map(|day| date(2027, 1, day)).collect(),
            working_weekends: vec![date(2027, 1, 9)],
        };
        Calendar::new(TimeZone::get("Asia/Yekaterinburg").unwrap(), &settings)
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_time_of_day_is_due_today_until_it_passes_then_tomorrow() {
        let zone = TimeZone::get("Asia/Yekaterinburg").unwrap();
        let local = |s: &str| {
            s.parse::<jiff::civil::DateTime>()
                .unwrap()
                .to_zoned_datetime(zone.clone())
                .unwrap()
                .timestamp()
        };
        let at = jiff::civil::time(2, 30, 0, 0);
        assert_eq!(
            next_time_of_day(local("2026-12-06T01:00"), at, &zone),
            local("2026-12-06T02:30")
        );
        assert_eq!(
            next_time_of_day(local("2026-12-06T02:30"), at, &zone),
            local("2026-12-07T02:30")
        );
        assert_eq!(
            next_time_of_day(local("2026-12-31T23:59"), at, &zone),
            local("2027-01-01T02:30")
        );
    }

    #[test]
    fn weekends_holidays_and_a_worked_saturday() {
        let calendar = calendar();
        assert!(calendar.is_working_day(date(2026, 12, 31))); // Thursday
        assert!(!calendar.is_working_day(date(2027, 1, 4))); // Monday, a holiday
        assert!(calendar.is_working_day(date(2027, 1, 9))); // Saturday, worked
        assert!(!calendar.is_working_day(date(2027, 1, 10))); // Sunday
        assert!(!calendar.is_working_day(date(2027, 1, 16))); // Saturday
    }

    #[test]
    fn a_deadline_counts_working_days_in_the_office_zone() {
        let calendar = calendar();
        // Wednesday 30 December, 23:30 in Yekaterinburg (18:30 UTC): two working days are
        // Thursday the 31st and Saturday the 9th, so it is due at the end of the 9th.
        let due = calendar.due(at("2026-12-30T18:30:00Z"), 2);
        assert_eq!(due, at("2027-01-09T19:00:00Z"));
        // Half an hour later it is already Thursday the 31st in Yekaterinburg (though still
        // the 30th in UTC): the 9th and Monday the 11th.
        let due = calendar.due(at("2026-12-30T19:30:00Z"), 2);
        assert_eq!(due, at("2027-01-11T19:00:00Z"));
        // Over an ordinary weekend: Friday 15 January → Monday 18th, Tuesday 19th.
        let due = calendar.due(at("2027-01-15T05:00:00Z"), 2);
        assert_eq!(due, at("2027-01-19T19:00:00Z"));
    }

    #[test]
    fn overdue_is_what_arrived_before_the_cutoff() {
        let calendar = calendar();
        // Monday 11 January, 10:00 local: yesterday back two working days is the 9th, then
        // the 31st. What arrived before the 31st had its two days (31st, 9th).
        let cutoff = calendar.overdue_before(at("2027-01-11T05:00:00Z"), 2);
        assert_eq!(cutoff, at("2026-12-30T19:00:00Z"));
    }

    proptest! {
        /// The two ways of asking agree: past its deadline exactly when it arrived before
        /// the cutoff, for any arrival, any moment after it and any number of days.
        #[test]
        fn overdue_agrees_with_the_deadline(
            arrived in 1_798_000_000i64..1_800_000_000,
            later in 0i64..40 * 86_400,
            days in 1u32..12,
        ) {
            let calendar = calendar();
            let arrived = Timestamp::from_second(arrived).unwrap();
            let now = Timestamp::from_second(arrived.as_second() + later).unwrap();
            let past_due = calendar.due(arrived, days) <= now;
            let before_cutoff = arrived < calendar.overdue_before(now, days);
            prop_assert_eq!(past_due, before_cutoff);
        }
    }

    fn hours() -> WorkingHours {
        WorkingHours {
            start: Time::constant(8, 0, 0, 0),
            end: Time::constant(18, 0, 0, 0),
        }
    }

    #[test]
    fn ends_at_close_of_business_in_office_time() {
        let zone = TimeZone::get("Asia/Yekaterinburg").unwrap();
        // 10:00 in Yekaterinburg (UTC+5) is 05:00 UTC; the day closes at 18:00 local = 13:00 UTC.
        let now: Timestamp = "2026-11-24T05:00:00Z".parse().unwrap();
        let end = pairing_ends_at(now, &zone, &hours());
        assert_eq!(end, "2026-11-24T13:00:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn after_hours_ends_at_local_midnight() {
        let zone = TimeZone::get("Asia/Yekaterinburg").unwrap();
        // 20:30 local.
        let now: Timestamp = "2026-11-24T15:30:00Z".parse().unwrap();
        let end = pairing_ends_at(now, &zone, &hours());
        assert_eq!(end, "2026-11-24T19:00:00Z".parse::<Timestamp>().unwrap());
    }
}

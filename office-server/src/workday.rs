//! The office's working day, in the office's time zone.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::WorkingHours;

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

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::Time;

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

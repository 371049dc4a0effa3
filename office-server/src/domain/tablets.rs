//! When a tablet counts as silent.

use jiff::{SignedDuration, Timestamp};

use crate::config::WorkingHours;
use crate::storage::TabletInfo;
use crate::workday::Calendar;

/// Tablets not heard from for `minutes` while the office is open (a working day of the
/// calendar, within the working hours). Revoked tablets are left out; one never heard from
/// counts from its enrolment.
pub fn silent_tablets<'a>(
    tablets: &'a [TabletInfo],
    now: Timestamp,
    calendar: &Calendar,
    hours: &WorkingHours,
    minutes: u32,
) -> Vec<&'a TabletInfo> {
    if !calendar.is_open(now, hours) {
        return Vec::new();
    }
    let limit = SignedDuration::from_mins(i64::from(minutes));
    tablets
        .iter()
        .filter(|tablet| tablet.revoked_at.is_none())
        .filter(|tablet| {
            let heard = tablet.last_seen_at.unwrap_or(tablet.enrolled_at);
            now.duration_since(heard) > limit
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CalendarSettings;
    use jiff::civil::{Time, date};
    use jiff::tz::TimeZone;

    fn tablet(id: i64, last_seen: Option<&str>, revoked: bool) -> TabletInfo {
        TabletInfo {
            id,
            name: format!("t{id}"),
            device_description: String::new(),
            enrolled_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            revoked_at: revoked.then(|| "2026-11-02T00:00:00Z".parse().unwrap()),
            last_seen_at: last_seen.map(|s| s.parse().unwrap()),
            app_version: None,
            queue_length: None,
            recordings_pending: None,
            free_storage_bytes: None,
            microphone: None,
            clock_offset_ms: None,
        }
    }

    #[test]
    fn a_tablet_silent_in_working_hours_is_reported() {
        let zone = TimeZone::get("Asia/Yekaterinburg").unwrap();
        // Wednesday 25 November a holiday, Saturday 28 November worked.
        let calendar = Calendar::new(
            zone,
            &CalendarSettings {
                holidays: vec![date(2026, 11, 25)],
                working_weekends: vec![date(2026, 11, 28)],
            },
        );
        let hours = WorkingHours {
            start: Time::constant(8, 0, 0, 0),
            end: Time::constant(18, 0, 0, 0),
        };
        let tablets = vec![
            tablet(1, Some("2026-11-24T05:50:00Z"), false), // 10:50 local: 10 min ago
            tablet(2, Some("2026-11-24T04:00:00Z"), false), // 09:00 local: 2 h ago
            tablet(3, Some("2026-11-24T04:00:00Z"), true),  // revoked
            tablet(4, None, false),                         // never heard from
        ];
        // Tuesday 11:00 in Yekaterinburg.
        let now: Timestamp = "2026-11-24T06:00:00Z".parse().unwrap();
        let silent: Vec<i64> = silent_tablets(&tablets, now, &calendar, &hours, 30)
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(silent, vec![2, 4]);
        // 20:00 local: the office is closed, nobody is expected to sync.
        let evening: Timestamp = "2026-11-24T15:00:00Z".parse().unwrap();
        assert!(silent_tablets(&tablets, evening, &calendar, &hours, 30).is_empty());
        // A holiday: nobody is expected either.
        let holiday: Timestamp = "2026-11-25T06:00:00Z".parse().unwrap();
        assert!(silent_tablets(&tablets, holiday, &calendar, &hours, 30).is_empty());
        // A worked Saturday is a working day (all but the revoked one have been silent since
        // Tuesday); an ordinary Sunday is not.
        let saturday: Timestamp = "2026-11-28T06:00:00Z".parse().unwrap();
        assert_eq!(
            silent_tablets(&tablets, saturday, &calendar, &hours, 30).len(),
            3
        );
        let sunday: Timestamp = "2026-11-29T06:00:00Z".parse().unwrap();
        assert!(silent_tablets(&tablets, sunday, &calendar, &hours, 30).is_empty());
    }
}

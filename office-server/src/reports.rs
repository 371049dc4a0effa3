//! The office calendar of the reports: which day, week, month, quarter and year a visit falls
//! in, and the period columns of every dashboard table.
//!
//! A visit is placed by its end instant on the tablet's clock corrected by the clock offset the
//! server measured at the sync that delivered it (`ended_at - clock_offset_ms`), read in the
//! office's time zone. The server never trusts the tablet's clock as it is, and the end is when
//! the visitor rated the visit ("Дата оценки").

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// A level of the report totals, as stored in `report_totals.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Day = 0,
    Week = 1,
    Month = 2,
    Quarter = 3,
    Year = 4,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Day,
        Level::Week,
        Level::Month,
        Level::Quarter,
        Level::Year,
    ];

    pub fn code(self) -> i64 {
        self as i64
    }
}

/// The key of each level for one office-local date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodKeys {
    /// YYYYMMDD.
    pub day: i64,
    /// YYYYMMDD of the week's Monday.
    pub week: i64,
    /// YYYYMM.
    pub month: i64,
    /// YYYY * 10 + quarter.
    pub quarter: i64,
    /// YYYY.
    pub year: i64,
}

pub fn day_key(date: Date) -> i64 {
    i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day())
}

/// The date a day key stands for.
pub fn date_of_key(key: i64) -> Option<Date> {
    let year = i16::try_from(key / 10_000).ok()?;
    let month = i8::try_from(key / 100 % 100).ok()?;
    let day = i8::try_from(key % 100).ok()?;
    Date::new(year, month, day).ok()
}

/// The Monday of the ISO week `date` is in.
pub fn monday_of(date: Date) -> Date {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(Span::new().days(back)).unwrap_or(date)
}

pub fn quarter_of(date: Date) -> i8 {
    (date.month() - 1) / 3 + 1
}

impl PeriodKeys {
    pub fn of(date: Date) -> Self {
        let year = i64::from(date.year());
        Self {
            day: day_key(date),
            week: day_key(monday_of(date)),
            month: year * 100 + i64::from(date.month()),
            quarter: year * 10 + i64::from(quarter_of(date)),
            year,
        }
    }

    /// The keys of the office-local date of `instant`.
    pub fn at(instant: Timestamp, zone: &TimeZone) -> Self {
        Self::of(zone.to_datetime(instant).date())
    }

    pub fn key(&self, level: Level) -> i64 {
        match level {
            Level::Day => self.day,
            Level::Week => self.week,
            Level::Month => self.month,
            Level::Quarter => self.quarter,
            Level::Year => self.year,
        }
    }
}

/// The instant that places a visit in the calendar.
pub fn visit_instant_ms(ended_at_ms: i64, clock_offset_ms: i64) -> i64 {
    ended_at_ms.saturating_sub(clock_offset_ms)
}

/// A period column of the dashboard: За день | За неделю | За месяц | За квартал | За год |
/// За все время.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Week,
    Month,
    Quarter,
    Year,
    AllTime,
}

impl Period {
    pub const ALL: [Period; 6] = [
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Quarter,
        Period::Year,
        Period::AllTime,
    ];

    /// Which totals to sum for this period of the calendar that contains `date`: one period at
    /// its own level, or every year for all time.
    pub fn span(self, date: Date) -> PeriodSpan {
        let keys = PeriodKeys::of(date);
        let one = |level: Level| PeriodSpan {
            level,
            from: keys.key(level),
            to: keys.key(level),
        };
        match self {
            Period::Day => one(Level::Day),
            Period::Week => one(Level::Week),
            Period::Month => one(Level::Month),
            Period::Quarter => one(Level::Quarter),
            Period::Year => one(Level::Year),
            Period::AllTime => PeriodSpan {
                level: Level::Year,
                from: i64::MIN,
                to: i64::MAX,
            },
        }
    }

    /// The first and last date of this period around `date` (`None` for all time).
    pub fn dates(self, date: Date) -> Option<(Date, Date)> {
        match self {
            Period::Day => Some((date, date)),
            Period::Week => {
                let monday = monday_of(date);
                Some((monday, monday.checked_add(Span::new().days(6)).ok()?))
            }
            Period::Month => Some((date.first_of_month(), date.last_of_month())),
            Period::Quarter => {
                let first_month = (quarter_of(date) - 1) * 3 + 1;
                let first = Date::new(date.year(), first_month, 1).ok()?;
                let last = Date::new(date.year(), first_month + 2, 1)
                    .ok()?
                    .last_of_month();
                Some((first, last))
            }
            Period::Year => Some((
                Date::new(date.year(), 1, 1).ok()?,
                Date::new(date.year(), 12, 31).ok()?,
            )),
            Period::AllTime => None,
        }
    }

    /// A short machine name, used in URLs and tests.
    pub fn slug(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
            Period::AllTime => "all",
        }
    }
}

/// Totals of one level between two keys, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodSpan {
    pub level: Level,
    pub from: i64,
    pub to: i64,
}

/// Counts of visits and of each rating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub visits: i64,
    pub good: i64,
    pub medium: i64,
    pub bad: i64,
}

impl Tally {
    pub fn rated(&self) -> i64 {
        self.good + self.medium + self.bad
    }

    pub fn unrated(&self) -> i64 {
        self.visits - self.rated()
    }

    pub fn score_sum(&self) -> i64 {
        3 * self.good + 2 * self.medium + self.bad
    }

    /// The mean score (Хорошо 3, Средне 2, Плохо 1); `None` without ratings.
    pub fn average(&self) -> Option<f64> {
        let rated = self.rated();
        (rated > 0).then(|| self.score_sum() as f64 / rated as f64)
    }

    /// The average rounded to the 4 decimals the dashboard shows.
    pub fn average_4(&self) -> Option<f64> {
        self.average().map(round4)
    }

    /// Satisfaction in percent: Хорошо counts 100 %, Средне 50 %, Плохо 0 %.
    pub fn satisfaction(&self) -> Option<f64> {
        let rated = self.rated();
        (rated > 0).then(|| (100 * self.good + 50 * self.medium) as f64 / rated as f64)
    }

    /// Share of Плохо among rated visits, in percent.
    pub fn bad_share(&self) -> Option<f64> {
        let rated = self.rated();
        (rated > 0).then(|| 100.0 * self.bad as f64 / rated as f64)
    }

    pub fn add(&mut self, other: &Tally) {
        self.visits += other.visits;
        self.good += other.good;
        self.medium += other.medium;
        self.bad += other.bad;
    }

    /// One visit with this rating score (3, 2, 1) or none.
    pub fn one(score: Option<u8>) -> Self {
        Tally {
            visits: 1,
            good: i64::from(score == Some(3)),
            medium: i64::from(score == Some(2)),
            bad: i64::from(score == Some(1)),
        }
    }
}

pub fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// `2.0625`: four decimals, as the seed's screens show averages.
pub fn format_average(value: f64) -> String {
    format!("{value:.4}")
}

/// `87.5 %`: one decimal at most.
pub fn format_percent(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}\u{a0}%")
    } else {
        format!("{rounded:.1}\u{a0}%").replace('.', ",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn keys_of_a_date() {
        let keys = PeriodKeys::of(date("2026-11-24"));
        assert_eq!(keys.day, 20261124);
        assert_eq!(keys.week, 20261123); // a Tuesday; its Monday
        assert_eq!(keys.month, 202611);
        assert_eq!(keys.quarter, 20264);
        assert_eq!(keys.year, 2026);
        // A Sunday belongs to the week that began six days earlier.
        assert_eq!(PeriodKeys::of(date("2026-03-29")).week, 20260323);
        // A week may straddle two years; its key is its Monday.
        assert_eq!(PeriodKeys::of(date("2027-01-01")).week, 20261228);
        assert_eq!(date_of_key(20261228), Some(date("2026-12-28")));
        assert_eq!(date_of_key(20261332), None);
    }

    #[test]
    fn late_evening_and_just_after_midnight_in_office_time() {
        let zone = TimeZone::get("Asia/Yekaterinburg").unwrap();
        // 23:30 on 31 December in Yekaterinburg (UTC+5) is 18:30 UTC.
        let evening: Timestamp = "2025-12-31T18:30:00Z".parse().unwrap();
        // 00:30 on 1 January is 19:30 UTC on 31 December.
        let night: Timestamp = "2025-12-31T19:30:00Z".parse().unwrap();
        let a = PeriodKeys::at(evening, &zone);
        let b = PeriodKeys::at(night, &zone);
        assert_eq!((a.day, b.day), (20251231, 20260101));
        assert_eq!((a.month, b.month), (202512, 202601));
        assert_eq!((a.quarter, b.quarter), (20254, 20261));
        assert_eq!((a.year, b.year), (2025, 2026));
        // Wednesday and Thursday of the same ISO week.
        assert_eq!((a.week, b.week), (20251229, 20251229));
        // In UTC both would be on 31 December.
        let utc = TimeZone::UTC;
        assert_eq!(PeriodKeys::at(night, &utc).day, 20251231);
    }

    #[test]
    fn period_dates() {
        let d = date("2026-11-24");
        assert_eq!(
            Period::Week.dates(d),
            Some((date("2026-11-23"), date("2026-11-29")))
        );
        assert_eq!(
            Period::Month.dates(d),
            Some((date("2026-11-01"), date("2026-11-30")))
        );
        assert_eq!(
            Period::Quarter.dates(d),
            Some((date("2026-10-01"), date("2026-12-31")))
        );
        assert_eq!(
            Period::Year.dates(d),
            Some((date("2026-01-01"), date("2026-12-31")))
        );
        assert_eq!(Period::AllTime.dates(d), None);
        assert_eq!(
            Period::Quarter.span(d),
            PeriodSpan {
                level: Level::Quarter,
                from: 20264,
                to: 20264
            }
        );
    }

    #[test]
    fn tally_numbers() {
        let mut tally = Tally::default();
        assert_eq!(tally.average(), None);
        assert_eq!(tally.satisfaction(), None);
        for score in [Some(3), Some(3), Some(2), Some(1), None] {
            tally.add(&Tally::one(score));
        }
        assert_eq!(tally.visits, 5);
        assert_eq!(tally.rated(), 4);
        assert_eq!(tally.unrated(), 1);
        assert_eq!(tally.average(), Some(2.25));
        assert_eq!(tally.satisfaction(), Some(62.5));
        assert_eq!(tally.bad_share(), Some(25.0));
        assert_eq!(format_average(2.0625), "2.0625");
        assert_eq!(format_average(7.0 / 3.0), "2.3333");
        assert_eq!(format_percent(62.5), "62,5\u{a0}%");
        assert_eq!(format_percent(100.0), "100\u{a0}%");
    }
}

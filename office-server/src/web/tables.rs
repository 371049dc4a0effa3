//! The dashboard's tables: rows × the six period columns, built from the report totals. A page
//! and its «Сохранить отчет» file are made from the same [`ReportTable`], so they show the same
//! numbers.

use std::collections::{BTreeSet, HashMap};

use jiff::civil::Date;

use crate::reports::{Period, Tally, format_average, format_percent, round4};
use crate::storage::{GroupBy, ReportFilter, Storage, StorageResult};

/// One cell of a table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    /// No ratings (for averages and shares), shown empty rather than 0.
    Empty,
    /// A mean score, kept to 4 decimals.
    Average(f64),
    Count(i64),
    /// A percentage.
    Percent(f64),
}

impl Cell {
    pub fn text(&self) -> String {
        match *self {
            Cell::Empty => String::new(),
            Cell::Average(value) => format_average(value),
            Cell::Count(value) => value.to_string(),
            Cell::Percent(value) => format_percent(value),
        }
    }

    /// The number a spreadsheet gets (percent as a fraction of 1).
    pub fn number(&self) -> Option<f64> {
        match *self {
            Cell::Empty => None,
            Cell::Average(value) => Some(value),
            Cell::Count(value) => Some(value as f64),
            Cell::Percent(value) => Some(round4(value / 100.0)),
        }
    }
}

/// What a table's cells measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Average,
    Visits,
    Satisfaction,
    Unrated,
}

impl Measure {
    pub fn cell(self, tally: &Tally) -> Cell {
        match self {
            Measure::Average => tally.average_4().map_or(Cell::Empty, Cell::Average),
            Measure::Visits => Cell::Count(tally.visits),
            Measure::Satisfaction => tally.satisfaction().map_or(Cell::Empty, Cell::Percent),
            Measure::Unrated => Cell::Count(tally.unrated()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReportRow {
    pub label: String,
    pub link: Option<String>,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone)]
pub struct ReportTable {
    /// Stable name: the element id on the page and the `table` of the export URL.
    pub id: String,
    pub title: String,
    pub first_column: String,
    pub rows: Vec<ReportRow>,
    pub total: Option<ReportRow>,
    pub export_url: String,
}

/// A cell of a table that is not rows × periods (the top 10, the Плохо list).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Cell(Cell),
}

impl Value {
    pub fn is_text(&self) -> bool {
        matches!(self, Value::Text(_))
    }

    pub fn text(&self) -> String {
        match self {
            Value::Text(text) => text.clone(),
            Value::Cell(cell) => cell.text(),
        }
    }
}

/// A table with its own columns.
#[derive(Debug, Clone)]
pub struct PlainTable {
    pub id: &'static str,
    pub title: String,
    pub headings: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub export_url: String,
}

/// The six period tallies of each group.
pub type PeriodTallies = HashMap<i64, [Tally; 6]>;

/// Sums the totals of every period column around `date`, grouped.
pub fn period_tallies(
    db: &dyn Storage,
    filter: &ReportFilter,
    group: GroupBy,
    date: Date,
) -> StorageResult<PeriodTallies> {
    let mut tallies: PeriodTallies = HashMap::new();
    for (index, period) in Period::ALL.iter().enumerate() {
        for (key, tally) in db.totals(filter, group, period.span(date))? {
            tallies.entry(key).or_insert([Tally::default(); 6])[index] = tally;
        }
    }
    Ok(tallies)
}

/// The six tallies of all groups together.
pub fn overall(tallies: &PeriodTallies) -> [Tally; 6] {
    let mut sum = [Tally::default(); 6];
    for row in tallies.values() {
        for (total, tally) in sum.iter_mut().zip(row) {
            total.add(tally);
        }
    }
    sum
}

/// The rows to show: the given ones (e.g. every employee of a section, even without visits) in
/// their order, then any other group that has visits in the tallies.
pub fn row_keys(listed: &[i64], tallies: &PeriodTallies) -> Vec<i64> {
    let mut keys: Vec<i64> = Vec::with_capacity(listed.len());
    let mut seen = BTreeSet::new();
    for &key in listed {
        if seen.insert(key) {
            keys.push(key);
        }
    }
    let mut extra: Vec<i64> = tallies
        .keys()
        .copied()
        .filter(|k| !seen.contains(k))
        .collect();
    extra.sort_unstable();
    keys.extend(extra);
    keys
}

/// A table of one measure, one row per key.
pub fn measure_rows(
    keys: &[i64],
    tallies: &PeriodTallies,
    measure: Measure,
    label: impl Fn(i64) -> String,
    link: impl Fn(i64) -> Option<String>,
) -> Vec<ReportRow> {
    let empty = [Tally::default(); 6];
    keys.iter()
        .map(|key| {
            let row = tallies.get(key).unwrap_or(&empty);
            ReportRow {
                label: label(*key),
                link: link(*key),
                cells: row.iter().map(|t| measure.cell(t)).collect(),
            }
        })
        .collect()
}

pub fn measure_row(label: &str, tallies: &[Tally; 6], measure: Measure) -> ReportRow {
    ReportRow {
        label: label.to_string(),
        link: None,
        cells: tallies.iter().map(|t| measure.cell(t)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_average_is_an_empty_cell_not_zero() {
        let none = Tally {
            visits: 3,
            ..Tally::default()
        };
        assert_eq!(Measure::Average.cell(&none), Cell::Empty);
        assert_eq!(Measure::Average.cell(&none).text(), "");
        assert_eq!(Measure::Visits.cell(&none), Cell::Count(3));
        assert_eq!(Measure::Unrated.cell(&none), Cell::Count(3));
        let some = Tally {
            visits: 16,
            good: 5,
            medium: 7,
            bad: 4,
        };
        // (15 + 14 + 4) / 16 = 2.0625
        assert_eq!(Measure::Average.cell(&some).text(), "2.0625");
        assert_eq!(Measure::Average.cell(&some).number(), Some(2.0625));
        assert_eq!(Measure::Satisfaction.cell(&some).number(), Some(0.5313));
    }

    #[test]
    fn listed_rows_first_then_the_rest() {
        let mut tallies = PeriodTallies::new();
        tallies.insert(9, [Tally::default(); 6]);
        tallies.insert(2, [Tally::default(); 6]);
        assert_eq!(row_keys(&[5, 2], &tallies), vec![5, 2, 9]);
    }
}

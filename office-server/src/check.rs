//! `office-server check`: is a data directory whole? The database's own integrity, every
//! recording the database knows of against its file (and every file against the database),
//! and the report totals against the visits they count. Each problem is named; the checks
//! read only, so they run beside a serving process as well as on a restored copy.

use std::collections::HashSet;
use std::fs::File;

use jiff::tz::TimeZone;

use crate::backup::DataPaths;
use crate::recordings::{DirectoryListing, file_name, list_directory, sha256_of};
use crate::storage::StorageError;
use crate::storage::maintenance::{
    RecordingRow, integrity_problems, recording_rows, totals_mismatches,
};

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub visits: u64,
    pub recordings: u64,
    /// Each problem in a sentence, grouped by what was checked.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the data directory at `data`, its report totals in `zone`'s calendar.
pub fn check(data: &DataPaths, zone: &TimeZone) -> Result<CheckReport, StorageError> {
    let mut report = CheckReport::default();
    if !data.database.exists() {
        report.problems.push(format!(
            "database: {} does not exist",
            data.database.display()
        ));
        return Ok(report);
    }
    for problem in integrity_problems(&data.database)? {
        report.problems.push(format!("database: {problem}"));
    }

    // The directory first, then the rows: an upload renames its file into place before its
    // row is written, and retention deletes a file before it marks the row, so on a live
    // server a problem seen once is looked at again with rows read after it.
    let listing = list_directory(&data.recordings)?;
    let mut found = recordings_against_files(data, &recording_rows(&data.database)?, &listing)?;
    if !found.1.is_empty() {
        found = recordings_against_files(data, &recording_rows(&data.database)?, &listing)?;
    }
    report.recordings = found.0;
    report.problems.extend(found.1);

    let (visits, mismatches) = totals_mismatches(&data.database, zone)?;
    report.visits = visits;
    for m in mismatches {
        report.problems.push(format!(
            "report totals: {} at {}: stored {} visits ({} Хорошо, {} Средне, {} Плохо), the \
             visits count {} ({}, {}, {})",
            m.table,
            m.key,
            m.stored.visits,
            m.stored.good,
            m.stored.medium,
            m.stored.bad,
            m.counted.visits,
            m.counted.good,
            m.counted.medium,
            m.counted.bad
        ));
    }
    Ok(report)
}

/// Every recording row against the files listed, every file against the rows: how many
/// recordings were whole, and each problem.
fn recordings_against_files(
    data: &DataPaths,
    rows: &[RecordingRow],
    listing: &DirectoryListing,
) -> Result<(u64, Vec<String>), StorageError> {
    let mut whole = 0;
    let mut problems = Vec::new();
    let on_disk: HashSet<_> = listing.visits.iter().copied().collect();
    let known: HashSet<_> = rows.iter().map(|row| row.visit_id).collect();
    for row in rows {
        let name = file_name(row.visit_id);
        match (row.purged, on_disk.contains(&row.visit_id)) {
            (true, true) => problems.push(format!(
                "recording of visit {}: retention deleted it, but recordings/{name} is still \
                 there",
                row.visit_id
            )),
            (true, false) => {}
            (false, false) => problems.push(format!(
                "recording of visit {}: recordings/{name} is missing",
                row.visit_id
            )),
            (false, true) => {
                let path = data.recordings.join(&name);
                let read = std::fs::metadata(&path)
                    .and_then(|meta| Ok((meta.len(), sha256_of(&mut File::open(&path)?)?)));
                let (size, sha256) = match read {
                    Ok(read) => read,
                    // Gone since the listing (retention, on a live server): the rows read
                    // again decide.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        problems.push(format!(
                            "recording of visit {}: recordings/{name} is missing",
                            row.visit_id
                        ));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                if size == row.size_bytes && sha256 == row.sha256 {
                    whole += 1;
                } else {
                    problems.push(format!(
                        "recording of visit {}: recordings/{name} differs from the database's \
                         record ({size} bytes where it says {})",
                        row.visit_id, row.size_bytes
                    ));
                }
            }
        }
    }
    for visit in listing.visits.iter().filter(|v| !known.contains(v)) {
        problems.push(format!(
            "orphan file: recordings/{} belongs to no recording in the database",
            file_name(*visit)
        ));
    }
    for name in &listing.strangers {
        problems.push(format!(
            "unexpected file: recordings/{name} is not a recording"
        ));
    }
    Ok((whole, problems))
}

//! Recording files under the data directory. An upload grows in `incoming/<visit>.part`; only
//! when it is complete, matches its checksum and validates as 3GP audio is it renamed to
//! `<visit>.3gpp`, so a file with the final name is always whole and valid.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use threegp::{AudioInfo, InvalidRecording};

#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    #[error("the file's SHA-256 is {actual}, but the tablet declared {declared}")]
    ChecksumMismatch { declared: String, actual: String },
    #[error(transparent)]
    Invalid(#[from] InvalidRecording),
    #[error("recording storage failed: {0}")]
    Io(#[from] io::Error),
}

/// The name of a visit's finished recording in the recordings directory.
pub fn file_name(visit: Uuid) -> String {
    format!("{visit}.3gpp")
}

/// What lies in a recordings directory (besides `incoming/`): the visits whose recordings it
/// holds, and the names of anything else.
#[derive(Debug, Default)]
pub struct DirectoryListing {
    pub visits: Vec<Uuid>,
    pub strangers: Vec<String>,
}

/// Lists a recordings directory without changing it (none there: empty).
pub fn list_directory(dir: &Path) -> io::Result<DirectoryListing> {
    let mut listing = DirectoryListing::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name == "incoming" {
            continue;
        }
        match name
            .strip_suffix(".3gpp")
            .and_then(|id| id.parse::<Uuid>().ok())
        {
            Some(visit) if file_name(visit) == name => listing.visits.push(visit),
            _ => listing.strangers.push(name),
        }
    }
    listing.visits.sort_unstable();
    listing.strangers.sort_unstable();
    Ok(listing)
}

#[derive(Debug, Clone)]
pub struct RecordingFiles {
    dir: PathBuf,
    incoming: PathBuf,
}

impl RecordingFiles {
    pub fn open(dir: &Path) -> io::Result<Self> {
        let incoming = dir.join("incoming");
        fs::create_dir_all(&incoming)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            incoming,
        })
    }

    /// Free space for recordings, in bytes (what an unprivileged writer may still use).
    pub fn free_bytes(&self) -> io::Result<u64> {
        let stats = rustix::fs::statvfs(&self.dir).map_err(io::Error::from)?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    /// Unfinished uploads' files last written before `before` (their visits' ids).
    pub fn partials_untouched_since(&self, before: std::time::SystemTime) -> io::Result<Vec<Uuid>> {
        let mut old = Vec::new();
        for entry in fs::read_dir(&self.incoming)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(visit) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".part"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            if entry.metadata()?.modified()? < before {
                old.push(visit);
            }
        }
        Ok(old)
    }

    pub fn final_path(&self, visit: Uuid) -> PathBuf {
        self.dir.join(file_name(visit))
    }

    fn partial_path(&self, visit: Uuid) -> PathBuf {
        self.incoming.join(format!("{visit}.part"))
    }

    /// How many bytes of an unfinished upload are on disk.
    pub fn partial_len(&self, visit: Uuid) -> io::Result<u64> {
        match fs::metadata(self.partial_path(visit)) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Deletes a kept recording; one already gone is fine.
    pub fn delete(&self, visit: Uuid) -> io::Result<()> {
        match fs::remove_file(self.final_path(visit)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn discard_partial(&self, visit: Uuid) -> io::Result<()> {
        match fs::remove_file(self.partial_path(visit)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Opens the partial file for appending at `offset`, which must be its current length.
    pub fn append_at(&self, visit: Uuid, offset: u64) -> io::Result<PartialWriter> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(false)
            .write(true)
            .truncate(false)
            .open(self.partial_path(visit))?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(PartialWriter {
            file,
            start: offset,
            written: 0,
        })
    }

    /// Checks the finished upload and gives it its final name. On any refusal the partial file
    /// is deleted, so the tablet starts over.
    pub fn finish(
        &self,
        visit: Uuid,
        declared_sha256: &str,
    ) -> Result<(AudioInfo, String), FinishError> {
        let result = self.check_and_publish(visit, declared_sha256);
        if result.is_err() {
            let _ = self.discard_partial(visit);
        }
        result
    }

    fn check_and_publish(
        &self,
        visit: Uuid,
        declared_sha256: &str,
    ) -> Result<(AudioInfo, String), FinishError> {
        let partial = self.partial_path(visit);
        let mut file = File::open(&partial)?;
        let actual = sha256_of(&mut file)?;
        if !actual.eq_ignore_ascii_case(declared_sha256) {
            return Err(FinishError::ChecksumMismatch {
                declared: declared_sha256.to_string(),
                actual,
            });
        }
        let len = file.metadata()?.len();
        let info = threegp::validate(&mut io::BufReader::new(&mut file), len)?;
        drop(file);
        fs::rename(&partial, self.final_path(visit))?;
        File::open(&self.dir)?.sync_all()?;
        Ok((info, actual))
    }
}

/// Appends one request's bytes to a partial upload.
pub struct PartialWriter {
    file: File,
    start: u64,
    written: u64,
}

impl PartialWriter {
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Bytes of the file held so far, this request's included.
    pub fn held(&self) -> u64 {
        self.start + self.written
    }

    /// Makes what was written durable, so the tablet may resume after it.
    pub fn sync(self) -> io::Result<u64> {
        self.file.sync_data()?;
        Ok(self.held())
    }

    /// Throws away what this request wrote.
    pub fn roll_back(self) -> io::Result<()> {
        self.file.set_len(self.start)?;
        self.file.sync_data()
    }
}

/// Lower-case hex SHA-256 of everything `reader` yields.
pub fn sha256_of(reader: &mut impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

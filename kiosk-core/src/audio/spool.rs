//! The WAV spool: 16 kHz mono 16-bit PCM written with hound while a visit runs, read back by
//! the encoder, and repaired when a crash left its header behind its data.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::resample::Conditioner;
use super::{AudioError, SAMPLE_RATE};

/// The header is rewritten this often (in samples): a crash loses at most this much audio
/// from the header's point of view, and [`repair_header`] recovers even that.
const FLUSH_EVERY: u64 = SAMPLE_RATE as u64;
/// Data reaches the disk this often (in samples), not only the page cache.
const SYNC_EVERY: u64 = 5 * SAMPLE_RATE as u64;
const SPOOL_EXTENSION: &str = "wav";

/// A finished spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolInfo {
    pub path: PathBuf,
    pub duration_ms: u64,
    pub bytes: u64,
    /// Input samples lost because the writer fell behind the device (0 in a healthy capture).
    pub dropped_samples: u64,
    /// Why the capture ended before it was stopped (e.g. the device went away); what was
    /// captured until then is in the spool.
    pub interrupted: Option<String>,
    /// The input it was recorded from, e.g. "Default Audio Device: 48000 Hz, 2 ch, f32".
    pub input: String,
}

pub(crate) fn spool_spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// Writes 16 kHz mono samples to a spool file, keeping its header current.
pub(crate) struct SpoolWriter {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    /// The same file, to fsync it: hound owns the writer.
    file: File,
    samples: u64,
    unflushed: u64,
    unsynced: u64,
}

impl SpoolWriter {
    pub(crate) fn create(path: &Path) -> Result<Self, AudioError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .map_err(|e| AudioError::io("creating the spool directory", parent, e))?;
        }
        let file = File::create(path).map_err(|e| AudioError::io("creating", path, e))?;
        let sync_handle = file
            .try_clone()
            .map_err(|e| AudioError::io("opening", path, e))?;
        let writer = hound::WavWriter::new(BufWriter::with_capacity(64 * 1024, file), spool_spec())
            .map_err(|source| wav_error(path, source))?;
        // The new name must survive a crash too, or the spool could not be found again.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent);
        }
        Ok(SpoolWriter {
            path: path.to_path_buf(),
            writer,
            file: sync_handle,
            samples: 0,
            unflushed: 0,
            unsynced: 0,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn write(&mut self, mono: &[f32]) -> Result<(), AudioError> {
        for &sample in mono {
            let value = (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16;
            self.writer
                .write_sample(value)
                .map_err(|source| wav_error(&self.path, source))?;
        }
        let n = mono.len() as u64;
        self.samples += n;
        self.unflushed += n;
        self.unsynced += n;
        if self.unflushed >= FLUSH_EVERY {
            self.unflushed = 0;
            self.writer
                .flush()
                .map_err(|source| wav_error(&self.path, source))?;
            if self.unsynced >= SYNC_EVERY {
                self.unsynced = 0;
                self.file
                    .sync_data()
                    .map_err(|e| AudioError::io("syncing", &self.path, e))?;
            }
        }
        Ok(())
    }

    /// Finalises the header and fsyncs; returns (samples, bytes).
    pub(crate) fn finish(self) -> Result<(u64, u64), AudioError> {
        let SpoolWriter {
            path,
            writer,
            file,
            samples,
            ..
        } = self;
        writer
            .finalize()
            .map_err(|source| wav_error(&path, source))?;
        file.sync_all()
            .map_err(|e| AudioError::io("syncing", &path, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| AudioError::io("reading the size of", &path, e))?
            .len();
        Ok((samples, bytes))
    }
}

pub(crate) fn duration_ms(samples: u64) -> u64 {
    samples * 1000 / u64::from(SAMPLE_RATE)
}

/// Opens a spool for reading, first repairing a header that a crash left behind the data.
/// Refuses anything but 16 kHz mono 16-bit PCM, and a spool with no audio.
pub(crate) fn open_spool(path: &Path) -> Result<hound::WavReader<BufReader<File>>, AudioError> {
    repair_header(path)?;
    let file = File::open(path).map_err(|e| AudioError::io("opening", path, e))?;
    let reader = hound::WavReader::new(BufReader::with_capacity(64 * 1024, file))
        .map_err(|source| wav_error(path, source))?;
    let spec = reader.spec();
    if spec != spool_spec() {
        return Err(AudioError::UnsupportedSpoolFormat {
            path: path.to_path_buf(),
            found: format!(
                "{} Hz, {} channel(s), {}-bit {:?}",
                spec.sample_rate, spec.channels, spec.bits_per_sample, spec.sample_format
            ),
        });
    }
    if reader.len() == 0 {
        return Err(AudioError::EmptySpool {
            path: path.to_path_buf(),
        });
    }
    Ok(reader)
}

/// Checks that the header describes a spool (16 kHz mono 16-bit PCM) and makes its lengths
/// agree with the file, trusting the file: after a crash the data chunk holds more than its
/// header says (or the header says nothing at all).
///
/// Data past the declared length is kept as audio unless it is a well-formed chunk of its own
/// (WAV files from elsewhere may carry a `LIST` chunk after the data).
fn repair_header(path: &Path) -> Result<(), AudioError> {
    let not_a_spool = |reason: &str| AudioError::NotASpool {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| AudioError::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| AudioError::io("reading the size of", path, e))?
        .len();
    let io = |e| AudioError::io("reading", path, e);
    let mut riff = [0u8; 12];
    if len < 12 {
        return Err(not_a_spool("shorter than a RIFF header"));
    }
    file.read_exact(&mut riff).map_err(io)?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return Err(not_a_spool("no RIFF/WAVE header"));
    }
    let mut block_align = None;
    let mut offset = 12u64;
    loop {
        if offset + 8 > len {
            return Err(not_a_spool("no data chunk"));
        }
        let (id, size) = read_chunk_header(&mut file, offset).map_err(io)?;
        let body = offset + 8;
        match &id {
            b"fmt " => {
                if size < 16 || body + 16 > len {
                    return Err(not_a_spool("the fmt chunk is cut short"));
                }
                let mut fmt = [0u8; 16];
                file.read_exact(&mut fmt).map_err(io)?;
                let field = |at: usize| u16::from_le_bytes([fmt[at], fmt[at + 1]]);
                let (tag, channels, bits) = (field(0), field(2), field(14));
                let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                // Checked here, before hound reads the file: a damaged header must give an
                // error, and the spool format is the only one the encoder takes.
                const PCM: u16 = 1;
                const EXTENSIBLE: u16 = 0xFFFE;
                if !matches!(tag, PCM | EXTENSIBLE)
                    || channels != 1
                    || rate != SAMPLE_RATE
                    || bits != 16
                    || field(12) != 2
                {
                    return Err(AudioError::UnsupportedSpoolFormat {
                        path: path.to_path_buf(),
                        found: format!(
                            "format 0x{tag:04x}, {rate} Hz, {channels} channel(s), {bits}-bit, \
                             block {}",
                            field(12)
                        ),
                    });
                }
                block_align = Some(2u64);
            }
            b"data" => {
                let Some(block_align) = block_align else {
                    return Err(not_a_spool("the data chunk comes before fmt"));
                };
                let available = len - body;
                let declared = u64::from(size);
                let mut actual = if declared == available {
                    declared
                } else if declared == 0 || declared > available {
                    available
                } else {
                    let next = body + declared + (declared & 1);
                    if is_chunk_at(&mut file, next, len).map_err(io)? {
                        declared
                    } else {
                        available
                    }
                };
                actual -= actual % block_align;
                // Only the RIFF size field bounds the file: keep both fields representable.
                actual = actual.min(u64::from(u32::MAX) - body);
                if actual != declared {
                    tracing::warn!(
                        path = %path.display(),
                        declared,
                        actual,
                        "repairing a spool whose header was not finalised"
                    );
                    let write = |e| AudioError::io("repairing", path, e);
                    file.seek(SeekFrom::Start(4)).map_err(write)?;
                    file.write_all(&((body + actual - 8) as u32).to_le_bytes())
                        .map_err(write)?;
                    file.seek(SeekFrom::Start(offset + 4)).map_err(write)?;
                    file.write_all(&(actual as u32).to_le_bytes())
                        .map_err(write)?;
                    file.sync_all().map_err(write)?;
                }
                return Ok(());
            }
            _ => {}
        }
        offset = body + u64::from(size) + u64::from(size & 1);
    }
}

fn read_chunk_header(file: &mut File, offset: u64) -> std::io::Result<([u8; 4], u32)> {
    let mut header = [0u8; 8];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut header)?;
    let id = [header[0], header[1], header[2], header[3]];
    Ok((
        id,
        u32::from_le_bytes([header[4], header[5], header[6], header[7]]),
    ))
}

fn is_chunk_at(file: &mut File, offset: u64, len: u64) -> std::io::Result<bool> {
    if offset + 8 > len {
        return Ok(false);
    }
    let (id, size) = read_chunk_header(file, offset)?;
    let printable = id.iter().all(|b| (0x20..=0x7e).contains(b));
    Ok(printable && offset + 8 + u64::from(size) <= len)
}

/// Spool files left in `dir` (by a crash, or by a visit whose rating never came): the visit id
/// from each `<uuid>.wav` name, and the path. Other files are left alone. Oldest first, as
/// UUIDv7 ids sort by time. A missing directory has no leftovers.
pub fn leftover_spools(dir: &Path) -> Result<Vec<(Uuid, PathBuf)>, AudioError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AudioError::io("listing", dir, e)),
    };
    let mut spools = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AudioError::io("listing", dir, e))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SPOOL_EXTENSION) {
            continue;
        }
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| Uuid::parse_str(s).ok());
        match id {
            Some(id) if is_file => spools.push((id, path)),
            _ => tracing::debug!(path = %path.display(), "not a spool; left alone"),
        }
    }
    spools.sort();
    Ok(spools)
}

/// Converts any PCM or float WAV file to a spool through the capture path's downmix and
/// resampler: for tests, the simulator, and importing audio recorded elsewhere.
pub fn wav_to_spool(input: &Path, spool: &Path) -> Result<SpoolInfo, AudioError> {
    let mut reader = hound::WavReader::open(input).map_err(|source| wav_error(input, source))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    let mut conditioner = Conditioner::new(spec.sample_rate, spec.channels)?;
    let mut writer = SpoolWriter::create(spool)?;
    let result = (|| {
        let mut block = Vec::with_capacity(4096 * channels);
        let mut sink = |mono: &[f32]| writer.write(mono);
        match spec.sample_format {
            hound::SampleFormat::Float => {
                let mut samples = reader.samples::<f32>();
                loop {
                    block.clear();
                    for sample in samples.by_ref().take(4096 * channels) {
                        block.push(sample.map_err(|source| wav_error(input, source))?);
                    }
                    if block.is_empty() {
                        break;
                    }
                    conditioner.push(&block, &mut sink)?;
                }
            }
            hound::SampleFormat::Int => {
                let scale =
                    1.0 / (1u64 << spec.bits_per_sample.clamp(1, 32).saturating_sub(1)) as f32;
                let mut samples = reader.samples::<i32>();
                loop {
                    block.clear();
                    for sample in samples.by_ref().take(4096 * channels) {
                        let value = sample.map_err(|source| wav_error(input, source))?;
                        block.push(value as f32 * scale);
                    }
                    if block.is_empty() {
                        break;
                    }
                    conditioner.push(&block, &mut sink)?;
                }
            }
        }
        conditioner.finish(&mut sink)
    })();
    if let Err(error) = result {
        drop(writer);
        let _ = fs::remove_file(spool);
        return Err(error);
    }
    let path = writer.path().to_path_buf();
    let (samples, bytes) = writer.finish()?;
    Ok(SpoolInfo {
        path,
        duration_ms: duration_ms(samples),
        bytes,
        dropped_samples: 0,
        interrupted: None,
        input: format!(
            "{}: {} Hz, {} ch, {}-bit {:?}",
            input.display(),
            spec.sample_rate,
            spec.channels,
            spec.bits_per_sample,
            spec.sample_format
        ),
    })
}

pub(crate) fn wav_error(path: &Path, source: hound::Error) -> AudioError {
    AudioError::Wav {
        path: path.to_path_buf(),
        source,
    }
}

/// Best effort: on some filesystems a directory cannot be opened for syncing.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir)
        && let Err(error) = handle.sync_all()
    {
        tracing::debug!(%error, dir = %dir.display(), "cannot sync directory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_spool(path: &Path, samples: usize) {
        let mut writer = SpoolWriter::create(path).unwrap();
        let audio: Vec<f32> = (0..samples)
            .map(|i| ((i % 100) as f32 / 100.0) - 0.5)
            .collect();
        writer.write(&audio).unwrap();
        writer.finish().unwrap();
    }

    #[test]
    fn a_header_never_finalised_is_repaired_from_the_file_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        write_spool(&path, 10_000);
        let mut bytes = fs::read(&path).unwrap();
        // As after a crash before the first flush: both lengths still zero, one odd byte
        // of a half-written sample at the end.
        bytes[4..8].copy_from_slice(&36u32.to_le_bytes());
        bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
        bytes.push(0x12);
        fs::write(&path, &bytes).unwrap();
        let reader = open_spool(&path).unwrap();
        assert_eq!(reader.len(), 10_000);
    }

    #[test]
    fn a_trailing_chunk_after_the_data_is_not_taken_for_audio() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.wav");
        write_spool(&path, 1_000);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(b"LIST");
        bytes.extend_from_slice(&4u32.to_le_bytes());
        bytes.extend_from_slice(b"INFO");
        fs::write(&path, &bytes).unwrap();
        assert_eq!(open_spool(&path).unwrap().len(), 1_000);
    }

    #[test]
    fn leftovers_are_the_uuid_named_wavs() {
        let dir = tempfile::tempdir().unwrap();
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        for name in [
            format!("{b}.wav"),
            format!("{a}.wav"),
            "notes.wav".into(),
            format!("{a}.3gpp"),
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::create_dir(dir.path().join(format!("{}.wav", Uuid::now_v7()))).unwrap();
        let found = leftover_spools(dir.path()).unwrap();
        let ids: Vec<Uuid> = found.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![a, b]);
        assert!(
            leftover_spools(&dir.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }
}

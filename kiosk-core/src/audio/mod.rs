//! The tablet's audio path: capture → 16 kHz mono WAV spool → (only for a Плохо visit) AAC-LC
//! in a 3GP file.
//!
//! - [`Capture`] records from the default cpal input (or from [`SpeechSynth`], for the
//!   simulator and tests) while a visit runs. The device callback only converts samples to
//!   `f32` and pushes them into a lock-free ring; a worker thread downmixes to mono, resamples
//!   to 16 kHz with rubato and writes 16-bit PCM with hound, updating the WAV header every
//!   second so that a crash loses at most that second.
//! - [`encode_spool`] streams a spool through libxaac (AAC-LC, 28 kbit/s) and writes a 3GP
//!   file (`ftyp` 3gp4, `moov` before `mdat`) with mp4-atom; an edit list hides the encoder's
//!   priming so the file plays exactly what was spoken.
//! - [`leftover_spools`] finds spools left by a crash; a spool whose header was never
//!   finalised is repaired from the file's length before it is read.

mod capture;
mod encode;
mod resample;
mod spool;
mod synth;

use std::path::PathBuf;

pub use capture::{Capture, microphone_available};
pub use encode::{AAC_BITRATE, EncodedRecording, encode_spool};
pub use spool::{SpoolInfo, leftover_spools, wav_to_spool};
pub use synth::SpeechSynth;

/// The spool's and the recording's sample rate.
pub const SAMPLE_RATE: u32 = 16_000;

/// Where a capture's audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The default input device of the platform's audio host (ALSA on Linux, AAudio on
    /// Android).
    Microphone,
    /// Speech-like audio generated in real time by a thread, for the simulator and tests.
    Synthetic { seed: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("no audio input device: {0}")]
    NoInputDevice(String),
    #[error("the audio input could not be opened: {0}")]
    Device(String),
    #[error("the input device offers an unsupported sample format {0}")]
    UnsupportedSampleFormat(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("WAV file {}: {source}", path.display())]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("{} is not a readable WAV spool: {reason}", path.display())]
    NotASpool { path: PathBuf, reason: String },
    #[error("{} is {found}; a spool must be 16 kHz mono 16-bit PCM", path.display())]
    UnsupportedSpoolFormat { path: PathBuf, found: String },
    #[error("{} holds no audio", path.display())]
    EmptySpool { path: PathBuf },
    #[error("{} is too long to encode ({seconds} s)", path.display())]
    TooLong { path: PathBuf, seconds: u64 },
    #[error("resampling failed: {0}")]
    Resample(String),
    #[error("the AAC encoder failed: {0}")]
    Encoder(String),
    #[error("writing the 3GP container failed: {0}")]
    Container(String),
    #[error("the {0} thread panicked")]
    ThreadPanicked(&'static str),
}

impl AudioError {
    fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        AudioError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

//! Recordings made by `scripts/make-fixtures.sh` with ffmpeg: what a tablet uploads, and the
//! kinds of file the server must refuse. Committed, so tests need no ffmpeg to have them.

use std::path::PathBuf;

/// AAC-LC, 16 kHz, mono, 24 kbit/s in 3GP: what a tablet uploads.
pub const VISIT_3GPP: &[u8] = include_bytes!("../fixtures/visit.3gpp");
/// The same audio as MP4 (refused: not 3GP).
pub const VISIT_MP4: &[u8] = include_bytes!("../fixtures/visit.mp4");
/// The same audio as M4A (refused: not 3GP).
pub const VISIT_M4A: &[u8] = include_bytes!("../fixtures/visit.m4a");
/// One second of WAV (refused: not ISO media).
pub const VISIT_WAV: &[u8] = include_bytes!("../fixtures/visit.wav");
/// AMR-NB in 3GP (refused: no browser plays it).
pub const VISIT_AMR_3GPP: &[u8] = include_bytes!("../fixtures/visit-amr.3gpp");

/// 134 s of AAC in 3GP: three spoken phrases in long silences, their spans in
/// `visit-segments.json` (made by `scripts/make-fixtures.sh`).
pub const VISIT_SEGMENTS_3GPP: &[u8] = include_bytes!("../fixtures/visit-segments.3gpp");

/// The path of a fixture file, for code that wants a file rather than bytes.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

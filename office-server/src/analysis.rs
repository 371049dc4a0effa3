//! What the heads' player needs to listen fast: a waveform and the stretches of speech,
//! computed once when a recording arrives. The AAC is decoded with symphonia; speech is found by
//! earshot's voice-activity detector, a small neural network in pure Rust that works on 16 ms
//! frames of 16 kHz mono audio — exactly what the tablets record.

use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// The sample rate earshot works at, and the tablets record at.
const RATE: u32 = 16_000;
/// Samples per detector frame (16 ms).
const FRAME: usize = 256;
/// A frame scoring at least this is speech (earshot's suggested default).
const SPEECH_SCORE: f32 = 0.5;
/// Pauses shorter than this inside speech are part of it: breaths, gaps between words.
const BRIDGE_MS: u64 = 400;
/// Speech shorter than this on its own is a click or a cough, not speech.
const SHORTEST_SPEECH_MS: u64 = 200;
/// Speech is widened by this on both sides so a skip never clips a word's edge.
const PAD_MS: u64 = 100;
/// Columns of the waveform, whatever the recording's length.
pub const WAVEFORM_COLUMNS: usize = 600;

/// A stretch of speech, in milliseconds from the recording's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speech {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A recording's analysis, as stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// The decoded audio's length.
    pub duration_ms: u64,
    /// Peak level per column, 0–255, over [`WAVEFORM_COLUMNS`] equal slices (fewer when the
    /// recording is shorter than that many frames).
    pub waveform: Vec<u8>,
    /// Speech, in order, not overlapping; everything between is silence.
    pub speech: Vec<Speech>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("cannot read the recording: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot decode the recording: {0}")]
    Decode(#[from] DecodeError),
    #[error("the recording has no audio track the decoder knows")]
    NoAudio,
    #[error("the recording is {rate} Hz with {channels} channels; analysis needs 16 kHz")]
    Format { rate: u32, channels: usize },
}

/// Decodes a stored recording and analyses it.
pub fn analyse_file(path: &Path) -> Result<Analysis, AnalysisError> {
    let samples = decode(path)?;
    Ok(analyse(&samples))
}

/// The recording's audio as mono 16 kHz samples in [-1, 1].
fn decode(path: &Path) -> Result<Vec<f32>, AnalysisError> {
    let source = MediaSourceStream::new(Box::new(File::open(path)?), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("3gp");
    let mut format = symphonia::default::get_probe().probe(
        &hint,
        source,
        FormatOptions::default(),
        MetadataOptions::default(),
    )?;
    let track = format
        .first_track(TrackType::Audio)
        .ok_or(AnalysisError::NoAudio)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(AnalysisError::NoAudio)?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())?;
    let mut samples = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    while let Some(packet) = format.next_packet()? {
        if packet.track_id != track_id {
            continue;
        }
        let audio = match decoder.decode(&packet) {
            Ok(audio) => audio,
            // A damaged packet is skipped, as a player would; the rest is still worth having.
            Err(DecodeError::DecodeError(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let spec = audio.spec();
        let (rate, channels) = (spec.rate(), spec.channels().count());
        if rate != RATE || channels == 0 {
            return Err(AnalysisError::Format { rate, channels });
        }
        audio.copy_to_vec_interleaved(&mut interleaved);
        if channels == 1 {
            samples.extend_from_slice(&interleaved);
        } else {
            samples.extend(
                interleaved
                    .chunks_exact(channels)
                    .map(|frame| frame.iter().sum::<f32>() / channels as f32),
            );
        }
    }
    Ok(samples)
}

/// The waveform and speech of mono 16 kHz samples.
pub fn analyse(samples: &[f32]) -> Analysis {
    let duration_ms = samples.len() as u64 * 1000 / u64::from(RATE);
    Analysis {
        duration_ms,
        waveform: waveform(samples),
        speech: speech(samples, duration_ms),
    }
}

fn waveform(samples: &[f32]) -> Vec<u8> {
    if samples.is_empty() {
        return Vec::new();
    }
    let columns = WAVEFORM_COLUMNS.min(samples.len().div_ceil(FRAME)).max(1);
    let width = samples.len().div_ceil(columns);
    samples
        .chunks(width)
        .map(|chunk| {
            let peak = chunk.iter().fold(0f32, |m, s| m.max(s.abs())).min(1.0);
            (peak * 255.0).round() as u8
        })
        .collect()
}

fn speech(samples: &[f32], duration_ms: u64) -> Vec<Speech> {
    let frame_ms = |i: usize| i as u64 * FRAME as u64 * 1000 / u64::from(RATE);
    let mut detector = earshot::Detector::default();
    let mut raw: Vec<Speech> = Vec::new();
    let mut run_start = None;
    let total = samples.len() / FRAME;
    for (i, frame) in samples.chunks_exact(FRAME).enumerate() {
        let voiced = detector.predict_f32(frame) >= SPEECH_SCORE;
        match (voiced, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                raw.push(Speech {
                    start_ms: frame_ms(start),
                    end_ms: frame_ms(i),
                });
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        raw.push(Speech {
            start_ms: frame_ms(start),
            end_ms: frame_ms(total),
        });
    }
    // Bridge short pauses, then drop what is too short to be speech, then pad.
    let mut bridged: Vec<Speech> = Vec::new();
    for run in raw {
        match bridged.last_mut() {
            Some(last) if run.start_ms.saturating_sub(last.end_ms) < BRIDGE_MS => {
                last.end_ms = run.end_ms;
            }
            _ => bridged.push(run),
        }
    }
    let mut padded: Vec<Speech> = Vec::new();
    for run in bridged
        .into_iter()
        .filter(|run| run.end_ms - run.start_ms >= SHORTEST_SPEECH_MS)
    {
        let run = Speech {
            start_ms: run.start_ms.saturating_sub(PAD_MS),
            end_ms: (run.end_ms + PAD_MS).min(duration_ms),
        };
        match padded.last_mut() {
            Some(last) if run.start_ms <= last.end_ms => last.end_ms = run.end_ms,
            _ => padded.push(run),
        }
    }
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32) -> Vec<f32> {
        (0..(seconds * RATE as f32) as usize)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn silence_has_no_speech_and_a_flat_waveform() {
        let analysis = analyse(&vec![0.0; RATE as usize * 3]);
        assert_eq!(analysis.duration_ms, 3000);
        assert!(analysis.speech.is_empty());
        assert!(analysis.waveform.iter().all(|&p| p == 0));
        assert!(analysis.waveform.len() <= WAVEFORM_COLUMNS);
    }

    #[test]
    fn the_waveform_follows_the_level() {
        let mut samples = vec![0.0; RATE as usize];
        samples.extend(tone(1.0));
        let analysis = analyse(&samples);
        let half = analysis.waveform.len() / 2;
        assert!(analysis.waveform[..half - 1].iter().all(|&p| p == 0));
        assert!(analysis.waveform[half + 1..].iter().all(|&p| p >= 126));
    }

    /// The fixture's speech, as `scripts/make-fixtures.sh` wrote it beside the recording.
    fn fixture_truth() -> Vec<(f64, f64)> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let truth: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures.join("visit-segments.json")).unwrap(),
        )
        .unwrap();
        truth["speech"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap()))
            .collect()
    }

    #[test]
    fn the_speech_of_a_real_recording_is_found_within_300_ms() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/visit-segments.3gpp");
        let analysis = analyse_file(&path).unwrap();
        let found: Vec<(f64, f64)> = analysis
            .speech
            .iter()
            .map(|s| (s.start_ms as f64 / 1000.0, s.end_ms as f64 / 1000.0))
            .collect();
        let truth = fixture_truth();
        assert_eq!(found.len(), truth.len(), "found {found:?}, truth {truth:?}");
        for (got, want) in found.iter().zip(&truth) {
            assert!(
                (got.0 - want.0).abs() <= 0.3 && (got.1 - want.1).abs() <= 0.3,
                "found {found:?}, truth {truth:?}"
            );
        }
        assert!((analysis.duration_ms as f64 / 1000.0 - 134.0).abs() < 0.5);
        assert_eq!(analysis.waveform.len(), WAVEFORM_COLUMNS);
    }

    #[test]
    fn nothing_at_all_is_an_empty_analysis() {
        let analysis = analyse(&[]);
        assert_eq!(analysis.duration_ms, 0);
        assert!(analysis.waveform.is_empty() && analysis.speech.is_empty());
    }
}

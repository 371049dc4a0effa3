//! The audio path end to end, with real tools: speech from espeak-ng, conversions by sox,
//! and every 3GP file checked by ffprobe, decoded by ffmpeg and validated by the office
//! server's own validator.
//!
//! Needs the Debian packages espeak-ng, sox and ffmpeg; a missing tool fails the test with
//! the package to install.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kiosk_core::audio::{
    self, AudioError, Capture, EncodedRecording, SAMPLE_RATE, Source, SpeechSynth,
};
use mp4_atom::{Codec, Decode, Moov, StszSamples};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::tools::{run, tool};

const PHRASE: &str = "Здравствуйте. Вы пришли на приём в жилищное управление. \
    Расскажите, пожалуйста, какой у вас вопрос, и я постараюсь помочь.";

// ---------------------------------------------------------------------------------------
// Tools

/// espeak-ng speech (22 050 Hz mono) converted by sox to the given rate and channels.
fn speech_wav(dir: &Path, name: &str, rate: u32, channels: u16) -> PathBuf {
    let raw = dir.join(format!("{name}-espeak.wav"));
    let mut espeak = tool("espeak-ng", "espeak-ng");
    espeak
        .args(["-v", "ru", "-s", "150", "-w"])
        .arg(&raw)
        .arg(PHRASE);
    run(espeak);
    let out = dir.join(format!("{name}.wav"));
    let mut sox = tool("sox", "sox");
    sox.arg(&raw)
        .args([
            "-b",
            "16",
            "-r",
            &rate.to_string(),
            "-c",
            &channels.to_string(),
        ])
        .arg(&out);
    run(sox);
    out
}

fn ffprobe(path: &Path) -> serde_json::Value {
    let mut probe = tool("ffprobe", "ffmpeg");
    probe
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path);
    let output = run(probe);
    serde_json::from_slice(&output.stdout).expect("ffprobe printed JSON")
}

/// Decodes with ffmpeg to 16 kHz mono s16; fails on any decoder complaint.
fn ffmpeg_decode(path: &Path) -> Vec<i16> {
    let mut ffmpeg = tool("ffmpeg", "ffmpeg");
    ffmpeg
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ac", "1", "-ar", "16000", "-"]);
    let output = run(ffmpeg);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.trim().is_empty(), "ffmpeg reported: {errors}");
    output
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// `ffmpeg -v error -i f -f null -` must print nothing.
fn ffmpeg_null_decode(path: &Path) {
    let mut ffmpeg = tool("ffmpeg", "ffmpeg");
    ffmpeg
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]);
    let output = run(ffmpeg);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(errors.trim().is_empty(), "ffmpeg reported: {errors}");
}

fn server_validate(path: &Path) -> threegp::AudioInfo {
    let mut file = File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    threegp::validate(&mut file, len)
        .unwrap_or_else(|e| panic!("the server refuses {}: {e}", path.display()))
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let samples = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    (reader.spec(), samples)
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// Normalised cross-correlation of `b` against `a` at the lag (within ±`max_lag`) where it
/// peaks: (lag, correlation). A positive lag means `b` is late.
fn best_alignment(a: &[i16], b: &[i16], max_lag: i64) -> (i64, f64) {
    let n = a.len().min(b.len()) as i64;
    let mut best = (0, f64::MIN);
    for lag in -max_lag..=max_lag {
        let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
        for i in max_lag..n - max_lag {
            let x = f64::from(a[i as usize]);
            let y = f64::from(b[(i + lag) as usize]);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
        let c = ab / (aa.sqrt() * bb.sqrt()).max(1.0);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// Everything a recording must satisfy, whatever its source; returns the decoded audio.
fn check_recording(recording: &EncodedRecording, spool_samples: usize) -> Vec<i16> {
    let path = &recording.path;
    let expected_ms = spool_samples as u64 * 1000 / u64::from(SAMPLE_RATE);
    assert_eq!(recording.duration_ms, expected_ms);
    let bytes = fs::read(path).unwrap();
    assert_eq!(recording.size_bytes, bytes.len() as u64);
    assert_eq!(recording.sha256, hex::encode(Sha256::digest(&bytes)));
    assert!(!path.with_extension("3gpp.part").exists());

    // ffprobe: AAC-LC, 16 kHz, mono, the spool's duration, a 3GP brand.
    let probe = ffprobe(path);
    let stream = &probe["streams"][0];
    assert_eq!(
        probe["streams"].as_array().map(Vec::len),
        Some(1),
        "{probe}"
    );
    assert_eq!(stream["codec_name"], "aac", "{probe}");
    assert_eq!(stream["profile"], "LC", "{probe}");
    assert_eq!(stream["sample_rate"], "16000", "{probe}");
    assert_eq!(stream["channels"], 1, "{probe}");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("ffprobe gives a duration");
    let expected = spool_samples as f64 / f64::from(SAMPLE_RATE);
    assert!(
        (duration - expected).abs() < 0.1,
        "ffprobe says {duration} s, the spool has {expected} s"
    );
    assert_eq!(probe["format"]["tags"]["major_brand"], "3gp4", "{probe}");
    assert_eq!(
        probe["format"]["tags"]["compatible_brands"], "isom3gp4",
        "{probe}"
    );

    // Bit rate: 24–32 kbit/s of audio, whatever the container adds.
    let kbps = recording.size_bytes as f64 * 8.0 / expected / 1000.0;
    if expected > 5.0 {
        assert!((24.0..34.0).contains(&kbps), "{kbps} kbit/s");
    }

    // The server's validator, which every upload must pass.
    let info = server_validate(path);
    assert_eq!(info.major_brand, "3gp4");
    assert_eq!(info.sample_rate, 16_000);
    assert_eq!(info.channels, 1);
    // The validator reads the media duration: whole frames, priming and padding included.
    assert!(
        info.duration_ms >= expected_ms && info.duration_ms <= expected_ms + 170,
        "validator: {} ms, spool {expected_ms} ms",
        info.duration_ms
    );

    // The esds, read back: MPEG-4 audio, AudioSpecificConfig 0x14 0x08 (AAC-LC, 16 kHz, mono).
    let moov = read_moov(&bytes);
    let stbl = &moov.trak[0].mdia.minf.stbl;
    let Codec::Mp4a(mp4a) = &stbl.stsd.codecs[0] else {
        panic!("not mp4a: {:?}", stbl.stsd.codecs);
    };
    let config = &mp4a.esds.es_desc.dec_config;
    assert_eq!(config.object_type_indication, 0x40);
    assert_eq!(config.stream_type, 5);
    let specific = config.dec_specific.as_ref().expect("decoder specific info");
    assert_eq!(specific.raw, vec![0x14, 0x08]);
    assert_eq!(moov.trak[0].mdia.mdhd.timescale, 16_000);
    let StszSamples::Different { sizes } = &stbl.stsz.samples else {
        panic!("constant-size AAC frames?");
    };
    let frames = (spool_samples as u64 + 1600).div_ceil(1024);
    assert_eq!(sizes.len() as u64, frames);

    ffmpeg_null_decode(path);
    ffmpeg_decode(path)
}

/// The `moov` of a file laid out ftyp | moov | mdat.
fn read_moov(bytes: &[u8]) -> Moov {
    let ftyp_len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(&bytes[4..8], b"ftyp");
    assert_eq!(
        &bytes[ftyp_len + 4..ftyp_len + 8],
        b"moov",
        "moov comes first"
    );
    Moov::decode(&mut &bytes[ftyp_len..]).expect("moov decodes")
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn espeak_speech_encodes_to_3gp_that_ffprobe_the_server_and_ffmpeg_accept() {
    let dir = tempfile::tempdir().unwrap();
    let spool = speech_wav(dir.path(), "speech16k", 16_000, 1);
    let (_, original) = read_wav(&spool);
    let out = dir.path().join("recordings").join("visit.3gpp");
    let recording = audio::encode_spool(&spool, &out).unwrap();
    assert_eq!(recording.path, out);
    let decoded = check_recording(&recording, original.len());

    // What plays is what was spoken: the same timing (the edit list drops the priming), the
    // same loudness, and close in shape. ffmpeg 5 honours the edit's start but not its end,
    // so the last frame's silent padding may follow.
    assert!(
        decoded.len() >= original.len() && decoded.len() < original.len() + 1024,
        "decoded {} samples, spoke {}",
        decoded.len(),
        original.len()
    );
    let (lag, correlation) = best_alignment(&original, &decoded, 2000);
    assert!(lag.abs() <= 2, "decoded audio is {lag} samples off");
    assert!(correlation > 0.95, "correlation {correlation}");
    let ratio = rms(&decoded) / rms(&original);
    assert!((0.8..1.2).contains(&ratio), "loudness ratio {ratio}");
    assert!(spool.exists(), "encoding leaves the spool to the caller");
}

#[test]
fn stereo_44k_speech_goes_through_the_capture_resampler() {
    let dir = tempfile::tempdir().unwrap();
    let stereo = speech_wav(dir.path(), "speech44k", 44_100, 2);
    let reference = speech_wav(dir.path(), "speech16k", 16_000, 1);
    let spool = dir.path().join("spool").join("converted.wav");
    let info = audio::wav_to_spool(&stereo, &spool).unwrap();
    let (spec, converted) = read_wav(&spool);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    let (_, sox_converted) = read_wav(&reference);
    assert!(converted.len().abs_diff(sox_converted.len()) <= 2);
    assert_eq!(info.duration_ms, converted.len() as u64 * 1000 / 16_000);
    assert_eq!(info.bytes, fs::metadata(&spool).unwrap().len());
    // Our downmix + rubato against sox's resampler: the same audio, at the same time.
    let (lag, correlation) = best_alignment(&sox_converted, &converted, 50);
    assert!(lag.abs() <= 1, "resampled audio is {lag} samples off sox's");
    assert!(
        correlation > 0.98,
        "correlation with sox's resampling {correlation}"
    );

    let recording = audio::encode_spool(&spool, &dir.path().join("converted.3gpp")).unwrap();
    check_recording(&recording, converted.len());
}

#[test]
fn synthetic_capture_runs_in_real_time_and_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir
        .path()
        .join("spool")
        .join(format!("{}.wav", uuid::Uuid::now_v7()));
    let capture = Capture::start(Source::Synthetic { seed: 42 }, &spool).unwrap();
    assert!(capture.input().contains("48000 Hz"));
    std::thread::sleep(Duration::from_millis(1500));
    let info = capture.stop().unwrap();
    assert_eq!(info.path, spool);
    assert!(
        (1300..=1800).contains(&info.duration_ms),
        "1.5 s of capture made {} ms of spool",
        info.duration_ms
    );
    assert_eq!(info.dropped_samples, 0);
    assert_eq!(info.interrupted, None);
    let (spec, samples) = read_wav(&spool);
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1));
    assert_eq!(info.bytes, fs::metadata(&spool).unwrap().len());
    assert!(
        rms(&samples) > 300.0,
        "synthetic speech rms {}",
        rms(&samples)
    );

    let recording = audio::encode_spool(&spool, &dir.path().join("synthetic.3gpp")).unwrap();
    check_recording(&recording, samples.len());
}

/// A crash leaves the spool as it was on disk at that moment: its header updated up to the
/// last flush, data beyond it. A copy taken while the capture runs is exactly that.
#[test]
fn a_spool_left_by_a_crash_is_found_and_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.wav");
    let capture = Capture::start(Source::Synthetic { seed: 7 }, &live).unwrap();
    std::thread::sleep(Duration::from_millis(1700));
    let spool_dir = dir.path().join("spool");
    fs::create_dir_all(&spool_dir).unwrap();
    let id = uuid::Uuid::now_v7();
    let left = spool_dir.join(format!("{id}.wav"));
    fs::copy(&live, &left).unwrap();
    capture.stop().unwrap();
    fs::write(spool_dir.join("unrelated.txt"), b"x").unwrap();

    let leftovers = audio::leftover_spools(&spool_dir).unwrap();
    assert_eq!(leftovers, vec![(id, left.clone())]);
    let data_bytes = fs::metadata(&left).unwrap().len() - 44;
    let recording = audio::encode_spool(&left, &dir.path().join(format!("{id}.3gpp"))).unwrap();
    // Everything on disk is kept, not only what the last header update counted.
    check_recording(&recording, (data_bytes / 2) as usize);
    assert!(
        recording.duration_ms >= 1000,
        "{} ms",
        recording.duration_ms
    );
}

/// A spool of `seconds` of synthetic speech, written with hound as the capture writes it.
fn synthetic_spool(path: &Path, seconds: f32) -> usize {
    let mut samples = vec![0.0f32; (seconds * 16_000.0) as usize];
    SpeechSynth::new(3, 16_000).fill(&mut samples);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for s in &samples {
        writer.write_sample((s * 32767.0) as i16).unwrap();
    }
    writer.finalize().unwrap();
    samples.len()
}

#[test]
fn truncated_spools_encode_what_they_hold_or_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.wav");
    let samples = synthetic_spool(&whole, 3.0);
    let bytes = fs::read(&whole).unwrap();
    assert_eq!(bytes.len(), 44 + samples * 2);

    // Header never updated (lengths 0), cut in the middle of a sample.
    let mut never_flushed = bytes[..44 + 20_001].to_vec();
    never_flushed[4..8].copy_from_slice(&36u32.to_le_bytes());
    never_flushed[40..44].copy_from_slice(&0u32.to_le_bytes());
    // Header claims the whole file, 40 % of it is there.
    let cut_short = bytes[..44 + (samples * 2 * 2 / 5)].to_vec();
    for (name, content, expected_samples) in [
        ("never_flushed", never_flushed, 10_000),
        ("cut_short", cut_short, samples * 2 / 5),
    ] {
        let spool = dir.path().join(format!("{name}.wav"));
        fs::write(&spool, &content).unwrap();
        let out = dir.path().join(format!("{name}.3gpp"));
        let recording = audio::encode_spool(&spool, &out).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_recording(&recording, expected_samples);
    }

    // What cannot be a recording is refused with a reason, and leaves no file behind.
    let mut header_only = bytes[..44].to_vec();
    header_only[40..44].copy_from_slice(&0u32.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("cut_in_header", bytes[..30].to_vec()),
        ("header_only", header_only),
        (
            "not_wav",
            b"ID3\x03\x00 this is not a wav file at all".to_vec(),
        ),
    ];
    for (name, content) in cases {
        let spool = dir.path().join(format!("{name}.wav"));
        fs::write(&spool, &content).unwrap();
        let out = dir.path().join(format!("{name}.3gpp"));
        let error = audio::encode_spool(&spool, &out).expect_err(name);
        assert!(
            matches!(
                error,
                AudioError::NotASpool { .. } | AudioError::EmptySpool { .. }
            ),
            "{name}: {error:?}"
        );
        assert!(!error.to_string().is_empty());
        assert!(!out.exists(), "{name}: an output was left");
        assert!(!dir.path().join(format!("{name}.3gpp.part")).exists());
    }

    let foreign = speech_wav(dir.path(), "foreign", 44_100, 2);
    let error = audio::encode_spool(&foreign, &dir.path().join("foreign.3gpp")).unwrap_err();
    assert!(
        matches!(error, AudioError::UnsupportedSpoolFormat { .. }),
        "{error:?}"
    );
    let missing = audio::encode_spool(&dir.path().join("missing.wav"), &dir.path().join("m.3gpp"));
    assert!(matches!(missing, Err(AudioError::Io { .. })), "{missing:?}");
}

#[test]
fn the_api_crosses_threads() {
    // The kiosk keeps a Capture across awaits and returns AudioError through anyhow.
    fn send<T: Send + 'static>() {}
    fn send_sync<T: Send + Sync + 'static>() {}
    send::<Capture>();
    send_sync::<AudioError>();
    send_sync::<audio::SpoolInfo>();
    send_sync::<EncodedRecording>();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Whatever a crash or a bad disk does to a spool, encoding returns a recording the server
    /// accepts or an error; it never panics.
    #[test]
    fn damaged_spools_never_panic(
        cut in 0usize..=(44 + 16_000),
        flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.wav");
        synthetic_spool(&whole, 0.5);
        let mut bytes = fs::read(&whole).unwrap();
        bytes.truncate(cut);
        for (at, value) in flips {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        let spool = dir.path().join("damaged.wav");
        fs::write(&spool, &bytes).unwrap();
        let out = dir.path().join("damaged.3gpp");
        if let Ok(recording) = audio::encode_spool(&spool, &out) {
            server_validate(&recording.path);
        } else {
            prop_assert!(!out.exists());
        }
    }
}

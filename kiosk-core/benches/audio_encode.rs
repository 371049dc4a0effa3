//! Encode speed and size of the audio path: minutes of speech-like audio through
//! `encode_spool` (the work done for every Плохо visit), and through the capture path's
//! downmix + resampler (`wav_to_spool`, 48 kHz stereo to 16 kHz mono).
//!
//! Run with `scripts/bench-audio.sh` (or `cargo bench -p kiosk-core --bench audio_encode`).
//! `AUDIO_BENCH_MINUTES` sets the length (default 10). espeak-ng speech, looped with sox, is
//! used when both tools are installed; the synthetic speech generator always is.
//!
//! Goals: encoding at 300× real time or faster, at most 15 MB per hour of audio.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiosk_core::audio::{self, SpeechSynth};

const RUNS: usize = 3;

fn main() {
    let minutes: f64 = std::env::var("AUDIO_BENCH_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(10.0);
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "audio_encode: {minutes} min of audio, best of {RUNS} runs, AAC-LC {} bit/s",
        audio::AAC_BITRATE
    );
    println!(
        "| input | audio | encode time | × real time | output | MB per hour | kbit/s (file) |"
    );
    println!("|---|---|---|---|---|---|---|");

    let synthetic = dir.path().join("synthetic.wav");
    write_synthetic(&synthetic, minutes, 16_000, 1);
    encode_row("synthetic speech (SpeechSynth)", &synthetic, dir.path());

    match espeak_speech(dir.path(), minutes) {
        Some(espeak) => encode_row("espeak-ng speech, looped", &espeak, dir.path()),
        None => {
            println!("| espeak-ng speech | skipped: espeak-ng or sox is not installed | | | | | |")
        }
    }

    // The capture path's worker, offline: downmix and resample a 48 kHz stereo recording.
    let stereo = dir.path().join("stereo48k.wav");
    write_synthetic(&stereo, minutes, 48_000, 2);
    let seconds = minutes * 60.0;
    let best = best_of(|| {
        let spool = dir.path().join("resampled.wav");
        audio::wav_to_spool(&stereo, &spool).expect("wav_to_spool");
    });
    println!();
    println!(
        "capture path (48 kHz stereo → 16 kHz mono spool, downmix + rubato + hound): \
         {seconds:.0} s of audio in {:.2} s, {:.0}× real time",
        best.as_secs_f64(),
        seconds / best.as_secs_f64()
    );
}

fn encode_row(name: &str, spool: &Path, dir: &Path) {
    let out = dir.join("bench.3gpp");
    let mut recording = None;
    let best = best_of(|| {
        recording = Some(audio::encode_spool(spool, &out).expect("encode_spool"));
    });
    let Some(recording) = recording else { return };
    let seconds = recording.duration_ms as f64 / 1000.0;
    let per_hour = recording.size_bytes as f64 * 3600.0 / seconds / 1e6;
    println!(
        "| {name} | {seconds:.0} s | {:.3} s | {:.0}× | {:.2} MB | {per_hour:.2} | {:.1} |",
        best.as_secs_f64(),
        seconds / best.as_secs_f64(),
        recording.size_bytes as f64 / 1e6,
        recording.size_bytes as f64 * 8.0 / seconds / 1000.0,
    );
}

fn best_of(mut run: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn write_synthetic(path: &Path, minutes: f64, rate: u32, channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create wav");
    let mut synth = SpeechSynth::new(2024, rate);
    let mut block = vec![0.0f32; rate as usize];
    for _ in 0..(minutes * 60.0) as usize {
        synth.fill(&mut block);
        for &s in &block {
            let value = (s * 32767.0) as i16;
            for _ in 0..channels {
                writer.write_sample(value).expect("write");
            }
        }
    }
    writer.finalize().expect("finalize");
}

/// espeak-ng speech at 16 kHz mono, repeated to `minutes`; None if the tools are missing.
fn espeak_speech(dir: &Path, minutes: f64) -> Option<std::path::PathBuf> {
    let once = dir.join("espeak-once.wav");
    let spoke = Command::new("espeak-ng")
        .args(["-v", "ru", "-s", "150", "-w"])
        .arg(&once)
        .arg(
            "Здравствуйте. Вы пришли на приём в жилищное управление. Расскажите, пожалуйста, \
             какой у вас вопрос, и я постараюсь помочь. Для оформления документов нужен \
             паспорт и справка о составе семьи. Подпишите заявление здесь и здесь.",
        )
        .status()
        .is_ok_and(|s| s.success());
    if !spoke {
        return None;
    }
    let once_seconds = hound::WavReader::open(&once)
        .map(|r| r.duration() as f64 / f64::from(r.spec().sample_rate))
        .ok()?;
    let repeats = ((minutes * 60.0) / once_seconds).ceil() as usize;
    let looped = dir.join("espeak-looped.wav");
    let converted = Command::new("sox")
        .arg(&once)
        .args(["-b", "16", "-r", "16000", "-c", "1"])
        .arg(&looped)
        .args(["repeat", &repeats.saturating_sub(1).to_string()])
        .args(["trim", "0", &(minutes * 60.0).to_string()])
        .status()
        .is_ok_and(|s| s.success());
    converted.then_some(looped)
}

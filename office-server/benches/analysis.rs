//! Recording analysis benchmark (issue 17: a 20-minute recording analysed in under 1 s on the
//! 2-core office machine).
//!
//! The recording is the fixture with three known phrases (`visit-segments.3gpp`, 134 s) looped
//! nine times by ffmpeg without re-encoding: 20 min 6 s of AAC-LC in 3GP, what a tablet
//! uploads. `analyse_file` — decode with symphonia, resample, voice activity with earshot,
//! waveform — runs `BENCH_ROUNDS` times (default 7) after one warm-up; the bench prints the
//! median and the fastest, and checks its answer every round: the length within a second and
//! the 27 phrases found, each where the fixture's truth puts it (within 0.3 s). A fast wrong
//! answer fails.
//!
//! Run `cargo bench -p office-server --bench analysis` (needs `ffmpeg` on the PATH).

use std::process::Command;
use std::time::{Duration, Instant};

use office_server::analysis::{Analysis, analyse_file};
use test_support::env_number;

const LOOPS: usize = 9;
const FIXTURE_MS: f64 = 134_026.0;
const TOLERANCE_MS: f64 = 300.0;

fn main() {
    let rounds = env_number("BENCH_ROUNDS", 7).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let long = dir.path().join("twenty-minutes.3gpp");
    let fixture = test_support::fixtures::path("visit-segments.3gpp");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-stream_loop"])
        .arg((LOOPS - 1).to_string())
        .arg("-i")
        .arg(&fixture)
        .args(["-c", "copy", "-f", "3gp"])
        .arg(&long)
        .status()
        .expect("ffmpeg (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg could not loop the fixture");
    let truth = truth();

    check(&analyse_file(&long).expect("the recording decodes"), &truth);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let analysis = analyse_file(&long).expect("the recording decodes");
        times.push(started.elapsed());
        check(&analysis, &truth);
    }
    times.sort();
    let median = times[times.len() / 2];
    let seconds = |d: Duration| d.as_secs_f64();
    println!(
        "analysis of a {:.1}-min recording: median {:.3} s, fastest {:.3} s over {rounds} rounds (goal < 1 s: {})",
        FIXTURE_MS * LOOPS as f64 / 60_000.0,
        seconds(median),
        seconds(times[0]),
        if median < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// The fixture's phrases as (start, end) in ms, from `visit-segments.json`.
fn truth() -> Vec<(f64, f64)> {
    let path = test_support::fixtures::path("visit-segments.json");
    let text = std::fs::read_to_string(&path).expect("visit-segments.json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let spans = value["speech"].as_array().expect("the speech spans");
    spans
        .iter()
        .map(|span| {
            let s = |i: usize| span[i].as_f64().expect("seconds") * 1000.0;
            (s(0), s(1))
        })
        .collect()
}

fn check(analysis: &Analysis, truth: &[(f64, f64)]) {
    let total = FIXTURE_MS * LOOPS as f64;
    assert!(
        (analysis.duration_ms as f64 - total).abs() < 1000.0,
        "length {} ms, expected {total}",
        analysis.duration_ms
    );
    assert_eq!(
        analysis.speech.len(),
        truth.len() * LOOPS,
        "{:?}",
        analysis.speech
    );
    // Copying the stream keeps every copy's AAC priming frames, so each loop lasts a little
    // longer than the fixture (54 ms here): the phrases repeat at the measured period.
    let period = analysis.duration_ms as f64 / LOOPS as f64;
    for (i, found) in analysis.speech.iter().enumerate() {
        let (start, end) = truth[i % truth.len()];
        let offset = period * (i / truth.len()) as f64;
        for (got, want) in [
            (found.start_ms, start + offset),
            (found.end_ms, end + offset),
        ] {
            assert!(
                (got as f64 - want).abs() <= TOLERANCE_MS,
                "phrase {i}: {got} ms, the truth {want} ms"
            );
        }
    }
}

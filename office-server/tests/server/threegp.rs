//! The 3GP validator on real files made by ffmpeg (scripts/make-fixtures.sh), on every kind of
//! file it must refuse, and under proptest fuzzing: it must never panic.

use std::io::Cursor;

use proptest::prelude::*;
use threegp::{InvalidRecording, validate};

const GOOD: &[u8] = test_support::fixtures::VISIT_3GPP;

fn check(bytes: &[u8]) -> Result<threegp::AudioInfo, InvalidRecording> {
    validate(&mut Cursor::new(bytes), bytes.len() as u64)
}

#[test]
fn accepts_aac_in_3gp() {
    let info = check(GOOD).expect("the tablet's format is valid");
    assert!(info.major_brand.starts_with("3gp"), "{info:?}");
    assert_eq!(info.sample_rate, 16_000);
    assert_eq!(info.channels, 1);
    // ffprobe reports 7.525 s for this file.
    assert!((7_400..=7_600).contains(&info.duration_ms), "{info:?}");
}

/// Whether a refusal is the expected one.
type Expected = fn(&InvalidRecording) -> bool;

#[test]
fn refuses_each_other_kind_with_its_reason() {
    let cases: [(&str, &[u8], Expected); 5] = [
        (
            "mp4",
            test_support::fixtures::VISIT_MP4,
            |e| matches!(e, InvalidRecording::NotThreeGp(brand) if brand == "isom"),
        ),
        (
            "m4a",
            test_support::fixtures::VISIT_M4A,
            |e| matches!(e, InvalidRecording::NotThreeGp(brand) if brand == "M4A "),
        ),
        ("wav", test_support::fixtures::VISIT_WAV, |e| {
            matches!(e, InvalidRecording::Wav)
        }),
        ("amr", test_support::fixtures::VISIT_AMR_3GPP, |e| {
            matches!(e, InvalidRecording::Amr)
        }),
        (
            "junk",
            b"this is not audio at all, just some text typed into a file",
            |e| matches!(e, InvalidRecording::NotIsoMedia),
        ),
    ];
    for (name, bytes, expected) in cases {
        let error = check(bytes).expect_err(name);
        assert!(expected(&error), "{name}: {error:?}");
    }
    assert_eq!(check(b""), Err(InvalidRecording::Empty));
}

#[test]
fn refuses_every_truncation() {
    // Every cut of the file, byte by byte near the ends and in steps through the middle.
    let cuts = (1..200)
        .chain((200..GOOD.len() - 200).step_by(7))
        .chain(GOOD.len() - 200..GOOD.len());
    for len in cuts {
        let result = check(&GOOD[..len]);
        assert!(
            result.is_err(),
            "a file cut at {len} of {} bytes was accepted",
            GOOD.len()
        );
    }
}

#[test]
fn refuses_trailing_garbage_and_a_second_file() {
    let mut with_tail = GOOD.to_vec();
    with_tail.extend_from_slice(b"xyz");
    assert!(matches!(
        check(&with_tail),
        Err(InvalidRecording::Truncated(_))
    ));
    let twice = [GOOD, GOOD].concat();
    assert!(matches!(check(&twice), Err(InvalidRecording::Malformed(_))));
}

/// Fuzzing budget per property; the total is printed so the closing note can cite it.
const CASES: u32 = 4_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = check(&bytes);
    }

    #[test]
    fn never_panics_on_a_mutated_recording(
        flips in proptest::collection::vec((0..GOOD.len(), any::<u8>()), 1..12),
        cut in 0..=GOOD.len(),
    ) {
        let mut bytes = GOOD.to_vec();
        for (at, value) in flips {
            bytes[at] = value;
        }
        bytes.truncate(cut.max(1));
        let _ = check(&bytes);
    }

    #[test]
    fn never_panics_on_mutated_box_headers(
        // Box sizes and kinds are where parsers break: aim there.
        at in prop::sample::select(box_header_offsets()),
        size in any::<u32>(),
    ) {
        let mut bytes = GOOD.to_vec();
        bytes[at..at + 4].copy_from_slice(&size.to_be_bytes());
        let _ = check(&bytes);
    }
}

/// Offsets of every box header in the fixture (top level and inside moov).
fn box_header_offsets() -> Vec<usize> {
    let containers: &[&[u8; 4]] = &[
        b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts",
    ];
    let mut found = Vec::new();
    let mut stack = vec![(0usize, GOOD.len())];
    while let Some((mut at, end)) = stack.pop() {
        while at + 8 <= end {
            let size =
                u32::from_be_bytes([GOOD[at], GOOD[at + 1], GOOD[at + 2], GOOD[at + 3]]) as usize;
            if size < 8 || at + size > end {
                break;
            }
            found.push(at);
            let kind = &GOOD[at + 4..at + 8];
            if containers.iter().any(|c| &c[..] == kind) {
                stack.push((at + 8, at + size));
            }
            if kind == b"stsd" {
                // stsd: full box header (4) + entry count (4), then sample entries.
                stack.push((at + 16, at + size));
            }
            at += size;
        }
    }
    found
}

#[test]
fn fuzz_budget_is_reported() {
    let headers = box_header_offsets();
    assert!(
        headers.len() > 10,
        "the walker found only {} boxes",
        headers.len()
    );
    println!(
        "3GP validator fuzzing: {} inputs per run ({CASES} random, {CASES} mutated files, {CASES} mutated box headers over {} headers)",
        3 * CASES,
        headers.len()
    );
}

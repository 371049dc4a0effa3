//! Validation of uploaded recordings: a 3GP file holding exactly one AAC audio track.
//!
//! The top-level boxes are walked here, by seeking, so that the audio payload is never read
//! into memory; the `ftyp` and `moov` boxes are decoded with `mp4-atom`. Every size is checked
//! against the file's real length before it is trusted.

use std::io::{Read, Seek, SeekFrom};

use mp4_atom::{Atom, Codec, Decode, DecodeAtom, FourCC, Ftyp, Header, Moov, StszSamples};

/// The largest `moov` accepted. A two-hour AAC recording needs well under 1 MiB of tables.
const MAX_MOOV_BYTES: u64 = 16 * 1024 * 1024;
/// MPEG-4 Audio in an `esds` (ISO/IEC 14496-1 objectTypeIndication).
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
/// AAC-LC, the audio object type the tablets produce (ISO/IEC 14496-3).
const AUDIO_OBJECT_TYPE_AAC_LC: u8 = 2;

/// AAC sampling frequency indices (ISO/IEC 14496-3, 1.6.3.4).
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// What a valid recording contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInfo {
    pub major_brand: String,
    pub duration_ms: u64,
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecording {
    #[error("the file is empty")]
    Empty,
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("this is a WAV file, not 3GP audio")]
    Wav,
    #[error("this is not an ISO media (3GP/MP4) file")]
    NotIsoMedia,
    #[error("this is an MP4/M4A file (brand {0:?}), not 3GP")]
    NotThreeGp(String),
    #[error("the box structure is invalid: {0}")]
    Malformed(String),
    #[error("the file has no {0} box")]
    Missing(&'static str),
    #[error("expected exactly one track, found {0}")]
    TrackCount(usize),
    #[error("the track is not audio (handler {0:?})")]
    NotAudio(String),
    #[error("AMR audio is refused: no browser plays it; the tablet must send AAC")]
    Amr,
    #[error("the audio is not AAC-LC: {0}")]
    NotAac(String),
    #[error("the recording has no duration")]
    NoDuration,
}

/// Reads the whole structure of a file of `len` bytes and returns what it holds.
pub fn validate<R: Read + Seek>(file: &mut R, len: u64) -> Result<AudioInfo, InvalidRecording> {
    if len == 0 {
        return Err(InvalidRecording::Empty);
    }
    let mut ftyp = None;
    let mut moov = None;
    let mut has_mdat = false;
    let mut offset = 0u64;
    while offset < len {
        let (header, header_len) = read_header(file, offset, len)?;
        if offset == 0 && header.kind != Ftyp::KIND {
            return Err(InvalidRecording::NotIsoMedia);
        }
        let body_len = match header.size {
            Some(size) => size as u64,
            None => len - offset - header_len,
        };
        let end = offset
            .checked_add(header_len)
            .and_then(|start| start.checked_add(body_len))
            .ok_or_else(|| InvalidRecording::Malformed("box size overflows".into()))?;
        if end > len {
            return Err(InvalidRecording::Truncated(format!(
                "box {} at byte {offset} needs {end} bytes, the file has {len}",
                header.kind
            )));
        }
        match header.kind {
            Ftyp::KIND if ftyp.is_none() => {
                let body = read_body(file, body_len, 4096)?;
                ftyp = Some(
                    Ftyp::decode_atom(&header, &mut body.as_slice()).map_err(malformed("ftyp"))?,
                );
            }
            Moov::KIND if moov.is_none() => {
                let body = read_body(file, body_len, MAX_MOOV_BYTES)?;
                moov = Some(
                    Moov::decode_atom(&header, &mut body.as_slice()).map_err(malformed("moov"))?,
                );
            }
            Ftyp::KIND | Moov::KIND => {
                return Err(InvalidRecording::Malformed(format!(
                    "a second {} box",
                    header.kind
                )));
            }
            kind if kind == FourCC::new(b"mdat") => has_mdat = true,
            _ => {}
        }
        offset = end;
    }
    let ftyp = ftyp.ok_or(InvalidRecording::Missing("ftyp"))?;
    check_brand(&ftyp)?;
    let moov = moov.ok_or(InvalidRecording::Missing("moov"))?;
    if !has_mdat {
        return Err(InvalidRecording::Missing("mdat"));
    }
    check_track(&moov, &ftyp, len)
}

/// The box header at `offset`: 8 bytes, or 16 with a 64-bit size.
fn read_header<R: Read + Seek>(
    file: &mut R,
    offset: u64,
    len: u64,
) -> Result<(Header, u64), InvalidRecording> {
    let remaining = len - offset;
    if remaining < 8 {
        return Err(InvalidRecording::Truncated(format!(
            "{remaining} stray bytes at the end"
        )));
    }
    file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
    let mut bytes = [0u8; 16];
    file.read_exact(&mut bytes[..8]).map_err(io_error)?;
    if offset == 0 && &bytes[..4] == b"RIFF" {
        return Err(InvalidRecording::Wav);
    }
    let header_len = if bytes[..4] == [0, 0, 0, 1] { 16 } else { 8 };
    if header_len == 16 {
        if remaining < 16 {
            return Err(InvalidRecording::Truncated(
                "a box header is cut short".into(),
            ));
        }
        file.read_exact(&mut bytes[8..]).map_err(io_error)?;
    }
    let header =
        Header::decode(&mut &bytes[..header_len]).map_err(|_| invalid_header(offset, &bytes))?;
    Ok((header, header_len as u64))
}

fn invalid_header(offset: u64, bytes: &[u8]) -> InvalidRecording {
    if offset == 0 {
        InvalidRecording::NotIsoMedia
    } else {
        InvalidRecording::Malformed(format!(
            "invalid box header at byte {offset}: {:02x?}",
            &bytes[..8]
        ))
    }
}

fn read_body<R: Read>(
    file: &mut R,
    body_len: u64,
    limit: u64,
) -> Result<Vec<u8>, InvalidRecording> {
    if body_len > limit {
        return Err(InvalidRecording::Malformed(format!(
            "a header box of {body_len} bytes is larger than the {limit} allowed"
        )));
    }
    let mut body = vec![0u8; body_len as usize];
    file.read_exact(&mut body).map_err(io_error)?;
    Ok(body)
}

fn check_brand(ftyp: &Ftyp) -> Result<(), InvalidRecording> {
    let is_3gp = |brand: &FourCC| brand.to_string().starts_with("3gp");
    if is_3gp(&ftyp.major_brand) {
        Ok(())
    } else {
        Err(InvalidRecording::NotThreeGp(ftyp.major_brand.to_string()))
    }
}

fn check_track(moov: &Moov, ftyp: &Ftyp, len: u64) -> Result<AudioInfo, InvalidRecording> {
    let [track] = moov.trak.as_slice() else {
        return Err(InvalidRecording::TrackCount(moov.trak.len()));
    };
    let handler = track.mdia.hdlr.handler;
    if handler != FourCC::new(b"soun") {
        return Err(InvalidRecording::NotAudio(handler.to_string()));
    }
    let stbl = &track.mdia.minf.stbl;
    let [codec] = stbl.stsd.codecs.as_slice() else {
        return Err(InvalidRecording::NotAac(format!(
            "{} sample descriptions",
            stbl.stsd.codecs.len()
        )));
    };
    let mp4a = match codec {
        Codec::Mp4a(mp4a) => mp4a,
        Codec::Samr(_) => return Err(InvalidRecording::Amr),
        other => {
            return Err(InvalidRecording::NotAac(
                format!("{other:?}").chars().take(40).collect(),
            ));
        }
    };
    let config = &mp4a.esds.es_desc.dec_config;
    if config.object_type_indication != OBJECT_TYPE_MPEG4_AUDIO {
        return Err(InvalidRecording::NotAac(format!(
            "object type 0x{:02x}",
            config.object_type_indication
        )));
    }
    let specific = config
        .dec_specific
        .as_ref()
        .ok_or_else(|| InvalidRecording::NotAac("no decoder configuration".into()))?;
    if specific.profile != AUDIO_OBJECT_TYPE_AAC_LC {
        return Err(InvalidRecording::NotAac(format!(
            "audio object type {}",
            specific.profile
        )));
    }
    let mdhd = &track.mdia.mdhd;
    let samples = match &stbl.stsz.samples {
        StszSamples::Identical { count, .. } => *count as usize,
        StszSamples::Different { sizes } => sizes.len(),
    };
    if mdhd.timescale == 0 || mdhd.duration == 0 || samples == 0 {
        return Err(InvalidRecording::NoDuration);
    }
    let chunk_beyond_end = match (&stbl.stco, &stbl.co64) {
        (Some(stco), _) => stco.entries.iter().any(|&o| u64::from(o) >= len),
        (None, Some(co64)) => co64.entries.iter().any(|&o| o >= len),
        (None, None) => return Err(InvalidRecording::Missing("stco")),
    };
    if chunk_beyond_end {
        return Err(InvalidRecording::Truncated(
            "audio data points past the end of the file".into(),
        ));
    }
    let duration_ms = u64::try_from(u128::from(mdhd.duration) * 1000 / u128::from(mdhd.timescale))
        .map_err(|_| InvalidRecording::Malformed("duration overflows".into()))?;
    if duration_ms == 0 {
        return Err(InvalidRecording::NoDuration);
    }
    Ok(AudioInfo {
        major_brand: ftyp.major_brand.to_string(),
        duration_ms,
        // The AudioSpecificConfig is what decoders obey; the sample entry's fields are often
        // placeholders (ffmpeg writes 2 channels there for mono).
        sample_rate: SAMPLE_RATES
            .get(usize::from(specific.freq_index))
            .copied()
            .unwrap_or_else(|| u32::from(mp4a.audio.sample_rate.integer())),
        channels: u16::from(specific.chan_conf),
    })
}

fn malformed(what: &'static str) -> impl FnOnce(mp4_atom::Error) -> InvalidRecording {
    move |error| InvalidRecording::Malformed(format!("{what}: {error}"))
}

fn io_error(error: std::io::Error) -> InvalidRecording {
    InvalidRecording::Truncated(error.to_string())
}

//! A spool to AAC-LC in a 3GP file.
//!
//! The WAV is streamed through libxaac (AOSP's AAC encoder, through the project's own safe
//! wrapper in [`aac`] over `libxaac-sys`) a frame at a time, so memory does not grow with the
//! visit's length. The file is laid out `ftyp` | `moov` | `mdat` so that a
//! browser can start playing from the first bytes: the `moov`'s size depends only on the
//! number of frames, which the spool's length fixes in advance, so space is reserved for it,
//! the frames are written, and the real `moov` is written into the reserved space last.
//!
//! Priming: libxaac's AAC-LC output lags its input by 1600 samples (`CORE_DELAY_LC` in
//! libxaac's `ixheaace_rom.h`). An edit list skips them and ends the presentation at the
//! spool's last sample, so players (ffmpeg, Chromium, Firefox) play exactly what was
//! recorded, and ffprobe reports the spool's duration. The media itself (`mdhd`) is whole
//! 1024-sample frames, priming and padding included: up to 164 ms longer.

mod aac;

use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Audio, Codec, Dinf, Dref, Edts, Elst, ElstEntry, Encode, Esds, FixedPoint, FourCC, Ftyp, Hdlr,
    Matrix, Mdhd, Mdia, Minf, Moov, Mp4a, Mvhd, Smhd, Stbl, Stco, Stsc, StscEntry, Stsd, Stsz,
    StszSamples, Stts, SttsEntry, Tkhd, Trak, Url,
};
use sha2::{Digest, Sha256};

use self::aac::{AacLcEncoder, FRAME};
use super::spool::{duration_ms, open_spool, sync_dir, wav_error};
use super::{AudioError, SAMPLE_RATE};

/// The target bit rate: 28 kbit/s is ~12.6 MB an hour of AAC, ~12.8 MB with the container,
/// inside the 15 MB/hour budget, and clearly better than 24 kbit/s on speech (see
/// docs/benchmarks.md).
pub const AAC_BITRATE: u32 = 28_000;
/// libxaac's AAC-LC encoder delay, in samples; the test `priming_is_hidden_by_the_edit_list`
/// checks it against a decoder.
const PRIMING: u64 = 1600;
/// AAC-LC, 16 kHz (frequency index 8), mono: ISO/IEC 14496-3 AudioSpecificConfig.
const AUDIO_OBJECT_TYPE_AAC_LC: u8 = 2;
const FREQUENCY_INDEX_16000: u8 = 8;
const MONO: u8 = 1;
/// MPEG-4 Audio (ISO/IEC 14496-1 objectTypeIndication) and the audio stream type.
const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
const STREAM_TYPE_AUDIO: u8 = 0x05;
/// Seconds from 1904-01-01 (ISO BMFF times) to 1970-01-01.
const EPOCH_1904: u64 = 2_082_844_800;
/// Far beyond the 2-hour visit cap; keeps every size within the 32-bit fields used.
const MAX_SECONDS: u64 = 12 * 3600;

/// A finished 3GP recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecording {
    pub path: PathBuf,
    pub size_bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    pub duration_ms: u64,
}

/// Encodes a WAV spool to AAC-LC 3GP at `out` (written to a temp name, fsynced, renamed).
/// Blocking; the caller runs it on a blocking thread.
///
/// A spool cut short by a crash is repaired first (see [`super::leftover_spools`]); one
/// with no audio, or that is not a spool at all, is refused with an error and nothing is
/// written at `out`. The spool itself is left in place.
pub fn encode_spool(wav: &Path, out: &Path) -> Result<EncodedRecording, AudioError> {
    let mut reader = open_spool(wav)?;
    let samples = u64::from(reader.len());
    if samples / u64::from(SAMPLE_RATE) > MAX_SECONDS {
        return Err(AudioError::TooLong {
            path: wav.to_path_buf(),
            seconds: samples / u64::from(SAMPLE_RATE),
        });
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        fs::create_dir_all(parent)
            .map_err(|e| AudioError::io("creating the recordings directory", parent, e))?;
    }
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".part");
    let tmp = out.with_file_name(tmp_name);
    let started = std::time::Instant::now();
    let written = write_3gp(&mut reader, samples, wav, &tmp);
    let size_bytes = match written {
        Ok(size) => size,
        Err(error) => {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
    };
    fs::rename(&tmp, out).map_err(|e| AudioError::io("renaming the recording to", out, e))?;
    if let Some(parent) = parent {
        sync_dir(parent);
    }
    let sha256 = sha256_file(out)?;
    let duration_ms = duration_ms(samples);
    tracing::info!(
        spool = %wav.display(),
        out = %out.display(),
        duration_ms,
        size_bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "encoded"
    );
    Ok(EncodedRecording {
        path: out.to_path_buf(),
        size_bytes,
        sha256,
        duration_ms,
    })
}

/// Encodes and writes the whole file at `path`; returns its size.
fn write_3gp<R: Read>(
    reader: &mut hound::WavReader<R>,
    samples: u64,
    wav: &Path,
    path: &Path,
) -> Result<u64, AudioError> {
    let mut encoder = AacLcEncoder::new(SAMPLE_RATE, u16::from(MONO), AAC_BITRATE)
        .map_err(|e| AudioError::Encoder(e.to_string()))?;
    let config = match encoder.audio_specific_config() {
        [] => vec![
            (AUDIO_OBJECT_TYPE_AAC_LC << 3) | (FREQUENCY_INDEX_16000 >> 1),
            ((FREQUENCY_INDEX_16000 & 1) << 7) | (MONO << 3),
        ],
        asc => asc.to_vec(),
    };
    // Enough frames that the last input sample, delayed by the priming, is inside one.
    let frames = (samples + PRIMING).div_ceil(FRAME as u64);
    let frame_count = u32::try_from(frames).map_err(|_| AudioError::TooLong {
        path: wav.to_path_buf(),
        seconds: samples / u64::from(SAMPLE_RATE),
    })?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + EPOCH_1904;
    let mut track = Track {
        created: now,
        samples,
        frames: frame_count,
        sizes: vec![0; frames as usize],
        chunk_offset: 0,
        config,
    };

    let ftyp = encode_box(&Ftyp {
        major_brand: FourCC::new(b"3gp4"),
        minor_version: 0,
        compatible_brands: vec![FourCC::new(b"isom"), FourCC::new(b"3gp4")],
    })?;
    let reserved_moov = encode_box(&track.moov())?;
    let mdat_at = (ftyp.len() + reserved_moov.len()) as u64;
    track.chunk_offset = u32::try_from(mdat_at + 8)
        .map_err(|_| AudioError::Container("the moov box is too large".into()))?;

    let io = |e| AudioError::io("writing", path, e);
    let file = File::create(path).map_err(|e| AudioError::io("creating", path, e))?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    out.write_all(&ftyp).map_err(io)?;
    out.write_all(&reserved_moov).map_err(io)?;
    out.write_all(&[0, 0, 0, 0]).map_err(io)?;
    out.write_all(b"mdat").map_err(io)?;

    let mut pcm = [0i16; FRAME];
    let mut source = reader.samples::<i16>();
    let mut payload = 0u64;
    for size in track.sizes.iter_mut() {
        for slot in pcm.iter_mut() {
            // Past the spool's end: silence, to flush the encoder's delay line.
            *slot = match source.next() {
                Some(sample) => sample.map_err(|e| wav_error(wav, e))?,
                None => 0,
            };
        }
        let unit = encoder
            .encode(&pcm)
            .map_err(|e| AudioError::Encoder(e.to_string()))?;
        if unit.is_empty() {
            // Every AAC-LC call yields one access unit; an empty one would shift the timing.
            return Err(AudioError::Encoder(
                "the encoder produced an empty frame".into(),
            ));
        }
        out.write_all(unit).map_err(io)?;
        *size = unit.len() as u32;
        payload += unit.len() as u64;
    }
    let mdat_size = u32::try_from(payload + 8).map_err(|_| AudioError::TooLong {
        path: wav.to_path_buf(),
        seconds: samples / u64::from(SAMPLE_RATE),
    })?;

    let moov = encode_box(&track.moov())?;
    if moov.len() != reserved_moov.len() {
        return Err(AudioError::Container(format!(
            "the moov box came out at {} bytes, {} were reserved",
            moov.len(),
            reserved_moov.len()
        )));
    }
    let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.seek(SeekFrom::Start(ftyp.len() as u64)).map_err(io)?;
    file.write_all(&moov).map_err(io)?;
    file.write_all(&mdat_size.to_be_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(mdat_at + u64::from(mdat_size))
}

/// What the `moov` describes: one AAC-LC track in one chunk.
struct Track {
    created: u64,
    samples: u64,
    frames: u32,
    sizes: Vec<u32>,
    chunk_offset: u32,
    config: Vec<u8>,
}

impl Track {
    fn moov(&self) -> Moov {
        let rate = u64::from(SAMPLE_RATE);
        let payload: u64 = self.sizes.iter().map(|&s| u64::from(s)).sum();
        let media_samples = u64::from(self.frames) * FRAME as u64;
        let avg_bitrate = (payload * 8 * rate / media_samples.max(1)) as u32;
        // The largest number of bits in any second (16 frames ≈ 1.024 s).
        let window = 16.min(self.sizes.len().max(1));
        let max_bytes = self
            .sizes
            .windows(window)
            .map(|w| w.iter().map(|&s| u64::from(s)).sum::<u64>())
            .max()
            .unwrap_or(0);
        let max_bitrate = (max_bytes * 8 * rate / (window as u64 * FRAME as u64)) as u32;
        let largest = self.sizes.iter().copied().max().unwrap_or(0);

        let mp4a = Mp4a {
            audio: Audio {
                data_reference_index: 1,
                channel_count: u16::from(MONO),
                sample_size: 16,
                sample_rate: FixedPoint::from(SAMPLE_RATE as u16),
            },
            esds: Esds {
                es_desc: EsDescriptor {
                    // ISO/IEC 14496-14: ES_ID is 0 in a file's esds.
                    es_id: 0,
                    dec_config: DecoderConfig {
                        object_type_indication: OBJECT_TYPE_MPEG4_AUDIO,
                        stream_type: STREAM_TYPE_AUDIO,
                        up_stream: 0,
                        buffer_size_db: largest.try_into().unwrap_or_default(),
                        max_bitrate,
                        avg_bitrate,
                        dec_specific: Some(DecoderSpecific {
                            profile: AUDIO_OBJECT_TYPE_AAC_LC,
                            freq_index: FREQUENCY_INDEX_16000,
                            chan_conf: MONO,
                            raw: self.config.clone(),
                        }),
                    },
                    sl_config: SLConfig {},
                    ..EsDescriptor::default()
                },
            },
            btrt: None,
            taic: None,
        };
        let stbl = Stbl {
            stsd: Stsd {
                codecs: vec![Codec::Mp4a(mp4a)],
            },
            stts: Stts {
                entries: vec![SttsEntry {
                    sample_count: self.frames,
                    sample_delta: FRAME as u32,
                }],
            },
            stsc: Stsc {
                entries: vec![StscEntry {
                    first_chunk: 1,
                    samples_per_chunk: self.frames,
                    sample_description_index: 1,
                }],
            },
            stsz: Stsz {
                samples: StszSamples::Different {
                    sizes: self.sizes.clone(),
                },
            },
            stco: Some(Stco {
                entries: vec![self.chunk_offset],
            }),
            ..Stbl::default()
        };
        let trak = Trak {
            tkhd: Tkhd {
                creation_time: self.created,
                modification_time: self.created,
                track_id: 1,
                duration: self.samples,
                enabled: true,
                in_movie: true,
                volume: FixedPoint::from(1u8),
                matrix: Matrix::default(),
                ..Tkhd::default()
            },
            edts: Some(Edts {
                elst: Some(Elst {
                    entries: vec![ElstEntry {
                        segment_duration: self.samples,
                        media_time: Some(PRIMING),
                        media_rate: FixedPoint::from(1i16),
                    }],
                }),
            }),
            mdia: Mdia {
                mdhd: Mdhd {
                    creation_time: self.created,
                    modification_time: self.created,
                    timescale: SAMPLE_RATE,
                    duration: media_samples,
                    language: "und".into(),
                },
                hdlr: Hdlr {
                    handler: FourCC::new(b"soun"),
                    name: "SoundHandler".into(),
                },
                minf: Minf {
                    smhd: Some(Smhd::default()),
                    dinf: Dinf {
                        dref: Dref {
                            entries: vec![Url::default().into()],
                        },
                    },
                    stbl,
                    ..Minf::default()
                },
            },
            ..Trak::default()
        };
        Moov {
            mvhd: Mvhd {
                creation_time: self.created,
                modification_time: self.created,
                // The movie's timescale is the sample rate, so the edit is sample-exact.
                timescale: SAMPLE_RATE,
                duration: self.samples,
                rate: FixedPoint::from(1u16),
                volume: FixedPoint::from(1u8),
                matrix: Matrix::default(),
                next_track_id: 2,
            },
            trak: vec![trak],
            ..Moov::default()
        }
    }
}

fn encode_box(atom: &impl Encode) -> Result<Vec<u8>, AudioError> {
    let mut bytes = Vec::new();
    atom.encode(&mut bytes)
        .map_err(|e| AudioError::Container(e.to_string()))?;
    Ok(bytes)
}

fn sha256_file(path: &Path) -> Result<String, AudioError> {
    let mut file = File::open(path).map_err(|e| AudioError::io("reading", path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| AudioError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

//! Downmix to mono and resample to 16 kHz, as a stream: input arrives in pieces of any size,
//! output leaves in pieces, and the resampler's startup delay is trimmed so that the output
//! lines up with the input.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::{AudioError, SAMPLE_RATE};

/// Frames handed to rubato per call; the FFT resampler is fast for any size near this.
const CHUNK: usize = 1024;

pub(crate) struct Conditioner {
    channels: usize,
    resampler: Option<Fft<f32>>,
    ratio: f64,
    /// Mono input not yet resampled.
    pending: Vec<f32>,
    output: Vec<f32>,
    /// Output frames still to drop: the resampler's delay.
    to_trim: usize,
    frames_in: u64,
    frames_out: u64,
}

impl Conditioner {
    pub(crate) fn new(rate_in: u32, channels: u16) -> Result<Self, AudioError> {
        if rate_in == 0 || channels == 0 {
            return Err(AudioError::Resample(format!(
                "invalid input format: {rate_in} Hz, {channels} channels"
            )));
        }
        let (resampler, output, to_trim) = if rate_in == SAMPLE_RATE {
            (None, Vec::new(), 0)
        } else {
            let resampler = Fft::<f32>::new(
                rate_in as usize,
                SAMPLE_RATE as usize,
                CHUNK,
                1,
                FixedSync::Input,
            )
            .map_err(|e| AudioError::Resample(e.to_string()))?;
            let output = vec![0.0; resampler.output_frames_max()];
            let to_trim = resampler.output_delay();
            (Some(resampler), output, to_trim)
        };
        Ok(Conditioner {
            channels: usize::from(channels),
            resampler,
            ratio: f64::from(SAMPLE_RATE) / f64::from(rate_in),
            pending: Vec::with_capacity(CHUNK * 2),
            output,
            to_trim,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Takes interleaved frames (a trailing partial frame is ignored) and passes 16 kHz mono
    /// samples to `sink`.
    pub(crate) fn push(
        &mut self,
        interleaved: &[f32],
        sink: &mut dyn FnMut(&[f32]) -> Result<(), AudioError>,
    ) -> Result<(), AudioError> {
        let channels = self.channels;
        let frames = interleaved.chunks_exact(channels);
        self.frames_in += frames.len() as u64;
        let gain = 1.0 / channels as f32;
        let mono = frames.map(|frame| frame.iter().sum::<f32>() * gain);
        if self.resampler.is_none() {
            self.pending.clear();
            self.pending.extend(mono);
            self.frames_out += self.pending.len() as u64;
            return sink(&self.pending);
        }
        self.pending.extend(mono);
        self.drain(false, sink)
    }

    /// Resamples what is left, padding the last chunk with silence, and stops at the length
    /// the input implies.
    pub(crate) fn finish(
        &mut self,
        sink: &mut dyn FnMut(&[f32]) -> Result<(), AudioError>,
    ) -> Result<(), AudioError> {
        if self.resampler.is_some() {
            self.drain(true, sink)?;
        }
        Ok(())
    }

    fn drain(
        &mut self,
        finishing: bool,
        sink: &mut dyn FnMut(&[f32]) -> Result<(), AudioError>,
    ) -> Result<(), AudioError> {
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        let expected_total = (self.frames_in as f64 * self.ratio).round() as u64;
        let mut consumed = 0;
        // A guard for the flush loop, which ends on output: it cannot spin if none comes.
        let mut idle_calls = 0;
        loop {
            let needed = resampler.input_frames_next();
            let available = self.pending.len() - consumed;
            let indexing = if available >= needed {
                Indexing::new().input_offset(consumed)
            } else if finishing && self.frames_out < expected_total {
                // The last partial chunk, then silence, until the delay has flushed through.
                Indexing::new()
                    .input_offset(consumed)
                    .partial_len(available)
            } else {
                break;
            };
            let input = InterleavedSlice::new(&self.pending, 1, self.pending.len())
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            let capacity = self.output.len();
            let mut output = InterleavedSlice::new_mut(&mut self.output, 1, capacity)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            let (read, written) = resampler
                .process_into_buffer(&input, &mut output, Some(&indexing))
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            consumed += read.min(available);
            let mut produced = &self.output[..written];
            let trim = self.to_trim.min(produced.len());
            produced = &produced[trim..];
            self.to_trim -= trim;
            if finishing {
                let room = expected_total.saturating_sub(self.frames_out) as usize;
                produced = &produced[..produced.len().min(room)];
            }
            self.frames_out += produced.len() as u64;
            if !produced.is_empty() {
                idle_calls = 0;
                sink(produced)?;
            } else if read == 0 {
                idle_calls += 1;
                if idle_calls > 64 {
                    return Err(AudioError::Resample(
                        "the resampler stopped producing output".into(),
                    ));
                }
            }
        }
        self.pending.drain(..consumed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: u32, channels: u16, input: &[f32], piece: usize) -> Vec<f32> {
        let mut conditioner = Conditioner::new(rate, channels).unwrap();
        let mut out = Vec::new();
        let mut sink = |s: &[f32]| {
            out.extend_from_slice(s);
            Ok(())
        };
        for chunk in input.chunks(piece) {
            conditioner.push(chunk, &mut sink).unwrap();
        }
        conditioner.finish(&mut sink).unwrap();
        out
    }

    fn tone(rate: u32, channels: u16, seconds: f32, hz: f32) -> Vec<f32> {
        let frames = (rate as f32 * seconds) as usize;
        (0..frames)
            .flat_map(|i| {
                let v = 0.5 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin();
                std::iter::repeat_n(v, usize::from(channels))
            })
            .collect()
    }

    #[test]
    fn output_length_and_alignment_follow_the_input() {
        for (rate, channels) in [
            (44_100, 2),
            (48_000, 1),
            (22_050, 1),
            (16_000, 2),
            (8_000, 1),
        ] {
            // Odd piece sizes, as a device callback delivers them.
            let input = tone(rate, channels, 1.0, 440.0);
            let out = run(rate, channels, &input, 333 * usize::from(channels));
            assert_eq!(out.len(), 16_000, "{rate} Hz × {channels}");
            // The same tone made directly at 16 kHz: the resampled one must match it in phase
            // (the resampler's delay is trimmed) and level.
            let reference = tone(16_000, 1, 1.0, 440.0);
            let error: f32 = out[400..15_600]
                .iter()
                .zip(&reference[400..15_600])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            // 0.05 is a shift under half a sample at 440 Hz; a whole sample would be 0.086.
            assert!(error < 0.05, "{rate} Hz: max error {error}");
        }
    }

    #[test]
    fn removes_what_16_khz_cannot_hold() {
        // 10 kHz is above the 8 kHz Nyquist limit of the spool: it must not alias back in.
        let out = run(48_000, 1, &tone(48_000, 1, 0.5, 10_000.0), 480);
        let peak = out[200..7_800].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak < 0.01, "aliasing peak {peak}");
    }
}

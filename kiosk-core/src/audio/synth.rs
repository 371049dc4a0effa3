//! Speech-like audio from a seed: voiced syllables (a glottal pulse train through three
//! formant resonators gliding between vowels), fricative noise, word and phrase pauses, and a
//! wandering pitch. It is not speech, but it has speech's spectrum, rhythm and loudness, so the
//! encoder and the spool see realistic work in the simulator, the tests and the benchmark.

use std::f32::consts::PI;

/// Formants (F1, F2, F3 in Hz) of five vowels.
const VOWELS: [[f32; 3]; 5] = [
    [730.0, 1090.0, 2440.0],
    [270.0, 2290.0, 3010.0],
    [300.0, 870.0, 2240.0],
    [530.0, 1840.0, 2480.0],
    [570.0, 840.0, 2410.0],
];
const BANDWIDTHS: [f32; 3] = [90.0, 110.0, 170.0];
/// Output level: speech at a conversational distance from a tablet's microphone.
const GAIN: f32 = 0.25;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Segment {
    Voiced,
    Fricative,
    Pause,
}

/// A deterministic generator of speech-like mono audio.
#[derive(Debug, Clone)]
pub struct SpeechSynth {
    rng: SplitMix64,
    rate: f32,
    segment: Segment,
    remaining: u32,
    length: u32,
    syllables_left: u32,
    words_left: u32,
    f0: f32,
    f0_target: f32,
    phase: f32,
    formants: [f32; 3],
    targets: [f32; 3],
    resonators: [Resonator; 3],
    noise_prev: f32,
    level: f32,
}

impl SpeechSynth {
    pub fn new(seed: u64, sample_rate: u32) -> Self {
        let rate = sample_rate.max(8_000) as f32;
        let mut synth = SpeechSynth {
            rng: SplitMix64(seed),
            rate,
            segment: Segment::Pause,
            remaining: 0,
            length: 1,
            syllables_left: 0,
            words_left: 0,
            f0: 140.0,
            f0_target: 140.0,
            phase: 0.0,
            formants: VOWELS[0],
            targets: VOWELS[0],
            resonators: [Resonator::default(); 3],
            noise_prev: 0.0,
            level: 0.0,
        };
        synth.f0 = 100.0 + 120.0 * synth.rng.unit();
        synth.f0_target = synth.f0;
        synth.next_segment();
        synth
    }

    /// Fills `out` with the next samples, in [-1, 1].
    pub fn fill(&mut self, out: &mut [f32]) {
        for sample in out.iter_mut() {
            if self.remaining == 0 {
                self.next_segment();
            }
            self.remaining -= 1;
            *sample = self.next_sample();
        }
    }

    fn next_sample(&mut self) -> f32 {
        // Raised-cosine envelope over the segment, so syllables swell and fade.
        let progress = 1.0 - self.remaining as f32 / self.length as f32;
        let envelope = (PI * progress).sin().max(0.0).powf(0.6);
        let target_level = match self.segment {
            Segment::Pause => 0.0,
            _ => envelope,
        };
        self.level += (target_level - self.level) * 0.01;

        self.f0 += (self.f0_target - self.f0) * 0.0005;
        for (formant, target) in self.formants.iter_mut().zip(self.targets) {
            *formant += (target - *formant) * 0.002;
        }

        let excitation = match self.segment {
            Segment::Voiced | Segment::Pause => {
                // A glottal pulse: a short, asymmetric bump once per pitch period, plus a
                // little breath noise.
                self.phase += self.f0 / self.rate;
                if self.phase >= 1.0 {
                    self.phase -= 1.0;
                }
                let pulse = if self.phase < 0.4 {
                    (PI * self.phase / 0.4).sin().powi(2)
                } else {
                    0.0
                };
                pulse - 0.25 + 0.05 * self.rng.signed()
            }
            Segment::Fricative => {
                // Differentiated white noise: a hiss with its energy high up, like /s/ or /ʃ/.
                let noise = self.rng.signed();
                let hiss = noise - self.noise_prev;
                self.noise_prev = noise;
                hiss * 0.8
            }
        };

        let mut voiced = 0.0;
        for (i, resonator) in self.resonators.iter_mut().enumerate() {
            let gain = [1.0, 0.6, 0.3][i];
            voiced +=
                gain * resonator.process(excitation, self.formants[i], BANDWIDTHS[i], self.rate);
        }
        let raw = match self.segment {
            Segment::Fricative => excitation * 0.6 + voiced * 0.2,
            _ => voiced,
        };
        (raw * self.level * GAIN).tanh()
    }

    fn next_segment(&mut self) {
        let ms = |synth: &mut SpeechSynth, low: f32, high: f32| {
            ((low + (high - low) * synth.rng.unit()) * synth.rate / 1000.0).max(1.0) as u32
        };
        let (segment, length) = if self.syllables_left > 0 {
            self.syllables_left -= 1;
            if self.rng.unit() < 0.25 && self.segment != Segment::Fricative {
                // A consonant before the next vowel; the syllable itself follows.
                self.syllables_left += 1;
                (Segment::Fricative, ms(self, 40.0, 100.0))
            } else {
                let vowel = VOWELS[(self.rng.next() % VOWELS.len() as u64) as usize];
                self.targets = vowel;
                // Intonation: pitch drifts within a speaker's range, falling at phrase ends.
                let fall = if self.words_left == 0 && self.syllables_left == 0 {
                    0.85
                } else {
                    1.0
                };
                self.f0_target =
                    (self.f0_target * (0.9 + 0.2 * self.rng.unit()) * fall).clamp(85.0, 260.0);
                (Segment::Voiced, ms(self, 110.0, 260.0))
            }
        } else if self.words_left > 0 {
            self.words_left -= 1;
            self.syllables_left = 1 + (self.rng.next() % 4) as u32;
            (Segment::Pause, ms(self, 40.0, 140.0))
        } else {
            self.words_left = 3 + (self.rng.next() % 6) as u32;
            self.syllables_left = 1 + (self.rng.next() % 4) as u32;
            self.f0_target = 110.0 + 100.0 * self.rng.unit();
            (Segment::Pause, ms(self, 250.0, 700.0))
        };
        self.segment = segment;
        self.remaining = length;
        self.length = length;
    }
}

/// A two-pole resonator whose centre frequency may change every sample.
#[derive(Debug, Clone, Copy, Default)]
struct Resonator {
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn process(&mut self, x: f32, frequency: f32, bandwidth: f32, rate: f32) -> f32 {
        let r = (-PI * bandwidth / rate).exp();
        let a1 = 2.0 * r * (2.0 * PI * frequency / rate).cos();
        let a2 = -r * r;
        // Normalised so that each formant peaks at about unit gain whatever its bandwidth.
        let y = (1.0 - r) * x + a1 * self.y1 + a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y * 4.0
    }
}

/// A tiny, well-known PRNG (Steele, Lea, Flood 2014): the generator must give the same audio
/// for the same seed whatever version of `rand` the workspace uses.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// In [-1, 1).
    fn signed(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(samples: &[f32]) -> f32 {
        (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
    }

    #[test]
    fn same_seed_same_audio_and_speech_like_level() {
        let mut a = vec![0.0; 16_000 * 10];
        let mut b = vec![0.0; 16_000 * 10];
        SpeechSynth::new(7, 16_000).fill(&mut a);
        SpeechSynth::new(7, 16_000).fill(&mut b);
        assert!(a == b, "the same seed gave different audio");
        let level = rms(&a);
        assert!((0.02..0.4).contains(&level), "rms {level}");
        assert!(a.iter().all(|s| s.abs() <= 1.0));
        // Speech has pauses: some 100 ms windows are near silent, most are not.
        let windows: Vec<f32> = a.chunks(1600).map(rms).collect();
        let quiet = windows.iter().filter(|&&w| w < level * 0.1).count();
        assert!(
            quiet > 3 && quiet < windows.len() / 2,
            "{quiet} quiet of {}",
            windows.len()
        );
    }

    #[test]
    fn different_seeds_differ() {
        let mut a = vec![0.0; 8_000];
        let mut b = vec![0.0; 8_000];
        SpeechSynth::new(1, 16_000).fill(&mut a);
        SpeechSynth::new(2, 16_000).fill(&mut b);
        assert!(a != b, "different seeds gave the same audio");
    }
}

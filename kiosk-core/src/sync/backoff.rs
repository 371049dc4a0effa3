//! Exponential backoff with full jitter and a cap.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The wait before the next attempt after consecutive failures: a uniformly random duration
/// between zero and `min(cap, base × 2^failures)` ("full jitter"), so that tablets that lost the
/// network together do not come back together.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    rng: StdRng,
}

impl Default for Backoff {
    /// 1 s doubling to at most 5 min.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(5 * 60))
    }
}

impl Backoff {
    /// Jitter drawn from an RNG seeded by the operating system.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self::with_rng(base, cap, rand::make_rng())
    }

    /// The same draws for the same seed: for tests.
    pub fn seeded(base: Duration, cap: Duration, seed: u64) -> Self {
        Self::with_rng(base, cap, StdRng::seed_from_u64(seed))
    }

    fn with_rng(base: Duration, cap: Duration, rng: StdRng) -> Self {
        Self {
            base,
            cap: cap.max(base),
            failures: 0,
            rng,
        }
    }

    /// The longest wait the next failure may draw.
    pub fn ceiling(&self) -> Duration {
        // 2^failures would overflow long after the cap is reached: stop doubling at 2^31.
        let factor = 1u32 << self.failures.min(31);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Counts a failure and draws the wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.rng.random_range(0..=millis))
    }

    /// After a success: the next failure starts again from `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

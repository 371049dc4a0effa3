//! The order of the three rating buttons: a fresh permutation for every visit, drawn from the
//! operating system's random generator, so the specialist cannot learn which position means
//! what.

use rand::TryRng;
use rand::rngs::SysRng;
use shared_model::Rating;

/// The six orders of Хорошо / Средне / Плохо.
pub const ORDERS: [[Rating; 3]; 6] = [
    [Rating::Good, Rating::Medium, Rating::Bad],
    [Rating::Good, Rating::Bad, Rating::Medium],
    [Rating::Medium, Rating::Good, Rating::Bad],
    [Rating::Medium, Rating::Bad, Rating::Good],
    [Rating::Bad, Rating::Good, Rating::Medium],
    [Rating::Bad, Rating::Medium, Rating::Good],
];

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct RandomError(String);

/// One of the six orders, uniformly, from the OS generator (getrandom).
pub fn draw_order() -> Result<[Rating; 3], RandomError> {
    Ok(ORDERS[uniform_below_six()?])
}

/// A uniform number in 0..6 by rejection sampling: 252 is the largest multiple of 6 below 256,
/// so bytes 252..=255 are redrawn rather than folded in with a bias.
fn uniform_below_six() -> Result<usize, RandomError> {
    let mut rng = SysRng;
    loop {
        let mut byte = [0u8; 1];
        rng.try_fill_bytes(&mut byte)
            .map_err(|e| RandomError(e.to_string()))?;
        if byte[0] < 252 {
            return Ok(usize::from(byte[0] % 6));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_is_a_permutation() {
        for order in ORDERS {
            for rating in Rating::ALL {
                assert_eq!(order.iter().filter(|r| **r == rating).count(), 1);
            }
        }
    }

    /// Chi-square goodness of fit of 60,000 draws from the real OS generator against the
    /// uniform distribution over the six orders. Five degrees of freedom; the critical value
    /// at significance 1e-6 is 35.89, so a fair generator fails this once in a million runs,
    /// while a bias of a few percent on one order fails it every time.
    #[test]
    fn all_six_orders_come_up_evenly() {
        const DRAWS: usize = 60_000;
        const CRITICAL_5_DOF_1E6: f64 = 35.888;
        let mut counts = [0usize; 6];
        for _ in 0..DRAWS {
            let order = draw_order().expect("OS random generator");
            let index = ORDERS
                .iter()
                .position(|o| *o == order)
                .expect("a known order");
            counts[index] += 1;
        }
        let expected = DRAWS as f64 / 6.0;
        let chi_square: f64 = counts
            .iter()
            .map(|&observed| (observed as f64 - expected).powi(2) / expected)
            .sum();
        println!("button orders over {DRAWS} draws: {counts:?}, chi-square {chi_square:.2}");
        assert!(
            chi_square < CRITICAL_5_DOF_1E6,
            "orders are not uniform: {counts:?}, chi-square {chi_square:.2}"
        );
    }
}

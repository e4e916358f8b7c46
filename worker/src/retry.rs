//! Retry policy: which failures get another attempt, and when.

use std::time::Duration;

use rand::Rng;

/// Backoff settings in seconds: the delay before retry n (n = 1 after the first
/// failed attempt) is drawn uniformly from `[0, min(cap, base * 2^(n-1))]`
/// ("full jitter", which spreads retries of many failing tasks apart).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Seconds; the upper bound of the first delay.
    pub base: f64,
    /// Seconds; no delay is longer.
    pub cap: f64,
}

impl Backoff {
    /// Upper bound of the delay after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: i32) -> f64 {
        let exp = (attempt.max(1) - 1).min(62);
        (self.base * 2f64.powi(exp)).min(self.cap).max(0.0)
    }

    /// A delay drawn with full jitter for failed attempt `attempt`.
    pub fn delay(&self, attempt: i32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let secs = if ceiling > 0.0 { rng.gen_range(0.0..=ceiling) } else { 0.0 };
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff { base: 0.5, cap: 3.0 };
        assert_eq!([1, 2, 3, 4, 5].map(|n| b.ceiling(n)), [0.5, 1.0, 2.0, 3.0, 3.0]);
        assert_eq!(b.ceiling(1000), 3.0);
    }

    #[test]
    fn delays_stay_within_their_ceiling() {
        let b = Backoff { base: 1.0, cap: 60.0 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 1..10 {
            for _ in 0..100 {
                assert!(b.delay(n, &mut rng).as_secs_f64() <= b.ceiling(n));
            }
        }
    }
}

//! Retry policy: which failures get another attempt, and when.

use std::time::Duration;

use rand::Rng;
use yadtq_core::model::TaskError;
use yadtq_core::store::tasks::Outcome;

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

/// Whether another attempt of a failed one could succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A later attempt may succeed (a timeout, a handler error marked retryable, a lost worker).
    Allowed,
    /// It would fail the same way (unknown task, invalid arguments, result too large).
    Never,
}

/// The outcome of failed attempt `attempt` (1-based) of a task that allows
/// `max_retries` retries: another attempt after a `backoff` delay while
/// attempts remain and the failure allows one, else `failed`.
pub fn after_failure(
    error: TaskError,
    retry: Retry,
    attempt: i32,
    max_retries: i32,
    backoff: Backoff,
    rng: &mut impl Rng,
) -> Outcome {
    if retry == Retry::Allowed && attempt <= max_retries {
        Outcome::Retry { error, delay: backoff.delay(attempt, rng) }
    } else {
        Outcome::Failed(error)
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
    fn a_failure_is_retried_only_while_attempts_remain_and_it_allows_one() {
        let b = Backoff { base: 2.0, cap: 10.0 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let err = || TaskError::new("handler_error", "boom");
        let mut decide = |retry, attempt, max| after_failure(err(), retry, attempt, max, b, &mut rng);
        // max_retries 2: attempts 1 and 2 may retry, attempt 3 is the last.
        for attempt in [1, 2] {
            match decide(Retry::Allowed, attempt, 2) {
                Outcome::Retry { error, delay } => {
                    assert_eq!(error, err());
                    assert!(delay.as_secs_f64() <= b.ceiling(attempt));
                }
                other => panic!("attempt {attempt}: expected a retry, got {other:?}"),
            }
        }
        assert!(matches!(decide(Retry::Allowed, 3, 2), Outcome::Failed(e) if e == err()));
        assert!(matches!(decide(Retry::Never, 1, 5), Outcome::Failed(_)));
        assert!(matches!(decide(Retry::Allowed, 1, 0), Outcome::Failed(_)));
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

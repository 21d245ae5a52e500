//! What one run measured, whoever generated the load (wrk or the login driver).

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Completed requests (or logins), errors included.
    pub requests: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// Failed requests: socket errors, timeouts and answers other than 2xx/3xx.
    pub errors: u64,
}

impl Measurement {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        let ok = self.requests.saturating_sub(self.errors) as f64;
        ok / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The round with the median rate (and its index), carrying the errors
    /// of every round: an error in any round must show.
    pub fn median(rounds: &[Measurement]) -> (Measurement, usize) {
        let mut order: Vec<usize> = (0..rounds.len()).collect();
        order.sort_by(|&a, &b| rounds[a].rate().total_cmp(&rounds[b].rate()));
        let middle = order[order.len() / 2];
        let mut median = rounds[middle].clone();
        let others: u64 = rounds
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != middle)
            .map(|(_, r)| r.errors)
            .sum();
        median.errors += others;
        median.requests += others;
        (median, middle)
    }

    /// A measurement from individual latencies (nearest-rank percentiles).
    pub fn from_samples(mut latencies: Vec<Duration>, errors: u64, elapsed: Duration) -> Self {
        latencies.sort();
        let pick = |p: f64| -> Duration {
            if latencies.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
            latencies[rank.clamp(1, latencies.len()) - 1]
        };
        Measurement {
            requests: latencies.len() as u64 + errors,
            elapsed,
            p50: pick(50.0),
            p99: pick(99.0),
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_counts_only_successes() {
        let m = Measurement {
            requests: 1010,
            elapsed: Duration::from_secs(10),
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            errors: 10,
        };
        assert_eq!(m.rate(), 100.0);
    }

    #[test]
    fn median_round_with_every_rounds_errors() {
        let round = |requests: u64, errors: u64| Measurement {
            requests,
            elapsed: Duration::from_secs(1),
            p50: Duration::from_micros(requests),
            p99: Duration::ZERO,
            errors,
        };
        let (m, i) = Measurement::median(&[round(300, 0), round(100, 2), round(200, 1)]);
        assert_eq!(i, 2);
        assert_eq!(
            m.p50,
            Duration::from_micros(200),
            "the median round's latencies"
        );
        assert_eq!((m.errors, m.rate()), (3, 199.0));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_millis).collect();
        let m = Measurement::from_samples(samples, 3, Duration::from_secs(2));
        assert_eq!(m.requests, 203);
        assert_eq!(m.p50, Duration::from_millis(100));
        assert_eq!(m.p99, Duration::from_millis(198));
        let empty = Measurement::from_samples(Vec::new(), 0, Duration::from_secs(1));
        assert_eq!((empty.p50, empty.rate()), (Duration::ZERO, 0.0));
    }
}

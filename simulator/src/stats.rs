//! Live statistics of a simulator run: counters (atomics, read by the progress line) and
//! latency histograms (HdrHistogram, microseconds, 3 significant digits).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest latency the histograms record exactly (longer ones are clamped to it).
const MAX_MICROS: u64 = 120_000_000;

/// Counters and histograms shared by every conversation of a run.
#[derive(Debug)]
pub struct Stats {
    /// POSTs attempted (retries included).
    pub posts: AtomicU64,
    /// Events accepted by the ingress (202 `accepted`).
    pub accepted: AtomicU64,
    /// Events answered (successful callback) before `expires`.
    pub answered: AtomicU64,
    /// Accepted events whose callback came after `expires` while the conversation waited.
    pub late: AtomicU64,
    /// Accepted events without any callback by `expires` (the conversation moved on).
    pub expired: AtomicU64,
    /// Events never accepted by their deadline (the ingress refused or failed every try).
    pub not_accepted: AtomicU64,
    /// Sends of the open loop that found no idle conversation at their scheduled time.
    pub rate_not_sustained: AtomicU64,
    /// Conversations begun and played to their end.
    pub conversations_started: AtomicU64,
    /// Conversations played to their end.
    pub conversations_completed: AtomicU64,
    /// Events sent and not yet resolved.
    pub in_flight: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Scheduled (open loop) or actual (closed loop) send to callback arrival.
    latency: Mutex<Histogram<u64>>,
    /// Actual send to callback arrival (differs from `latency` in the open loop).
    service: Mutex<Histogram<u64>>,
    /// The POST to the ingress alone (until 202).
    post: Mutex<Histogram<u64>>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn record(histogram: &Mutex<Histogram<u64>>, value: Duration) {
    let micros = u64::try_from(value.as_micros())
        .unwrap_or(MAX_MICROS)
        .clamp(1, MAX_MICROS);
    lock(histogram).saturating_record(micros);
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            posts: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            late: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            not_accepted: AtomicU64::new(0),
            rate_not_sustained: AtomicU64::new(0),
            conversations_started: AtomicU64::new(0),
            conversations_completed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(histogram()),
            service: Mutex::new(histogram()),
            post: Mutex::new(histogram()),
        }
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Recorded values.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

fn percentiles(histogram: &Histogram<u64>) -> Percentiles {
    let ms = |micros: u64| micros as f64 / 1000.0;
    if histogram.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: histogram.len(),
        mean_ms: histogram.mean() / 1000.0,
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
    }
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (Linux;
/// `None` elsewhere).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here; in clock ticks
    // of 1/100 s on Linux.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Adds one to an atomic counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads an atomic counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Stats {
    /// Counts one error of `kind` (e.g. `http_503_unavailable`, `connect`).
    pub fn error(&self, kind: &str) {
        *lock(&self.errors).entry(kind.to_string()).or_default() += 1;
    }

    /// Errors by kind so far.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.errors).clone()
    }

    /// Total errors so far.
    pub fn error_total(&self) -> u64 {
        lock(&self.errors).values().sum()
    }

    /// Records an answer latency (and the service latency, from the actual send).
    pub fn record_answer(&self, latency: Duration, service: Duration) {
        record(&self.latency, latency);
        record(&self.service, service);
    }

    /// Records how long the ingress took to accept an event.
    pub fn record_post(&self, took: Duration) {
        record(&self.post, took);
    }

    /// Answer latency percentiles.
    pub fn latency(&self) -> Percentiles {
        percentiles(&lock(&self.latency))
    }

    /// Service latency percentiles (from the actual send).
    pub fn service(&self) -> Percentiles {
        percentiles(&lock(&self.service))
    }

    /// Ingress POST latency percentiles.
    pub fn post(&self) -> Percentiles {
        percentiles(&lock(&self.post))
    }

    /// The 99th percentile answer latency so far, in milliseconds (for the progress line).
    pub fn p99_ms(&self) -> f64 {
        lock(&self.latency).value_at_quantile(0.99) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let stats = Stats::default();
        for ms in 1..=100 {
            stats.record_answer(Duration::from_millis(ms), Duration::from_millis(ms));
        }
        let p = stats.latency();
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 50.0).abs() < 0.5, "{p:?}");
        assert!((p.max_ms - 100.0).abs() < 0.5, "{p:?}");
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let stats = Stats::default();
        stats.error("connect");
        stats.error("connect");
        stats.error("http_503_unavailable");
        assert_eq!(stats.errors().get("connect"), Some(&2));
        assert_eq!(stats.error_total(), 3);
    }
}

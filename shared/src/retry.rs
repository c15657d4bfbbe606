//! Trying again: the one mechanism every retrying path of the services uses (setting up NATS
//! resources, reading answer records, delivering callbacks, re-opening partitions).
//!
//! [`Backoff`] gives exponentially growing, jittered pauses (jitter spreads out the retries of
//! many events that failed at the same moment); [`retry`] runs an attempt until it succeeds,
//! fails permanently, would run past a deadline, or is cancelled.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Exponentially growing pauses with jitter: each pause lies between half the current step and
/// the step, and the step doubles up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Pauses starting near `initial`, growing to at most `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Self {
            initial,
            max: max.max(initial),
            step: initial,
        }
    }

    /// The next pause (the step, jittered down by up to half), then doubles the step.
    pub fn next_pause(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::rng().random_range(0..=jitter_nanos))
    }

    /// Starts again from the initial step (after a success).
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

/// What a failed attempt means for the next one.
#[derive(Debug)]
pub enum Failure<E> {
    /// Trying again may succeed (a timeout, a connection error, a 5xx).
    Transient(E),
    /// Trying again cannot help (a 4xx, an invalid request).
    Permanent(E),
}

/// Why [`retry`] stopped without a success; each variant carries the last error, if any.
#[derive(Debug)]
pub enum GaveUp<E> {
    /// An attempt failed permanently.
    Permanent(E),
    /// The next attempt would have started after the deadline.
    Deadline(E),
    /// The cancellation token fired.
    Cancelled(Option<E>),
}

impl<E> GaveUp<E> {
    /// The last error, if an attempt was made.
    pub fn into_last_error(self) -> Option<E> {
        match self {
            GaveUp::Permanent(e) | GaveUp::Deadline(e) => Some(e),
            GaveUp::Cancelled(e) => e,
        }
    }
}

/// When [`retry`] must stop trying.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits<'a> {
    /// No attempt starts at or after this instant.
    pub deadline: Option<Instant>,
    /// Stops (between attempts, or during a pause) when cancelled.
    pub cancel: Option<&'a CancellationToken>,
}

impl<'a> Limits<'a> {
    /// Until `deadline`.
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            cancel: None,
        }
    }

    /// Until `cancel` fires.
    pub fn until_cancelled(cancel: &'a CancellationToken) -> Self {
        Self {
            deadline: None,
            cancel: Some(cancel),
        }
    }
}

/// Runs `attempt` (given the attempt number, from 1) until it succeeds, pausing per `backoff`
/// between failures. Stops early on a permanent failure, when the next attempt would start after
/// the deadline, or when cancelled.
pub async fn retry<T, E, F, Fut>(
    mut backoff: Backoff,
    limits: Limits<'_>,
    mut attempt: F,
) -> Result<T, GaveUp<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let mut number = 0u32;
    loop {
        if limits.cancel.is_some_and(CancellationToken::is_cancelled) {
            return Err(GaveUp::Cancelled(None));
        }
        number = number.saturating_add(1);
        let error = match attempt(number).await {
            Ok(value) => return Ok(value),
            Err(Failure::Permanent(error)) => return Err(GaveUp::Permanent(error)),
            Err(Failure::Transient(error)) => error,
        };
        let pause = backoff.next_pause();
        if limits
            .deadline
            .is_some_and(|deadline| Instant::now() + pause >= deadline)
        {
            return Err(GaveUp::Deadline(error));
        }
        match limits.cancel {
            Some(cancel) => {
                tokio::select! {
                    () = cancel.cancelled() => return Err(GaveUp::Cancelled(Some(error))),
                    () = tokio::time::sleep(pause) => {}
                }
            }
            None => tokio::time::sleep(pause).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_with_jitter_and_stay_capped() {
        for _ in 0..200 {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
            let first = backoff.next_pause();
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let second = backoff.next_pause();
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&second));
            for _ in 0..10 {
                backoff.next_pause();
            }
            let capped = backoff.next_pause();
            assert!((Duration::from_millis(400)..=Duration::from_millis(800)).contains(&capped));
            backoff.reset();
            assert!(backoff.next_pause() <= Duration::from_millis(100));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let result: Result<u32, GaveUp<&str>> = retry(
            Backoff::new(Duration::from_millis(10), Duration::from_millis(40)),
            Limits::default(),
            |n| async move {
                if n < 4 {
                    Err(Failure::Transient("not yet"))
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(result.ok(), Some(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_stops_at_once() {
        let mut calls = 0;
        let result: Result<(), GaveUp<&str>> = retry(
            Backoff::new(Duration::from_millis(10), Duration::from_millis(40)),
            Limits::default(),
            |_| {
                calls += 1;
                async { Err(Failure::Permanent("refused")) }
            },
        )
        .await;
        assert!(matches!(result, Err(GaveUp::Permanent("refused"))));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_after_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(300);
        let result: Result<(), GaveUp<Instant>> = retry(
            Backoff::new(Duration::from_millis(50), Duration::from_millis(100)),
            Limits::until(deadline),
            |_| async { Err(Failure::Transient(Instant::now())) },
        )
        .await;
        match result {
            Err(GaveUp::Deadline(last_attempt)) => assert!(last_attempt < deadline),
            other => panic!("expected a deadline stop, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_during_a_pause() {
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            stopper.cancel();
        });
        let result: Result<(), GaveUp<&str>> = retry(
            Backoff::new(Duration::from_secs(1), Duration::from_secs(1)),
            Limits::until_cancelled(&cancel),
            |_| async { Err(Failure::Transient("down")) },
        )
        .await;
        assert!(matches!(result, Err(GaveUp::Cancelled(Some("down")))));
    }
}

//! Fault schedules: what a campaign round does to the pipeline while the load runs, drawn at
//! random from a seed (so a failing round can be replayed exactly) or written out by hand (the
//! rounds CI runs).
//!
//! A schedule is a list of steps run one after the other; a step is one fault, or two at once
//! (they start together and overlap). A step ends when its faults are over: a killed node is
//! back and every RAFT group is current again, a killed or stopped worker is replaced, a scaled
//! set of workers is back to its size. At most one node is down at a time, so every RAFT group
//! keeps its quorum (two nodes of three down would stop the cluster, which is no fault the
//! pipeline can mask).

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A RAFT group whose leader is asked to step down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The event stream.
    Events,
    /// The consumer of one partition.
    Consumer(u16),
    /// The answers bucket's stream.
    Answers,
}

/// One fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// `kill -9` of NATS node `node` (0-based), restarted after `down_for`.
    NodeKill { node: usize, down_for: Duration },
    /// The leader of `group` steps down (a new one is elected; the consumers' pins reset).
    StepDown { group: Group },
    /// `kill -9` of a worker (the `pick`-th live one, modulo their number), replaced by a new
    /// one after `replace_after`.
    WorkerKill {
        pick: usize,
        replace_after: Duration,
    },
    /// SIGTERM to a worker, replaced by a new one `replace_after` after it exited.
    WorkerStop {
        pick: usize,
        replace_after: Duration,
    },
    /// More workers until there are `to`, for `hold`, then the added ones stop (SIGTERM).
    Scale { to: usize, hold: Duration },
}

/// Faults started together after a pause.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Pause after the previous step ended (or after the load started).
    pub pause: Duration,
    /// One fault, or two at once.
    pub faults: Vec<Fault>,
}

/// A round's faults and the workers it starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Workers running when the load starts.
    pub workers: usize,
    pub steps: Vec<Step>,
}

impl Schedule {
    /// A schedule drawn from `seed`: 2 or 3 steps, each one fault or (two times in five) two at
    /// once, the kinds at random; a round that scales starts with one worker (1 → 3 → 1).
    pub fn random(seed: u64, partitions: u16) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let steps: Vec<Step> = (0..rng.random_range(2..=3))
            .map(|_| {
                let pause = millis(&mut rng, 1_500..4_000);
                let first = random_fault(&mut rng, partitions);
                let mut faults = vec![first];
                if rng.random_bool(0.4) {
                    // A second fault at once, but never a second node down or a second scaling.
                    let second = loop {
                        let fault = random_fault(&mut rng, partitions);
                        if !same_kind_that_must_not_overlap(&faults[0], &fault) {
                            break fault;
                        }
                    };
                    faults.push(second);
                }
                Step { pause, faults }
            })
            .collect();
        let scales = steps
            .iter()
            .flat_map(|s| &s.faults)
            .any(|f| matches!(f, Fault::Scale { .. }));
        let workers = if scales { 1 } else { rng.random_range(1..=2) };
        Schedule { workers, steps }
    }

    /// Whether some step has two faults at once.
    pub fn overlaps(&self) -> bool {
        self.steps.iter().any(|s| s.faults.len() > 1)
    }
}

fn millis(rng: &mut StdRng, range: std::ops::Range<u64>) -> Duration {
    Duration::from_millis(rng.random_range(range))
}

fn random_fault(rng: &mut StdRng, partitions: u16) -> Fault {
    match rng.random_range(0..100) {
        0..30 => Fault::NodeKill {
            node: rng.random_range(0..3),
            down_for: millis(rng, 1_000..5_000),
        },
        30..50 => Fault::StepDown {
            group: match rng.random_range(0..5) {
                0 | 1 => Group::Events,
                2 | 3 => Group::Consumer(rng.random_range(0..partitions.max(1))),
                _ => Group::Answers,
            },
        },
        50..70 => Fault::WorkerKill {
            pick: rng.random_range(0..3),
            replace_after: millis(rng, 0..2_000),
        },
        70..85 => Fault::WorkerStop {
            pick: rng.random_range(0..3),
            replace_after: millis(rng, 0..2_000),
        },
        _ => Fault::Scale {
            to: 3,
            hold: millis(rng, 2_000..6_000),
        },
    }
}

fn same_kind_that_must_not_overlap(a: &Fault, b: &Fault) -> bool {
    matches!(
        (a, b),
        (Fault::NodeKill { .. }, Fault::NodeKill { .. })
            | (Fault::Scale { .. }, Fault::Scale { .. })
    )
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Events => write!(f, "event stream"),
            Group::Consumer(p) => write!(f, "consumer of partition {p}"),
            Group::Answers => write!(f, "answers bucket"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::NodeKill { node, down_for } => {
                write!(f, "kill -9 n{} (down {})", node + 1, seconds(*down_for))
            }
            Fault::StepDown { group } => write!(f, "{group} leader steps down"),
            Fault::WorkerKill {
                pick,
                replace_after,
            } => write!(
                f,
                "kill -9 worker #{pick} (replaced after {})",
                seconds(*replace_after)
            ),
            Fault::WorkerStop {
                pick,
                replace_after,
            } => write!(
                f,
                "SIGTERM worker #{pick} (replaced after {})",
                seconds(*replace_after)
            ),
            Fault::Scale { to, hold } => write!(f, "scale to {to} workers for {}", seconds(*hold)),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} worker(s)", self.workers)?;
        for step in &self.steps {
            let faults: Vec<String> = step.faults.iter().map(ToString::to_string).collect();
            write!(f, "; +{} {}", seconds(step.pause), faults.join(" + "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_draws_the_same_schedule() {
        assert_eq!(Schedule::random(7, 64), Schedule::random(7, 64));
        let differ = (0..20).any(|seed| Schedule::random(seed, 64) != Schedule::random(7, 64));
        assert!(differ);
    }

    #[test]
    fn schedules_never_take_two_nodes_down_or_scale_twice_at_once_and_scaling_starts_from_one() {
        let mut overlapping = 0;
        let mut kinds = std::collections::HashSet::new();
        for seed in 0..500 {
            let schedule = Schedule::random(seed, 64);
            assert!((2..=3).contains(&schedule.steps.len()), "{schedule}");
            overlapping += usize::from(schedule.overlaps());
            for step in &schedule.steps {
                assert!(matches!(step.faults.len(), 1 | 2), "{schedule}");
                if let [a, b] = step.faults.as_slice() {
                    assert!(!same_kind_that_must_not_overlap(a, b), "{schedule}");
                }
                for fault in &step.faults {
                    kinds.insert(std::mem::discriminant(fault));
                    if matches!(fault, Fault::Scale { .. }) {
                        assert_eq!(schedule.workers, 1, "{schedule}");
                    }
                }
            }
        }
        assert_eq!(kinds.len(), 5, "every kind of fault is drawn");
        assert!(
            overlapping > 100,
            "two faults at once are common: {overlapping} of 500"
        );
    }
}

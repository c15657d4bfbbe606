//! A few rounds of the fault campaign (`scripts/fault-campaign.sh` runs many, randomised), with
//! fixed schedules so that CI always covers the same faults: a 3-node NATS cluster, the real
//! `ingress` and `worker` binaries, a Salted CX-like load, and faults one at a time and two at
//! once. Each round must lose nothing acknowledged, answer every conversation in order, never
//! answer an event twice differently, and never answer after `expires`. The verdict does not
//! depend on timing: only on what was answered, in which order.

use std::time::Duration;

use anyhow::Result;
use testkit::faults::campaign::{self, Fault, Group, RoundSpec, Schedule, Step};

fn step(pause_ms: u64, faults: Vec<Fault>) -> Step {
    Step {
        pause: Duration::from_millis(pause_ms),
        faults,
    }
}

async fn round(number: usize, schedule: Schedule) -> Result<()> {
    testkit::faults::init_test_logging();
    let report = campaign::run_round(number, None, schedule, &RoundSpec::default(), None).await?;
    println!("{report}\n{}", report.timeline.join("\n"));
    assert!(report.passed(), "{report}");
    assert!(report.audit.acknowledged > 0, "{report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_one_at_a_time_node_crash_worker_crash_and_consumer_leader_change_lose_and_reorder_nothing()
-> Result<()> {
    let schedule = Schedule {
        workers: 2,
        steps: vec![
            step(
                1_000,
                vec![Fault::NodeKill {
                    node: 0,
                    down_for: Duration::from_secs(3),
                }],
            ),
            step(
                1_500,
                vec![Fault::WorkerKill {
                    pick: 0,
                    replace_after: Duration::from_millis(500),
                }],
            ),
            step(
                1_500,
                vec![Fault::StepDown {
                    group: Group::Consumer(7),
                }],
            ),
        ],
    };
    round(1, schedule).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_faults_at_once_scaling_one_to_three_to_one_during_a_node_crash_and_a_stop_during_a_stream_leader_change_lose_and_reorder_nothing()
-> Result<()> {
    let schedule = Schedule {
        workers: 1,
        steps: vec![
            step(
                1_000,
                vec![
                    Fault::Scale {
                        to: 3,
                        hold: Duration::from_secs(3),
                    },
                    Fault::NodeKill {
                        node: 1,
                        down_for: Duration::from_secs(2),
                    },
                ],
            ),
            step(
                1_500,
                vec![
                    Fault::WorkerStop {
                        pick: 0,
                        replace_after: Duration::from_millis(500),
                    },
                    Fault::StepDown {
                        group: Group::Events,
                    },
                ],
            ),
        ],
    };
    round(2, schedule).await
}

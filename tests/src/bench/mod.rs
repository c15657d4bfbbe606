//! Baselines for the pipeline benchmark (`tests/bench/run.sh`), run by the `bench-baselines`
//! binary on the same machine as the pipeline run:
//!
//! - [`jetstream`]: raw JetStream publish + consume of the same event payloads, with the same
//!   headers and de-duplication id as the ingress (what NATS alone can do);
//! - [`http`]: a trivial axum endpoint ([`http::serve`]) under the same HTTP load as the
//!   ingress ([`http::load`]: the simulator's HTTP client, the same event bodies);
//! - [`summary`]: reads the run's JSON files and the RSS samples, prints the ratios and whether
//!   each service's memory stayed flat.

pub mod http;
pub mod jetstream;
pub mod summary;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;

use saltedcx_sim::conversation::Conversation;
use saltedcx_sim::scenario;

/// `count` event bodies of about `size` bytes from the built-in scenarios, as the simulator
/// sends them.
pub fn payloads(count: usize, size: usize) -> Result<Vec<Bytes>> {
    let scenarios = scenario::builtin()?;
    let mut out = Vec::with_capacity(count);
    'outer: for scenario in scenarios.iter().cycle() {
        let mut conversation = Conversation::new(scenario);
        for step in &scenario.steps {
            if out.len() == count {
                break 'outer;
            }
            if let Some(event) = conversation.event(step, Duration::from_secs(15), size) {
                out.push(Bytes::from(event.body));
            }
        }
    }
    Ok(out)
}

/// Writes `value` as pretty JSON to `path` (creating its directory).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_requested_size_and_are_valid_events() {
        let bodies = payloads(30, 3072).expect("payloads");
        assert_eq!(bodies.len(), 30);
        for body in &bodies {
            assert!(body.len() <= 3072 && body.len() > 2900, "{}", body.len());
            assert!(shared::event::Event::from_json(body).is_ok());
        }
    }
}

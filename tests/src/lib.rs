//! `testkit`: what the integration tests need to run the pipeline for real.
//!
//! - [`nats_server::NatsServer`] / [`nats_cluster::NatsCluster`]: real `nats-server` processes
//!   with JetStream on free loopback ports, with their own store dirs, removed on drop; the
//!   pinned binary is installed on first use by `scripts/install-nats-server.sh`.
//! - [`fake_saltedcx::FakeSaltedCx`]: the Salted CX callback API on a loopback port, recording
//!   every call and answering as scripted (failures, delays, resets, refused connections).
//! - [`fake_model::FakeModel`]: an OpenAI-compatible chat-completions server on a loopback port,
//!   answering as scripted, for the generative step.
//! - [`golden`]: the golden conversations of `tests/golden/` (scripts, their events, the
//!   expected replies), played by the logic directly and through the pipeline.
//! - [`events::EventBuilder`]: valid Salted CX events as JSON, adjustable field by field.
//! - [`otlp::OtlpReceiver`]: an OTLP/HTTP trace receiver (a stand-in collector) on a loopback
//!   port, keeping the spans the services export.
//! - [`poll`]: waiting for effects with a deadline instead of sleeping, and free ports.
//! - [`faults`]: fault-injection helpers: bounded load with a ledger, the audit of every
//!   acknowledged event, the real binaries as processes.
//! - [`bench`]: the baselines and summary of the benchmark (`tests/bench/run.sh`).
//! - [`webdriver`]: headless Chromium driven over WebDriver, for the studio's browser test.

pub mod bench;
pub mod events;
pub mod fake_model;
pub mod fake_saltedcx;
pub mod faults;
pub mod golden;
pub mod killable;
pub mod nats_cluster;
pub mod nats_server;
pub mod otlp;
pub mod poll;
mod process;
pub mod stack;
pub mod webdriver;

pub use events::EventBuilder;
pub use fake_saltedcx::{Behaviour, Callback, FakeSaltedCx, Outcome, Reply};
pub use nats_cluster::NatsCluster;
pub use nats_server::{NatsOptions, NatsServer};
pub use poll::{free_port, wait_until};
pub use process::{nats_server_binary, workspace_root};

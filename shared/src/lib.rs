//! What the ingress and the worker share: the Salted CX event and answer model, configuration,
//! the NATS topology, deadlines, and telemetry (logs, metrics, traces).

pub mod admission;
pub mod answer;
pub mod config;
pub mod custom;
pub mod deadline;
pub mod envelope;
pub mod event;
pub mod health;
pub mod nats;
pub mod otel;
pub mod parse;
pub mod queue;
pub mod retry;
pub mod secret;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod tolerant;
pub mod topology;

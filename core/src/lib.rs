//! Axonal core: a spreading-activation engine with resilience and monitoring. The contract is
//! docs/spec.md; docs/architecture.md draws the whole.
//!
//! Organised by concept, lower layers first: [`graph`] (the immutable CSR graph and its loaders),
//! [`spread`] (the normative spreading algorithm, docs/spec.md §3), [`recall`] (the cue → result
//! pipeline with its fallback, §4), the resilience parts ([`breaker`], [`health`], [`tuner`],
//! [`chaos`]) and [`telemetry`], then [`engine`] (the long-lived engine that owns all of them and
//! its threads), and [`host`] (an engine with the HTTP servers started on it).

pub mod breaker;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod generate;
pub mod graph;
pub mod health;
pub mod host;
#[cfg(feature = "http")]
pub mod http;
mod memory;
#[cfg(feature = "opencl")]
pub mod opencl;
pub mod pool;
mod prefetch;
pub mod recall;
pub mod shard;
pub mod similarity;
pub mod spread;
pub mod telemetry;
pub mod tuner;
mod worker;

pub use breaker::{BreakerOverride, BreakerState, TransitionEvent, TransitionReason};
pub use chaos::ChaosConfig;
pub use config::{CyclePolicy, EngineConfig, OpenClMode};
pub use engine::{Applied, Engine};
pub use error::{Error, ErrorKind, Result};
pub use graph::{
    Batch, CsrView, Graph, GraphBuilder, GraphVersion, SNAPSHOT_FORMAT_VERSION, SaveStats, Tier, View,
};
pub use health::{HealthCheckResult, HealthProbe, HealthReport, HealthStatus, ProbeOptions, ProbeReport};
pub use host::Host;
pub use recall::{Activation, Cue, FallbackReason, Recall, Source};
pub use spread::{
    Backend, DeviceCue, DeviceSpread, Execution, PhaseHook, SpreadParams, SpreadStats, spread_standalone,
    spread_standalone_on,
};

/// Any typed report (snapshot, health report, audit log, …) as a JSON value: for tests, logs and
/// hosts that want a tree rather than the type.
pub trait ToJson {
    /// The value as JSON.
    fn to_json(&self) -> serde_json::Value;
}

impl<T: serde::Serialize + ?Sized> ToJson for T {
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

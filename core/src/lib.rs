//! Axonal core: a spreading-activation engine with resilience and monitoring.
//!
//! The crate is organised by concept: [`graph`] holds the immutable CSR graph and its loaders,
//! [`spread`] the normative spreading algorithm (SPEC §3), [`engine`] the long-lived engine that owns
//! the thread pool, scratch buffers and live configuration, and [`recall`] the cue → result pipeline
//! with its fallback path (SPEC §4).

pub mod breaker;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod generate;
pub mod graph;
pub mod health;
#[cfg(feature = "http")]
pub mod http;
mod memory;
#[cfg(feature = "opencl")]
pub mod opencl;
pub mod recall;
pub mod similarity;
pub mod spread;
pub mod telemetry;
pub mod tuner;
mod worker;

pub use breaker::{BreakerOverride, BreakerState, TransitionEvent, TransitionReason};
pub use chaos::ChaosConfig;
pub use config::{CyclePolicy, EngineConfig, OpenClMode};
pub use engine::Engine;
pub use error::{Error, ErrorKind, Result};
pub use graph::{CsrView, Graph, GraphBuilder, Tier};
pub use health::{HealthCheckResult, HealthProbe, HealthStatus, ProbeOptions};
pub use recall::{Activation, Cue, FallbackReason, Recall, Source};
pub use spread::{
    Backend, Execution, PhaseHook, PullAccelerator, SpreadParams, SpreadStats, spread_standalone,
    spread_standalone_on,
};

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The crate version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

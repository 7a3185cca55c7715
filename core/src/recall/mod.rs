//! Recall (docs/spec.md §4, §15): a cue in, an answer out. [`cue`] parses what hosts send;
//! [`seeds`] resolves them against the graph; [`pipeline`] asks the breaker, spreads (`crate::spread`),
//! classifies the outcome and falls back ([`fallback`]) when it must; [`result`] is the answer and its
//! JSON.

pub mod cue;
mod fallback;
pub mod pipeline;
mod result;
mod seeds;

pub use cue::{Cue, batch_from_csr, seed_activation, seed_id};
pub(crate) use pipeline::{Outcome, Pipeline};
pub use pipeline::{Settings, classify};
pub use result::{Activation, FallbackReason, Recall, Source, StatsView};
pub use seeds::Buffers;

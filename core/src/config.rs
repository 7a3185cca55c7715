//! Engine configuration (docs/spec.md §14): serde with unknown keys rejected, defaults as the spec, and a
//! `validate()` whose errors name the field.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::Tier;

/// Whole-engine configuration; every key is optional in JSON, unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Spreading parameters (docs/spec.md §3).
    pub spreading: SpreadingConfig,
    /// Recall pipeline parameters (docs/spec.md §4).
    pub recall: RecallConfig,
    /// Circuit breaker parameters (docs/spec.md §7).
    pub breaker: BreakerConfig,
    /// Health registry parameters (docs/spec.md §6).
    pub health: HealthConfig,
    /// Living graph compaction (docs/spec.md §16).
    pub compaction: CompactionConfig,
    /// Host callback parameters (docs/spec.md §7).
    pub callbacks: CallbacksConfig,
    /// Auto-tuner parameters (docs/spec.md §8).
    pub autotune: AutotuneConfig,
    /// Embedding search: exact scan or approximate-nearest-neighbour index (docs/spec.md §18).
    pub similarity: SimilarityConfig,
    /// Spreading pool threads; 0 = one per core. Fixed when the engine is created.
    pub threads: usize,
    /// OpenCL backend selection. Fixed when the engine is created.
    pub opencl: OpenClMode,
    /// With `opencl: "auto"` (or `"required"`), recalls over a graph with at least this many edges
    /// run on the device. `None` (the default): [`GPU_OPENCL_MIN_EDGES`] on a GPU, never on a CPU
    /// device (docs/decisions/0018-device-resident-recall.md).
    pub opencl_min_edges: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            spreading: SpreadingConfig::default(),
            recall: RecallConfig::default(),
            breaker: BreakerConfig::default(),
            health: HealthConfig::default(),
            compaction: CompactionConfig::default(),
            callbacks: CallbacksConfig::default(),
            autotune: AutotuneConfig::default(),
            similarity: SimilarityConfig::default(),
            threads: 0,
            opencl: OpenClMode::Auto,
            opencl_min_edges: None,
        }
    }
}

/// `opencl_min_edges` on a GPU when not configured. Whole recalls on a GPU were not measured (no GPU
/// was lent to the issue that built them); 100 000 is the frontier size from which the earlier
/// gather offload already beat the CPU on an NVIDIA H200, kept as the graph size from which a whole
/// recall is sent (a depth on the device is a pass over every edge). `scripts/gpu-bench` prints
/// the numbers to set it by. On a CPU device (PoCL) the device never won, so `auto` keeps it idle.
pub const GPU_OPENCL_MIN_EDGES: u64 = 100_000;

/// How activation flows through cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CyclePolicy {
    /// A node fires at most once per call.
    #[default]
    FireOnce,
    /// A node fires at every depth where it meets the threshold.
    Reverberate,
}

/// OpenCL backend selection (docs/spec.md §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OpenClMode {
    /// Use a device when present, for frontiers large enough to win.
    #[default]
    Auto,
    /// Never use OpenCL.
    Off,
    /// As `auto`, but engine creation fails without a device.
    Required,
    /// Every spread on the device; engine creation fails without one.
    Always,
}

/// Spreading parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpreadingConfig {
    /// Maximum number of hops (1–16).
    pub max_depth: u32,
    /// Multiplier applied at every hop, in (0, 1].
    #[serde(serialize_with = "decimal_f32")]
    pub decay: f32,
    /// Minimum activation for a node to fire and to be returned, in [0, 1).
    #[serde(serialize_with = "decimal_f32")]
    pub threshold: f32,
    /// Nodes with more out-edges than this do not fire; 0 = unlimited.
    pub max_fan_out: u32,
    /// Cycle policy.
    pub cycle_policy: CyclePolicy,
    /// Parallel task granularity (see docs/decisions/0003-spreading-execution.md), 1–4096.
    pub batch_size: u32,
    /// Per-tier time budget per call in milliseconds; 0 disables a tier's timeout.
    pub tier_timeouts_ms: TierTimeouts,
    /// Latency budget of a recall in milliseconds.
    pub latency_budget_ms: f64,
}

/// Per-tier timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierTimeouts {
    /// Hot tier.
    pub hot: f64,
    /// Warm tier.
    pub warm: f64,
    /// Cold tier.
    pub cold: f64,
}

/// Recall pipeline parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecallConfig {
    /// Results returned when a cue gives no `k`.
    pub k: usize,
    /// Seeds taken from embedding similarity.
    pub seed_k: usize,
    /// Minimum cosine similarity for an embedding seed, in [-1, 1].
    #[serde(serialize_with = "decimal_f32")]
    pub min_similarity: f32,
    /// A call slower than this × latency budget is a failure.
    pub slow_call_factor: f64,
    /// A call whose seeds fired but whose mass is ≤ this is a failure.
    pub min_activation_mass: f64,
}

/// Circuit breaker parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Outcomes kept in the ring window.
    pub window_size: usize,
    /// Outcomes needed before the window is evaluated.
    pub min_calls: usize,
    /// Failure rate above which the breaker trips, in [0, 1].
    pub failure_rate_threshold: f64,
    /// First open period in milliseconds.
    pub cooldown_ms: u64,
    /// Cap of the doubling open period in milliseconds.
    pub max_cooldown_ms: u64,
    /// Calls admitted while half-open.
    pub half_open_max_probes: u32,
}

/// Health registry parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Default probe interval in milliseconds.
    pub interval_ms: u64,
    /// Default probe timeout in milliseconds.
    pub timeout_ms: u64,
    /// Consecutive failures that make a probe unhealthy.
    pub failure_threshold: u32,
    /// Consecutive successes that make a probe healthy again.
    pub success_threshold: u32,
    /// Live recalls the `spreading_live` probe needs between two runs to judge them (fewer: idle).
    pub live_min_calls: u64,
    /// Share of those recalls that failed or delivered no activation at which the probe fails.
    pub live_failure_share: f64,
}

/// Compaction of the living graph.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    /// Pending changes (edge changes plus added nodes) at which background compaction folds them
    /// into a fresh base; `None`: 1 % of the graph's edges, at least 10 000.
    pub max_delta_edges: Option<u64>,
}

/// How embedding queries are answered (docs/spec.md §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IndexMode {
    /// Exact below `exact_below` nodes with embeddings, the index from there on.
    #[default]
    Auto,
    /// Always the exact scan (no index is built).
    Exact,
    /// Always the index.
    Ann,
}

/// Embedding search (docs/spec.md §18). `ef_search` applies at once; a change of `connectivity` or
/// one that calls for an index builds it in the background, with exact answers until it is ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimilarityConfig {
    /// `auto`, `exact` or `ann`.
    pub index: IndexMode,
    /// With `auto`: below this many nodes with embeddings, the exact scan answers.
    pub exact_below: usize,
    /// Candidates the index's search keeps (recall against latency; docs/operations/runbook.md).
    pub ef_search: usize,
    /// Neighbours per node in the index's graph (quality and memory against build time).
    pub connectivity: usize,
}

impl Default for SimilarityConfig {
    fn default() -> Self {
        SimilarityConfig { index: IndexMode::Auto, exact_below: 20_000, ef_search: 64, connectivity: 16 }
    }
}

/// Host callback parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbacksConfig {
    /// A breaker transition callback still running after this many milliseconds is abandoned: later
    /// events go to a fresh dispatcher thread and shutdown waits no longer for it.
    pub timeout_ms: u64,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig { timeout_ms: 5_000 }
    }
}

/// Auto-tuner parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutotuneConfig {
    /// Whether the tuner may change the config.
    pub enabled: bool,
    /// Tuning interval in milliseconds.
    pub interval_ms: u64,
    /// Minimum predicted improvement (fraction) for a change to apply.
    pub min_improvement: f64,
    /// Audit log entries kept.
    pub audit_capacity: usize,
    /// Bounds of the tuner's changes. They bound the tuner, not the operator: a knob the operator
    /// sets outside its guardrail applies as given and is pinned (the tuner leaves it alone).
    pub guardrails: Guardrails,
}

/// Bounds for tuned parameters, `[low, high]` inclusive (docs/spec.md §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Guardrails {
    /// Batch size bounds.
    pub batch_size: [u32; 2],
    /// Max depth bounds.
    pub max_depth: [u32; 2],
    /// Tier timeout multiplier bounds relative to the operator's base values.
    pub timeout_multiplier: [f64; 2],
}

/// A knob the tuner may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TunedKnob {
    /// `spreading.max_depth`.
    #[serde(rename = "spreading.max_depth")]
    MaxDepth,
    /// `spreading.batch_size`.
    #[serde(rename = "spreading.batch_size")]
    BatchSize,
}

impl TunedKnob {
    /// The config path of the knob.
    pub fn as_str(self) -> &'static str {
        match self {
            TunedKnob::MaxDepth => "spreading.max_depth",
            TunedKnob::BatchSize => "spreading.batch_size",
        }
    }
}

impl EngineConfig {
    /// Knobs the operator set outside their guardrails (see [`Guardrails::pinned`]).
    pub fn pinned_knobs(&self) -> Vec<TunedKnob> {
        self.autotune.guardrails.pinned(&self.spreading)
    }
}

impl Guardrails {
    /// Knobs of `s` outside these guardrails: they apply as given and the tuner leaves them alone
    /// until the operator moves them back inside (docs/spec.md §8). Timeout multipliers are relative
    /// to the operator's own timeouts, so those are never pinned.
    pub fn pinned(&self, s: &SpreadingConfig) -> Vec<TunedKnob> {
        let g = self;
        let outside = |v: u32, [lo, hi]: [u32; 2]| v < lo || v > hi;
        let mut pinned = Vec::new();
        if outside(s.max_depth, g.max_depth) {
            pinned.push(TunedKnob::MaxDepth);
        }
        if outside(s.batch_size, g.batch_size) {
            pinned.push(TunedKnob::BatchSize);
        }
        pinned
    }
}

impl Default for SpreadingConfig {
    fn default() -> Self {
        SpreadingConfig {
            max_depth: 3,
            decay: 0.8,
            threshold: 0.01,
            max_fan_out: 0,
            cycle_policy: CyclePolicy::FireOnce,
            batch_size: 64,
            tier_timeouts_ms: TierTimeouts::default(),
            latency_budget_ms: 50.0,
        }
    }
}

impl SpreadingConfig {
    /// The latency budget as a duration (saturating; `validate` bounds it to a day).
    pub fn latency_budget(&self) -> Duration {
        Duration::try_from_secs_f64(self.latency_budget_ms / 1000.0).unwrap_or(Duration::MAX)
    }
}

impl Default for TierTimeouts {
    fn default() -> Self {
        TierTimeouts { hot: 10.0, warm: 20.0, cold: 40.0 }
    }
}

impl TierTimeouts {
    /// The timeout of `tier` in milliseconds.
    pub fn get(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Hot => self.hot,
            Tier::Warm => self.warm,
            Tier::Cold => self.cold,
        }
    }
}

impl Default for RecallConfig {
    fn default() -> Self {
        RecallConfig {
            k: 10,
            seed_k: 5,
            min_similarity: 0.0,
            slow_call_factor: 1.5,
            min_activation_mass: 0.0,
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window_size: 50,
            min_calls: 20,
            failure_rate_threshold: 0.05,
            cooldown_ms: 30_000,
            max_cooldown_ms: 300_000,
            half_open_max_probes: 5,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval_ms: 10_000,
            timeout_ms: 1_000,
            failure_threshold: 2,
            success_threshold: 2,
            live_min_calls: 20,
            live_failure_share: 0.5,
        }
    }
}

impl Default for AutotuneConfig {
    fn default() -> Self {
        AutotuneConfig {
            enabled: true,
            interval_ms: 300_000,
            min_improvement: 0.10,
            audit_capacity: 64,
            guardrails: Guardrails::default(),
        }
    }
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails { batch_size: [8, 128], max_depth: [2, 6], timeout_multiplier: [0.5, 2.0] }
    }
}

impl EngineConfig {
    /// Parse a JSON document (any subset of keys), fill defaults and validate.
    pub fn from_json(text: &str) -> Result<EngineConfig> {
        let patch: Value = serde_json::from_str(text)
            .map_err(|e| Error::config("(document)", format!("malformed JSON: {e}")))?;
        EngineConfig::default().patched(&patch)
    }

    /// This config with `patch` (same shape, any subset of keys) merged over it, validated.
    pub fn patched(&self, patch: &Value) -> Result<EngineConfig> {
        if !patch.is_object() {
            let kind = crate::error::json_kind(patch);
            return Err(Error::config("(document)", format!("a config must be a JSON object, got {kind}")));
        }
        let mut merged =
            serde_json::to_value(self).map_err(|e| Error::config("(document)", e.to_string()))?;
        merge(&mut merged, patch, "")?;
        let config: EngineConfig = serde_path_to_error::deserialize(merged)
            .map_err(|e| Error::config(crate::error::field_path("", e.path()), e.into_inner().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The config as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let s = &self.spreading;
        check(s.max_depth >= 1 && s.max_depth <= 16, "spreading.max_depth", s.max_depth, "in 1..=16")?;
        check(
            s.decay.is_finite() && s.decay > 0.0 && s.decay <= 1.0,
            "spreading.decay",
            s.decay,
            "in (0, 1]",
        )?;
        check(
            s.threshold.is_finite() && (0.0..1.0).contains(&s.threshold),
            "spreading.threshold",
            s.threshold,
            "in [0, 1)",
        )?;
        check(
            s.batch_size >= 1 && s.batch_size <= 4096,
            "spreading.batch_size",
            s.batch_size,
            "in 1..=4096",
        )?;
        for tier in Tier::ALL {
            let value = s.tier_timeouts_ms.get(tier);
            let field = format!("spreading.tier_timeouts_ms.{}", tier.as_str());
            check((0.0..=MAX_MS).contains(&value), &field, value, "in [0, 86400000] (0 disables)")?;
        }
        let budget = s.latency_budget_ms;
        check(budget > 0.0 && budget <= MAX_MS, "spreading.latency_budget_ms", budget, "in (0, 86400000]")?;

        let r = &self.recall;
        check(r.k >= 1, "recall.k", r.k, ">= 1")?;
        check(r.seed_k >= 1, "recall.seed_k", r.seed_k, ">= 1")?;
        check(
            (-1.0..=1.0).contains(&r.min_similarity),
            "recall.min_similarity",
            r.min_similarity,
            "in [-1, 1]",
        )?;
        let factor = r.slow_call_factor;
        check(factor > 0.0 && factor <= 1000.0, "recall.slow_call_factor", factor, "in (0, 1000]")?;
        let mass = r.min_activation_mass;
        check(mass.is_finite() && mass >= 0.0, "recall.min_activation_mass", mass, "finite and >= 0")?;

        let b = &self.breaker;
        check((1..=100_000).contains(&b.window_size), "breaker.window_size", b.window_size, "in 1..=100000")?;
        check(
            b.min_calls >= 1 && b.min_calls <= b.window_size,
            "breaker.min_calls",
            b.min_calls,
            "in 1..=breaker.window_size",
        )?;
        let rate = b.failure_rate_threshold;
        check((0.0..=1.0).contains(&rate), "breaker.failure_rate_threshold", rate, "in [0, 1]")?;
        check(b.cooldown_ms >= 1, "breaker.cooldown_ms", b.cooldown_ms, ">= 1")?;
        check(
            b.max_cooldown_ms >= b.cooldown_ms,
            "breaker.max_cooldown_ms",
            b.max_cooldown_ms,
            ">= breaker.cooldown_ms",
        )?;
        check(b.half_open_max_probes >= 1, "breaker.half_open_max_probes", b.half_open_max_probes, ">= 1")?;

        let h = &self.health;
        check(h.interval_ms >= 1, "health.interval_ms", h.interval_ms, ">= 1")?;
        check(h.timeout_ms >= 1, "health.timeout_ms", h.timeout_ms, ">= 1")?;
        check(h.failure_threshold >= 1, "health.failure_threshold", h.failure_threshold, ">= 1")?;
        check(h.success_threshold >= 1, "health.success_threshold", h.success_threshold, ">= 1")?;
        check(h.live_min_calls >= 1, "health.live_min_calls", h.live_min_calls, ">= 1")?;
        let share = h.live_failure_share;
        check(share > 0.0 && share <= 1.0, "health.live_failure_share", share, "in (0, 1]")?;
        if let Some(edges) = self.compaction.max_delta_edges {
            check(edges >= 1, "compaction.max_delta_edges", edges, ">= 1 (or null for 1 % of the edges)")?;
        }
        let callback = self.callbacks.timeout_ms;
        check((1..=3_600_000).contains(&callback), "callbacks.timeout_ms", callback, "in 1..=3600000")?;

        let a = &self.autotune;
        check(
            (100..=86_400_000).contains(&a.interval_ms),
            "autotune.interval_ms",
            a.interval_ms,
            "in 100..=86400000",
        )?;
        let improvement = a.min_improvement;
        check(
            improvement.is_finite() && improvement >= 0.0,
            "autotune.min_improvement",
            improvement,
            "finite and >= 0",
        )?;
        check(
            (1..=100_000).contains(&a.audit_capacity),
            "autotune.audit_capacity",
            a.audit_capacity,
            "in 1..=100000",
        )?;
        let g = &a.guardrails;
        let [lo, hi] = g.batch_size;
        check(
            lo >= 1 && lo <= hi && hi <= 4096,
            "autotune.guardrails.batch_size",
            format!("[{lo}, {hi}]"),
            "1 <= low <= high <= 4096",
        )?;
        let [lo, hi] = g.max_depth;
        check(
            lo >= 1 && lo <= hi && hi <= 16,
            "autotune.guardrails.max_depth",
            format!("[{lo}, {hi}]"),
            "1 <= low <= high <= 16",
        )?;
        let [lo, hi] = g.timeout_multiplier;
        let ok = lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi && hi <= 10.0;
        check(
            ok,
            "autotune.guardrails.timeout_multiplier",
            format!("[{lo}, {hi}]"),
            "0 < low <= high <= 10",
        )?;

        let sim = &self.similarity;
        check((1..=4096).contains(&sim.ef_search), "similarity.ef_search", sim.ef_search, "in 1..=4096")?;
        check(
            (4..=128).contains(&sim.connectivity),
            "similarity.connectivity",
            sim.connectivity,
            "in 4..=128",
        )?;

        check(self.threads <= 1024, "threads", self.threads, "in 0..=1024 (0 = one per core)")?;
        Ok(())
    }

    /// The latency budget as a duration (saturating; `validate` bounds it to a day).
    pub fn latency_budget(&self) -> Duration {
        self.spreading.latency_budget()
    }

    /// The latency above which a call is slow: `slow_call_factor × latency_budget` (saturating).
    pub fn slow_call_limit(&self) -> Duration {
        let seconds = self.spreading.latency_budget_ms / 1000.0 * self.recall.slow_call_factor;
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }
}

/// An `f32` setting as the decimal an operator wrote (`0.8`, not `0.800000011920929`): the shortest
/// decimal that round-trips the `f32`, as a double. JSON text is the same either way; a binding that
/// builds native numbers (Python floats) gets the value the operator sees.
fn decimal_f32<S: serde::Serializer>(value: &f32, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    let decimal: f64 = value.to_string().parse().unwrap_or(f64::from(*value));
    serializer.serialize_f64(decimal)
}

/// Upper bound of every millisecond setting: one day.
const MAX_MS: f64 = 86_400_000.0;

fn check(ok: bool, field: &str, value: impl std::fmt::Display, expected: &str) -> Result<()> {
    if ok { Ok(()) } else { Err(Error::config(field, format!("must be {expected}, got {value}"))) }
}

/// Merge `patch` into `base`, rejecting keys `base` does not have (named by their dotted path).
fn merge(base: &mut Value, patch: &Value, prefix: &str) -> Result<()> {
    let (Value::Object(base), Value::Object(patch)) = (base, patch) else { return Ok(()) };
    for (key, value) in patch {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let Some(slot) = base.get_mut(key) else {
            return Err(Error::config(path, "unknown key"));
        };
        if slot.is_object() && value.is_object() {
            merge(slot, value, &path)?;
        } else if slot.is_object() {
            return Err(Error::config(path, format!("must be an object, got {value}")));
        } else {
            *slot = value.clone();
        }
    }
    Ok(())
}

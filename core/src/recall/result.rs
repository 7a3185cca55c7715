//! [`Recall`]: the answer to one recall — who answered and why, the results, the spread's stats —
//! and its JSON form (docs/spec.md §15).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::graph::View;
pub use crate::spread::Activation;
use crate::spread::SpreadStats;

/// Who answered a recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Spreading activation.
    #[default]
    Spreading,
    /// The similarity fallback.
    Fallback,
}

/// Why the fallback answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FallbackReason {
    /// The breaker refused the call.
    BreakerOpen,
    /// Spreading failed (injected faults included).
    Error,
    /// Spreading exceeded `slow_call_factor × latency_budget`.
    Slow,
    /// Seeds fired but the activation mass was ≤ `min_activation_mass`.
    LowMass,
}

impl FallbackReason {
    /// All reasons, in metric-label order.
    pub const ALL: [FallbackReason; 4] =
        [FallbackReason::BreakerOpen, FallbackReason::Error, FallbackReason::Slow, FallbackReason::LowMass];

    /// `breaker_open`, `error`, `slow` or `low_mass`.
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::BreakerOpen => "breaker_open",
            FallbackReason::Error => "error",
            FallbackReason::Slow => "slow",
            FallbackReason::LowMass => "low_mass",
        }
    }
}

/// The answer to one recall.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recall {
    /// Who answered.
    pub source: Source,
    /// Why the fallback answered (None when spreading did).
    pub reason: Option<FallbackReason>,
    /// Results, best first.
    pub results: Vec<Activation>,
    /// What spreading did (zeroed when it did not run).
    pub stats: SpreadStats,
    /// Whole-call latency.
    pub latency: Duration,
    /// The version of the graph the recall ran on (docs/spec.md §16).
    pub graph_version: u64,
}

impl Recall {
    /// The spread's stats as they appear in the result JSON (typed, for bindings).
    pub fn stats_view(&self) -> StatsView<'_> {
        let stats = &self.stats;
        let depth = stats.depth_reached as usize;
        StatsView {
            depth_reached: stats.depth_reached,
            nodes_fired: stats.total_nodes_fired(),
            edges_traversed: stats.total_edges_traversed(),
            nodes_fired_per_depth: &stats.nodes_fired[..depth],
            edges_traversed_per_depth: &stats.edges_traversed[..depth],
            mass: stats.mass,
            delivered: stats.delivered,
            truncated: stats.truncated,
            backend: stats.backend.as_str(),
            latency_us: self.latency.as_secs_f64() * 1e6,
            graph_version: self.graph_version,
            pulled: stats.pulled,
            pull_phases: stats.pull_phases,
            shared_lanes: stats.shared_lanes,
        }
    }

    /// The §15 result JSON; labels come from `graph` when it has them.
    pub fn to_json_value(&self, graph: View<'_>) -> Value {
        serde_json::to_value(self.json_view(graph)).unwrap_or(Value::Null)
    }

    /// The §15 result JSON as text, serialised directly (no intermediate value tree).
    pub fn to_json_string(&self, graph: View<'_>) -> String {
        serde_json::to_string(&self.json_view(graph)).unwrap_or_default()
    }

    fn json_view<'a>(&'a self, graph: View<'a>) -> RecallJson<'a> {
        RecallJson {
            source: self.source,
            reason: self.reason,
            results: ResultsJson { results: &self.results, graph },
            stats: self.stats_view(),
        }
    }
}

#[derive(Serialize)]
struct RecallJson<'a> {
    source: Source,
    reason: Option<FallbackReason>,
    results: ResultsJson<'a>,
    stats: StatsView<'a>,
}

/// A recall's stats in the result JSON's shape.
#[derive(Debug, Serialize)]
pub struct StatsView<'a> {
    /// Depths at which the frontier was non-empty.
    pub depth_reached: u32,
    /// Nodes fired over all depths.
    pub nodes_fired: u64,
    /// Edges traversed over all depths.
    pub edges_traversed: u64,
    /// Nodes fired at each depth reached.
    pub nodes_fired_per_depth: &'a [u32],
    /// Edges traversed at each depth reached.
    pub edges_traversed_per_depth: &'a [u64],
    /// Σ activation over non-seed nodes.
    pub mass: f64,
    /// Activation delivered along edges, seeds included.
    pub delivered: f64,
    /// Whether a tier timeout cut the spread short.
    pub truncated: bool,
    /// `cpu` or `opencl`.
    pub backend: &'static str,
    /// Whole-call latency in microseconds.
    pub latency_us: f64,
    /// The version of the graph the recall ran on.
    pub graph_version: u64,
    /// Whether some depth was pulled (docs/spec.md §19).
    pub pulled: bool,
    /// Pool phases of the pulls: a group's count once, on its first cue (§19).
    pub pull_phases: u32,
    /// The size of the lane group the cue shared passes with; 0 when it ran alone (§19).
    pub shared_lanes: u32,
}

/// Result rows, with `label` only when the graph has labels.
struct ResultsJson<'a> {
    results: &'a [Activation],
    graph: View<'a>,
}

impl Serialize for ResultsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let labels = self.graph.has_labels();
        let mut seq = serializer.serialize_seq(Some(self.results.len()))?;
        for a in self.results {
            struct Row<'r>(&'r Activation, Option<Option<&'r str>>);
            impl Serialize for Row<'_> {
                fn serialize<S: serde::Serializer>(
                    &self,
                    serializer: S,
                ) -> std::result::Result<S::Ok, S::Error> {
                    let mut map = serializer.serialize_map(None)?;
                    map.serialize_entry("node", &self.0.node)?;
                    map.serialize_entry("activation", &self.0.activation)?;
                    map.serialize_entry("hops", &self.0.hops)?;
                    map.serialize_entry("tier", self.0.tier.as_str())?;
                    if let Some(label) = self.1 {
                        map.serialize_entry("label", &label)?;
                    }
                    map.end()
                }
            }
            seq.serialize_element(&Row(a, labels.then(|| self.graph.label(a.node))))?;
        }
        seq.end()
    }
}

//! [`SpreadingHealthProbe`]: a cached 5-node cycle spread through the live engine — same pool,
//! config and chaos injector, bypassing the breaker — failing on zero mass or latency over budget.

use std::sync::{Arc, Mutex};

use std::borrow::Cow;

use serde_json::Value;

use super::state::EngineState;
use crate::graph::Graph;
use crate::health::{HealthCheckResult, HealthProbe, HealthStatus};
use crate::spread::Activation;
use crate::spread::Scratch;

/// The probe registered by default as `spreading`. Allocates nothing per run: graph, scratch and
/// result buffer are built once.
pub struct SpreadingHealthProbe {
    state: Arc<EngineState>,
    graph: Graph,
    buffers: Mutex<(Scratch, Vec<Activation>)>,
}

/// Seed of the probe's spread: node 0 of the cycle, activation 1.
const SEEDS: [(u32, f32); 1] = [(0, 1.0)];

impl SpreadingHealthProbe {
    pub(super) fn new(state: Arc<EngineState>) -> Self {
        let graph = probe_graph().expect("a valid 5-node cycle");
        let mut scratch = Scratch::default();
        scratch.resize(graph.node_count());
        SpreadingHealthProbe { state, graph, buffers: Mutex::new((scratch, Vec::with_capacity(5))) }
    }

    /// The probe's own 5-node graph (the device warms up on it too).
    #[cfg(feature = "opencl")]
    pub(super) fn graph(&self) -> &Graph {
        &self.graph
    }
}

/// The probe's 5-node cycle 0→1→2→3→4→0. Its tiers go hot, warm, cold, hot, warm, so that from
/// seed 0 each of the first three depths has its frontier on another tier: latency on any tier
/// reaches the probe (at `max_depth` ≥ 3), not only latency on the hot one.
fn probe_graph() -> crate::Result<Graph> {
    use crate::graph::{GraphBuilder, Tier};
    let mut builder = GraphBuilder::new(5);
    builder.add_edges(&[0, 1, 2, 3, 4], &[1, 2, 3, 4, 0], &[1.0; 5])?;
    for (node, tier) in [Tier::Hot, Tier::Warm, Tier::Cold, Tier::Hot, Tier::Warm].into_iter().enumerate() {
        builder.set_tier(node as u32, tier)?;
    }
    builder.build()
}

impl HealthProbe for SpreadingHealthProbe {
    fn name(&self) -> &str {
        "spreading"
    }

    fn check(&self) -> HealthCheckResult {
        let mut buffers = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        let (scratch, out) = &mut *buffers;
        if scratch.current.len() != self.graph.node_count() {
            scratch.resize(self.graph.node_count());
        }
        let (mass, latency) = self.state.probe_spread(&self.graph, &SEEDS, scratch, out);
        let budget = self.state.live.load().budget;
        let (status, reason) = match mass {
            None => (HealthStatus::Unhealthy, Some("spreading failed")),
            Some(mass) if mass <= 0.0 => (HealthStatus::Unhealthy, Some("zero activation mass")),
            Some(_) if latency > budget => (HealthStatus::Unhealthy, Some("latency over budget")),
            Some(_) => (HealthStatus::Healthy, None),
        };
        HealthCheckResult { status, latency, reason: reason.map(Cow::Borrowed), details: Value::Null }
    }

    fn budget(&self) -> Option<std::time::Duration> {
        Some(self.state.live.load().budget)
    }
}

//! Cues, recall results, failure classification and the similarity fallback (SPEC §4, §15).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::graph::{Graph, Tier};
use crate::similarity;
use crate::spread::{Scratch, SpreadStats};

/// What a recall starts from: seeds and/or a query embedding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cue {
    /// `(node, activation)` pairs; duplicates are summed and capped at 1.
    pub seeds: Vec<(u32, f32)>,
    /// Query embedding: its top `seed_k` similar nodes become seeds.
    pub embedding: Option<Vec<f32>>,
    /// Number of results; `None` = the configured `recall.k`.
    pub k: Option<usize>,
}

impl Cue {
    /// Seeds with activation 1.
    pub fn nodes(ids: impl IntoIterator<Item = u32>) -> Cue {
        Cue { seeds: ids.into_iter().map(|id| (id, 1.0)).collect(), ..Cue::default() }
    }

    /// Seeds with explicit activations.
    pub fn weighted(seeds: impl IntoIterator<Item = (u32, f32)>) -> Cue {
        Cue { seeds: seeds.into_iter().collect(), ..Cue::default() }
    }

    /// A cue seeded by embedding similarity.
    pub fn embedding(query: Vec<f32>) -> Cue {
        Cue { embedding: Some(query), ..Cue::default() }
    }

    /// Set the number of results.
    pub fn with_k(mut self, k: usize) -> Cue {
        self.k = Some(k);
        self
    }

    /// Parse the §15 cue JSON: `{"seeds": [3, 7] | [[3, 1.0], [7, 0.5]] | {"3": 1.0}, "embedding": [..], "k": 10}`.
    pub fn from_json(text: &str) -> Result<Cue> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::cue("(document)", format!("malformed JSON: {e}")))?;
        Cue::from_value(&value)
    }

    /// [`Cue::from_json`] from a parsed JSON value.
    pub fn from_value(value: &Value) -> Result<Cue> {
        let Value::Object(object) = value else {
            return Err(Error::cue("(document)", "a cue must be a JSON object"));
        };
        let mut cue = Cue::default();
        for (key, value) in object {
            match key.as_str() {
                "seeds" => cue.seeds = parse_seeds(value)?,
                "embedding" => cue.embedding = parse_embedding(value)?,
                "k" => cue.k = parse_k(value)?,
                other => return Err(Error::cue(other, "unknown key (expected seeds, embedding, k)")),
            }
        }
        Ok(cue)
    }
}

fn parse_seeds(value: &Value) -> Result<Vec<(u32, f32)>> {
    match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = || format!("seeds[{i}]");
                match item {
                    Value::Array(pair) if pair.len() == 2 => {
                        Ok((parse_id(&pair[0], field)?, parse_activation(&pair[1], field)?))
                    }
                    Value::Number(_) => Ok((parse_id(item, field)?, 1.0)),
                    other => Err(Error::cue(
                        field(),
                        format!("expected a node id or [id, activation], got {other}"),
                    )),
                }
            })
            .collect(),
        // Note: a JSON object cannot repeat a key; serde_json keeps the last of duplicate keys.
        Value::Object(map) => map
            .iter()
            .map(|(id, activation)| {
                let field = || format!("seeds.{id}");
                let node = id.parse::<u64>().map_err(|_| Error::cue(field(), "key is not a node id"))?;
                Ok((check_id_width(node, field)?, parse_activation(activation, field)?))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(Error::cue("seeds", format!("expected an array or object, got {other}"))),
    }
}

fn parse_id(value: &Value, field: impl Fn() -> String) -> Result<u32> {
    let id = value.as_u64().ok_or_else(|| Error::cue(field(), format!("{value} is not a node id")))?;
    check_id_width(id, field)
}

fn check_id_width(id: u64, field: impl Fn() -> String) -> Result<u32> {
    u32::try_from(id).map_err(|_| Error::cue(field(), format!("node {id} is beyond the 32-bit id space")))
}

/// Activations are checked in f64, so the error reports the value as sent (1e-50 is not "0").
fn parse_activation(value: &Value, field: impl Fn() -> String) -> Result<f32> {
    let a =
        value.as_f64().ok_or_else(|| Error::cue(field(), format!("activation {value} is not a number")))?;
    if !(a > 0.0 && a <= 1.0) || (a as f32) == 0.0 {
        return Err(Error::cue(
            field(),
            format!("activation {value} must be in (0, 1] (and representable as f32)"),
        ));
    }
    Ok(a as f32)
}

fn parse_embedding(value: &Value) -> Result<Option<Vec<f32>>> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| match x.as_f64() {
                Some(v) if (v as f32).is_finite() => Ok(v as f32),
                Some(_) => Err(Error::cue(format!("embedding[{i}]"), format!("{x} does not fit in f32"))),
                None => Err(Error::cue(format!("embedding[{i}]"), format!("{x} is not a number"))),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        other => Err(Error::cue("embedding", format!("expected an array of numbers, got {other}"))),
    }
}

fn parse_k(value: &Value) -> Result<Option<usize>> {
    match value {
        Value::Null => Ok(None),
        _ => match value.as_u64() {
            Some(k) if k >= 1 => Ok(Some(k as usize)),
            _ => Err(Error::cue("k", format!("must be an integer >= 1, got {value}"))),
        },
    }
}

/// One recalled node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Activation {
    /// Node id.
    pub node: u32,
    /// Accumulated activation in (0, 1].
    pub activation: f32,
    /// Depth at which the node was first reached (0 for seeds).
    pub hops: u32,
    /// The node's tier.
    pub tier: Tier,
}

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
}

impl Recall {
    /// The §15 result JSON; labels come from `graph` when it has them.
    pub fn to_json_value(&self, graph: &Graph) -> Value {
        serde_json::to_value(self.json_view(graph)).unwrap_or(Value::Null)
    }

    /// The §15 result JSON as text, serialised directly (no intermediate value tree).
    pub fn to_json_string(&self, graph: &Graph) -> String {
        serde_json::to_string(&self.json_view(graph)).unwrap_or_default()
    }

    fn json_view<'a>(&'a self, graph: &'a Graph) -> RecallJson<'a> {
        let stats = &self.stats;
        let depth = stats.depth_reached as usize;
        RecallJson {
            source: self.source,
            reason: self.reason,
            results: ResultsJson { results: &self.results, graph },
            stats: StatsJson {
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
            },
        }
    }
}

#[derive(Serialize)]
struct RecallJson<'a> {
    source: Source,
    reason: Option<FallbackReason>,
    results: ResultsJson<'a>,
    stats: StatsJson<'a>,
}

#[derive(Serialize)]
struct StatsJson<'a> {
    depth_reached: u32,
    nodes_fired: u64,
    edges_traversed: u64,
    nodes_fired_per_depth: &'a [u32],
    edges_traversed_per_depth: &'a [u64],
    mass: f64,
    delivered: f64,
    truncated: bool,
    backend: &'static str,
    latency_us: f64,
}

/// Result rows, with `label` only when the graph has labels.
struct ResultsJson<'a> {
    results: &'a [Activation],
    graph: &'a Graph,
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

/// Classify an attempted spread (docs/spec.md §4 step 3): `None` = success. Low mass judges the
/// activation *delivered* along edges (seeds included), so a cue that seeds every node is not a
/// failure for want of non-seed nodes.
pub fn classify(
    spread: Option<&SpreadStats>,
    latency: Duration,
    slow_limit: Duration,
    min_activation_mass: f64,
) -> Option<FallbackReason> {
    let Some(stats) = spread else { return Some(FallbackReason::Error) };
    if latency > slow_limit {
        Some(FallbackReason::Slow)
    } else if stats.seeds_fired_along_edge() && stats.delivered <= min_activation_mass {
        Some(FallbackReason::LowMass)
    } else {
        None
    }
}

/// Validate the cue (every error a recall can return happens here, before the breaker is asked)
/// and put its explicit seeds, merged (sum, capped at 1) and sorted by id, in `scratch.seeds`.
/// Returns the query embedding's norm when the cue has one.
pub(crate) fn validate_cue(graph: &Graph, cue: &Cue, scratch: &mut Scratch) -> Result<Option<f32>> {
    let seeds = &mut scratch.seeds;
    seeds.clear();
    if cue.seeds.is_empty() && cue.embedding.is_none() {
        return Err(Error::cue("seeds", "a cue needs seeds or an embedding"));
    }
    for &(node, activation) in &cue.seeds {
        if node >= graph.node_count {
            return Err(Error::SeedOutOfRange { node: node as u64, node_count: graph.node_count });
        }
        if !(activation.is_finite() && activation > 0.0 && activation <= 1.0) {
            return Err(Error::InvalidSeedActivation { node, activation });
        }
        seeds.push((node, activation));
    }
    merge_duplicates(seeds);
    cue.embedding.as_deref().map(|query| similarity::query_norm(graph, query)).transpose()
}

/// Add the top `seed_k` nodes similar to the cue's embedding (validated, with norm `norm`) to
/// `scratch.seeds`, merged with the explicit seeds.
pub(crate) fn add_embedding_seeds(
    graph: &Graph,
    cue: &Cue,
    norm: f32,
    seed_k: usize,
    min_similarity: f32,
    scratch: &mut Scratch,
) {
    let Some(query) = &cue.embedding else { return };
    let mut similar = std::mem::take(&mut scratch.similar);
    similarity::top_similar(graph, query, norm, seed_k, min_similarity, &mut similar);
    scratch.seeds.extend_from_slice(&similar);
    scratch.similar = similar;
    merge_duplicates(&mut scratch.seeds);
}

/// [`validate_cue`] then [`add_embedding_seeds`].
pub(crate) fn resolve_seeds(
    graph: &Graph,
    cue: &Cue,
    seed_k: usize,
    min_similarity: f32,
    scratch: &mut Scratch,
) -> Result<()> {
    if let Some(norm) = validate_cue(graph, cue, scratch)? {
        add_embedding_seeds(graph, cue, norm, seed_k, min_similarity, scratch);
    }
    Ok(())
}

fn merge_duplicates(seeds: &mut Vec<(u32, f32)>) {
    seeds.sort_unstable_by_key(|&(node, _)| node);
    seeds.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 = (kept.1 + later.1).min(1.0);
            true
        } else {
            false
        }
    });
}

/// The similarity fallback (SPEC §4): with a query embedding and graph embeddings, the top-`k` similar
/// nodes; otherwise the seeds (hops 0) and their direct out-neighbours (Σ seed activation × weight,
/// capped at 1; hops 1), best first. `scratch.seeds` holds the resolved seeds; scratch stays clean.
pub(crate) fn fallback(
    graph: &Graph,
    cue: &Cue,
    k: usize,
    scratch: &mut Scratch,
    out: &mut Vec<crate::Activation>,
) {
    out.clear();
    if let Some(query) = &cue.embedding
        && let Ok(norm) = similarity::query_norm(graph, query)
    {
        let mut similar = std::mem::take(&mut scratch.similar);
        similarity::top_similar(graph, query, norm, k, f32::MIN, &mut similar);
        out.extend(similar.iter().map(|&(node, s)| Activation {
            node,
            activation: s,
            hops: 0,
            tier: graph.tiers[node as usize],
        }));
        scratch.similar = similar;
        return;
    }
    for &(seed, _) in &scratch.seeds {
        scratch.hops[seed as usize] = 0;
    }
    for &(seed, a) in &scratch.seeds {
        let range = graph.forward.range(seed as usize);
        for (&v, &w) in graph.forward.neighbours[range.clone()].iter().zip(&graph.forward.weights[range]) {
            let j = v as usize;
            if scratch.hops[j] == 0 {
                continue;
            }
            if !scratch.in_next[j] {
                scratch.in_next[j] = true;
                scratch.next_active.push(v);
            }
            scratch.next[j] = (scratch.next[j] + a * w).min(1.0);
        }
    }
    out.extend(scratch.seeds.iter().map(|&(node, a)| Activation {
        node,
        activation: a,
        hops: 0,
        tier: graph.tiers[node as usize],
    }));
    for &v in &scratch.next_active {
        let j = v as usize;
        out.push(Activation { node: v, activation: scratch.next[j], hops: 1, tier: graph.tiers[v as usize] });
        scratch.next[j] = 0.0;
        scratch.in_next[j] = false;
    }
    for &(seed, _) in &scratch.seeds {
        scratch.hops[seed as usize] = crate::spread::UNREACHED;
    }
    scratch.next_active.clear();
    let order =
        |a: &Activation, b: &Activation| b.activation.total_cmp(&a.activation).then(a.node.cmp(&b.node));
    if k == 0 {
        out.clear();
    } else if out.len() > k {
        out.select_nth_unstable_by(k - 1, order);
        out.truncate(k);
    }
    out.sort_unstable_by(order);
}

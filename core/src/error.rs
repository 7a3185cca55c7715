//! The one error type of `axonal-core`; every variant carries the offending value.

use std::path::PathBuf;

/// Broad class of an [`Error`], used by the bindings to pick an exception type or status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Building or loading a graph failed.
    Graph,
    /// A configuration value or patch was rejected.
    Config,
    /// A cue was malformed or a recall could not run.
    Recall,
    /// Reading a file failed.
    Io,
    /// A feature is not available in this build or on this machine (no OpenCL device, no thread).
    Unavailable,
}

/// Everything that can go wrong in `axonal-core`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An edge names a node id that does not exist.
    #[error("edge {index}: {end} node {node} out of range (graph has {node_count} nodes)")]
    EdgeNodeOutOfRange { index: usize, end: &'static str, node: u32, node_count: u32 },
    /// An edge weight is NaN, infinite, ≤ 0 or > 1 (or rounds to 0 as an `f32`). `weight` is the
    /// value as the caller passed it, in its own precision.
    #[error("edge {index}: weight {weight} must be finite and in (0, 1]")]
    InvalidWeight { index: usize, weight: String },
    /// The three edge arrays differ in length.
    #[error("edge arrays differ in length: src {src}, dst {dst}, weight {weight}")]
    EdgeArrayLengths { src: usize, dst: usize, weight: usize },
    /// A node-level setter names a node id that does not exist.
    #[error("{what}: node {node} out of range (graph has {node_count} nodes)")]
    NodeOutOfRange { what: &'static str, node: u32, node_count: u32 },
    /// A tier number is not 0 (hot), 1 (warm) or 2 (cold), or a tier name is unknown.
    #[error("node {node}: unknown tier {value:?} (expected hot|warm|cold or 0|1|2)")]
    InvalidTier { node: u32, value: String },
    /// Embeddings of one graph must share one dimension.
    #[error("node {node}: embedding has dimension {found}, the graph's embeddings have {expected}")]
    EmbeddingDimension { node: u32, expected: usize, found: usize },
    /// An embedding is empty or holds a NaN or infinite value.
    #[error("node {node}: embedding {problem}")]
    InvalidEmbedding { node: u32, problem: String },
    /// The graph would exceed the u32 id / offset space.
    #[error("graph too large: {what} {count} exceeds {limit}")]
    TooLarge { what: &'static str, count: usize, limit: usize },
    /// Memory for a structure sized by an input count could not be reserved. `what` names the count
    /// ("a graph of 3000000001 nodes and 1 edges"); `available` is what the machine had, when that is
    /// what refused it.
    #[error("cannot allocate {what}: {bytes} bytes needed{}", available_note(*available))]
    OutOfMemory { what: String, bytes: usize, available: Option<usize> },
    /// A batch of changes names an edge that does not exist.
    #[error("{operation} entry {index}: no edge {src} -> {dst}")]
    MissingEdge { operation: &'static str, index: usize, src: u32, dst: u32 },
    /// A batch of changes is malformed (lengths, counts, repeated entries).
    #[error("{operation}: {message}")]
    InvalidBatch { operation: &'static str, message: String },
    /// A snapshot file is unreadable, truncated, corrupted, foreign or from a future version; the
    /// message names the section, offset and what was expected against what was found.
    #[error("snapshot {}: {message}", path.display())]
    Snapshot { path: PathBuf, message: String },
    /// A TSV file has a malformed line.
    #[error("{}:{line}: {message}", path.display())]
    Tsv { path: PathBuf, line: usize, message: String },
    /// A file could not be read.
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// A configuration field has an invalid value, or a patch names an unknown key.
    #[error("config {field}: {message}")]
    Config { field: String, message: String },
    /// A cue is malformed.
    #[error("cue {field}: {message}")]
    InvalidCue { field: String, message: String },
    /// A seed names a node id that does not exist.
    #[error("cue seeds: node {node} out of range (graph has {node_count} nodes)")]
    SeedOutOfRange { node: u64, node_count: u32 },
    /// A seed activation is not in (0, 1].
    #[error("cue seeds: node {node} activation {activation} must be finite and in (0, 1]")]
    InvalidSeedActivation { node: u32, activation: f32 },
    /// A metric name is invalid or already registered as another kind.
    #[error("metric {name:?}: {message}")]
    InvalidMetric { name: String, message: String },
    /// A requested feature is not available in this build or on this machine.
    #[error("{feature}: {message}")]
    Unavailable { feature: &'static str, message: String },
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::EdgeNodeOutOfRange { .. }
            | Error::InvalidWeight { .. }
            | Error::EdgeArrayLengths { .. }
            | Error::NodeOutOfRange { .. }
            | Error::InvalidTier { .. }
            | Error::EmbeddingDimension { .. }
            | Error::InvalidEmbedding { .. }
            | Error::TooLarge { .. }
            | Error::OutOfMemory { .. }
            | Error::MissingEdge { .. }
            | Error::InvalidBatch { .. }
            | Error::Snapshot { .. }
            | Error::Tsv { .. } => ErrorKind::Graph,
            Error::Io { .. } => ErrorKind::Io,
            Error::Config { .. } | Error::InvalidMetric { .. } => ErrorKind::Config,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::InvalidCue { .. } | Error::SeedOutOfRange { .. } | Error::InvalidSeedActivation { .. } => {
                ErrorKind::Recall
            }
        }
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { field: field.into(), message: message.into() }
    }

    pub(crate) fn batch(operation: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidBatch { operation, message: message.into() }
    }

    pub(crate) fn cue(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidCue { field: field.into(), message: message.into() }
    }

    /// This error as the error of cue `index` of a batch: a cue's error names `cues[index]` in its
    /// field (`cues[3].seeds`); any other error is unchanged.
    pub(crate) fn in_cue(self, index: usize) -> Self {
        let field = |field: &str| format!("cues[{index}].{field}");
        match self {
            Error::InvalidCue { field: f, message } => Error::InvalidCue { field: field(&f), message },
            Error::SeedOutOfRange { node, node_count } => {
                Error::cue(field("seeds"), format!("node {node} out of range (graph has {node_count} nodes)"))
            }
            Error::InvalidSeedActivation { node, activation } => Error::cue(
                field("seeds"),
                format!("node {node} activation {activation} must be finite and in (0, 1]"),
            ),
            other => other,
        }
    }
}

/// A JSON value that must be an object (every object-shaped input of docs/spec.md §15): its map, or
/// a config error naming `field` ("chaos must be a JSON object, got an array").
pub(crate) fn expect_object<'a>(
    value: &'a serde_json::Value,
    field: &str,
) -> Result<&'a serde_json::Map<String, serde_json::Value>> {
    value
        .as_object()
        .ok_or_else(|| Error::config(field, format!("must be a JSON object, got {}", json_kind(value))))
}

/// "an array", "a string", … for messages.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The field a serde error points at, under `prefix`: `chaos` for the document itself,
/// `chaos.latency_ms.hot` inside it, `chaos.seeds[2]` for an element.
pub(crate) fn field_path(prefix: &str, path: &serde_path_to_error::Path) -> String {
    let path = path.to_string();
    match path.as_str() {
        "." | "" => prefix.to_owned(),
        p if p.starts_with('[') || prefix.is_empty() => format!("{prefix}{p}"),
        p => format!("{prefix}.{p}"),
    }
}

fn available_note(available: Option<usize>) -> String {
    available.map_or_else(String::new, |bytes| format!(" (this machine has {bytes} bytes available)"))
}

/// Result alias for `axonal-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! The one error type of `axonal-core`; every variant carries the offending value.

use std::path::PathBuf;

/// Broad class of an [`Error`], used by the bindings to pick an exception type or status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Building or loading a graph failed.
    Graph,
    /// A configuration value or patch was rejected.
    Config,
    /// A cue was malformed or a recall could not run.
    Recall,
    /// Reading a file failed.
    Io,
}

/// Everything that can go wrong in `axonal-core`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An edge names a node id that does not exist.
    #[error("edge {index}: {end} node {node} out of range (graph has {node_count} nodes)")]
    EdgeNodeOutOfRange { index: usize, end: &'static str, node: u32, node_count: u32 },
    /// An edge weight is NaN, infinite, ≤ 0 or > 1.
    #[error("edge {index}: weight {weight} must be finite and in (0, 1]")]
    InvalidWeight { index: usize, weight: f32 },
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
            | Error::Tsv { .. } => ErrorKind::Graph,
            Error::Io { .. } => ErrorKind::Io,
            Error::Config { .. } | Error::Unavailable { .. } | Error::InvalidMetric { .. } => {
                ErrorKind::Config
            }
            Error::InvalidCue { .. } | Error::SeedOutOfRange { .. } | Error::InvalidSeedActivation { .. } => {
                ErrorKind::Recall
            }
        }
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { field: field.into(), message: message.into() }
    }

    pub(crate) fn cue(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidCue { field: field.into(), message: message.into() }
    }
}

/// Result alias for `axonal-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

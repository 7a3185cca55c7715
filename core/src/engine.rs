//! The engine (SPEC §4): current graph, live config, rayon pool, scratch pool, breaker hook, and the
//! recall pipeline.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::breaker::{Breaker, BreakerOverride, CallOutcome};
use crate::config::{EngineConfig, OpenClMode};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::recall::{self, Cue, FallbackReason, Recall, Source};
use crate::spread::{self, NoHook, ScratchPool, SpreadParams, SpreadStats};

/// A spreading-activation engine.
///
/// Thread-safe: every method takes `&self` and may run concurrently from any thread. Dropping the
/// engine stops and joins every thread it started.
pub struct Engine {
    graph: ArcSwap<Graph>,
    live: ArcSwap<LiveConfig>,
    /// Serialises config writers; readers never take it.
    config_writer: Mutex<()>,
    pool: Option<rayon::ThreadPool>,
    pool_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    threads: usize,
    scratch: ScratchPool,
    breaker: Breaker,
}

/// The config together with what the hot path derives from it, swapped as one.
#[derive(Debug)]
struct LiveConfig {
    config: EngineConfig,
    params: SpreadParams,
    slow_limit: Duration,
}

impl LiveConfig {
    fn new(config: EngineConfig) -> Self {
        let params = SpreadParams::from(&config.spreading);
        let slow_limit = config.slow_call_limit();
        LiveConfig { config, params, slow_limit }
    }
}

impl Engine {
    /// Create an engine over `graph` with `config` (validated here).
    pub fn new(graph: impl Into<Arc<Graph>>, config: EngineConfig) -> Result<Engine> {
        config.validate()?;
        if matches!(config.opencl, OpenClMode::Required | OpenClMode::Always) {
            return Err(Error::Unavailable {
                feature: "opencl",
                message: format!(
                    "{:?} needs an OpenCL device, and this build has no OpenCL backend",
                    config.opencl
                )
                .to_lowercase(),
            });
        }
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool_threads = Arc::new(Mutex::new(Vec::new()));
        let pool = if threads > 1 { Some(build_pool(threads, &pool_threads)?) } else { None };
        Ok(Engine {
            graph: ArcSwap::new(graph.into()),
            live: ArcSwap::from_pointee(LiveConfig::new(config)),
            config_writer: Mutex::new(()),
            pool,
            pool_threads,
            threads,
            // Enough idle buffers for every pool thread plus a few host threads; more concurrent
            // recalls still work, their extra buffers are freed on return.
            scratch: ScratchPool::new(2 * threads + 2),
            breaker: Breaker::default(),
        })
    }

    /// Create an engine from a JSON config (`None` = defaults).
    pub fn from_json_config(graph: impl Into<Arc<Graph>>, config: Option<&str>) -> Result<Engine> {
        let config = match config {
            Some(text) => EngineConfig::from_json(text)?,
            None => EngineConfig::default(),
        };
        Engine::new(graph, config)
    }

    /// The graph recalls currently start on.
    pub fn graph(&self) -> Arc<Graph> {
        self.graph.load_full()
    }

    /// Swap in a new graph atomically; recalls in flight finish on the graph they started with.
    pub fn replace_graph(&self, graph: impl Into<Arc<Graph>>) {
        self.graph.store(graph.into());
    }

    /// The live config.
    pub fn config(&self) -> EngineConfig {
        self.live.load().config.clone()
    }

    /// Merge `patch` (the §14 shape, any subset of keys) into the live config, validate and apply it.
    /// Returns the config now in force. `threads` and `opencl` are fixed at creation.
    pub fn update_config(&self, patch: &Value) -> Result<EngineConfig> {
        let _writer = self.config_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.live.load();
        let next = current.config.patched(patch)?;
        if next.threads != current.config.threads {
            return Err(Error::config("threads", "is fixed when the engine is created"));
        }
        if next.opencl != current.config.opencl {
            return Err(Error::config("opencl", "is fixed when the engine is created"));
        }
        self.live.store(Arc::new(LiveConfig::new(next.clone())));
        tracing::debug!(config = %serde_json::to_string(&next).unwrap_or_default(), "config updated");
        Ok(next)
    }

    /// [`Engine::update_config`] from JSON text.
    pub fn update_config_json(&self, patch: &str) -> Result<EngineConfig> {
        let patch: Value = serde_json::from_str(patch)
            .map_err(|e| Error::config("(document)", format!("malformed JSON: {e}")))?;
        self.update_config(&patch)
    }

    /// Set the breaker's manual override.
    pub fn set_breaker_override(&self, mode: BreakerOverride) {
        self.breaker.set_override(mode);
    }

    /// The breaker's manual override.
    pub fn breaker_override(&self) -> BreakerOverride {
        self.breaker.override_mode()
    }

    /// Threads in the spreading pool (1 = everything inline).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Scratch buffers lent out right now.
    pub fn pool_in_use(&self) -> usize {
        self.scratch.in_use()
    }

    /// Scratch buffers in existence.
    pub fn pool_capacity(&self) -> usize {
        self.scratch.capacity()
    }

    /// Approximate heap bytes held by idle scratch buffers.
    pub fn pool_idle_bytes(&self) -> usize {
        self.scratch.idle_bytes()
    }

    /// Recall what `cue` activates.
    pub fn recall(&self, cue: &Cue) -> Result<Recall> {
        let mut out = Recall::default();
        self.recall_into(cue, &mut out)?;
        Ok(out)
    }

    /// Recall into `out`, reusing its result buffer (no allocation once warm).
    pub fn recall_into(&self, cue: &Cue, out: &mut Recall) -> Result<()> {
        let graph = self.graph.load();
        self.recall_on(&graph, cue, out)
    }

    /// Recall from §15 cue JSON to §15 result JSON (labels from the graph the recall ran on).
    pub fn recall_json(&self, cue_json: &str) -> Result<String> {
        let cue = Cue::from_json(cue_json)?;
        let graph = self.graph.load_full();
        let mut recall = Recall::default();
        self.recall_on(&graph, &cue, &mut recall)?;
        Ok(recall.to_json_value(&graph).to_string())
    }

    fn recall_on(&self, graph: &Graph, cue: &Cue, out: &mut Recall) -> Result<()> {
        let start = Instant::now();
        let live = self.live.load();
        let config = &live.config;
        let k = cue.k.unwrap_or(config.recall.k);
        if k == 0 {
            return Err(Error::cue("k", "must be >= 1"));
        }
        let mut scratch = self.scratch.checkout(graph.node_count());
        recall::resolve_seeds(graph, cue, config.recall.seed_k, config.recall.min_similarity, &mut scratch)?;

        out.stats = SpreadStats::default();
        if !self.breaker.should_attempt() {
            recall::fallback(graph, cue, k, &mut scratch, &mut out.results);
            self.answer_fallback(out, FallbackReason::BreakerOpen, start);
            return Ok(());
        }
        let seeds = std::mem::take(&mut scratch.seeds);
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            let mut stats =
                spread::spread(graph, &live.params, &seeds, &mut scratch, self.pool.as_ref(), &NoHook);
            stats.mass =
                spread::collect_results(graph, live.params.threshold, k, &mut scratch, &mut out.results);
            stats
        }));
        let (stats, panicked) = match attempt {
            Ok(stats) => (stats, false),
            Err(_) => {
                // The buffer's state is unknown after a panic: drop it and answer from a fresh one.
                tracing::error!("spreading panicked; answering with the fallback");
                scratch.discard();
                scratch = self.scratch.checkout(graph.node_count());
                (SpreadStats::default(), true)
            }
        };
        scratch.seeds = seeds;
        let latency = start.elapsed();
        let reason = recall::classify(
            (!panicked).then_some(&stats),
            latency,
            live.slow_limit,
            config.recall.min_activation_mass,
        );
        self.breaker.on_result(CallOutcome { failed: reason.is_some(), latency });
        out.stats = stats;
        match reason {
            None => {
                out.source = Source::Spreading;
                out.reason = None;
                out.latency = start.elapsed();
                tracing::debug!(
                    latency_us = out.latency.as_micros() as u64,
                    results = out.results.len(),
                    "recall"
                );
                Ok(())
            }
            Some(reason) => {
                recall::fallback(graph, cue, k, &mut scratch, &mut out.results);
                self.answer_fallback(out, reason, start);
                Ok(())
            }
        }
    }

    fn answer_fallback(&self, out: &mut Recall, reason: FallbackReason, start: Instant) {
        out.source = Source::Fallback;
        out.reason = Some(reason);
        out.latency = start.elapsed();
        tracing::debug!(reason = reason.as_str(), "recall answered by the fallback");
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        drop(self.pool.take());
        let handles = std::mem::take(&mut *self.pool_threads.lock().unwrap_or_else(|p| p.into_inner()));
        let me = std::thread::current().id();
        for handle in handles {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

fn build_pool(threads: usize, handles: &Arc<Mutex<Vec<JoinHandle<()>>>>) -> Result<rayon::ThreadPool> {
    let handles = Arc::clone(handles);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("axonal-spread-{i}"))
        .spawn_handler(move |thread| {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                builder = builder.name(name.to_owned());
            }
            if let Some(size) = thread.stack_size() {
                builder = builder.stack_size(size);
            }
            let handle = builder.spawn(|| thread.run())?;
            handles.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
            Ok(())
        })
        .build()
        .map_err(|e| Error::Unavailable {
            feature: "threads",
            message: format!("cannot start the spreading pool: {e}"),
        })
}

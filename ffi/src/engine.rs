//! Engine handle: creation, recall, telemetry, health, configuration, breaker, tuner, chaos.

use std::cell::RefCell;
use std::ffi::c_char;
use std::sync::Arc;

use axonal_core::{BreakerOverride, ChaosConfig, Cue, Engine, EngineConfig, Host, Recall, Source};

use crate::error::*;
use crate::graph::{axonal_graph, graph_ref};

/// A spreading-activation engine. Thread-safe: every `axonal_engine_*` call except
/// `axonal_engine_free` may run concurrently from any thread. `axonal_engine_free` stops and joins the
/// engine's threads and must be the handle's last call.
pub struct axonal_engine {
    /// The engine and the HTTP servers started on it; `axonal_engine_free` closes it.
    pub(crate) host: Host,
}

pub(crate) fn engine_ref<'a>(e: *const axonal_engine) -> FfiResult<&'a Engine> {
    unsafe { e.as_ref() }.map(|e| &**e.host.engine()).ok_or_else(|| FfiError::null("engine"))
}

pub(crate) fn engine_host<'a>(e: *const axonal_engine) -> FfiResult<&'a Host> {
    unsafe { e.as_ref() }.map(|e| &e.host).ok_or_else(|| FfiError::null("engine"))
}

/// Create an engine over `g` (the engine keeps its own reference) with a JSON config (docs/spec.md §14;
/// NULL: defaults).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_new(
    g: *const axonal_graph,
    config_json: *const c_char,
    out: *mut *mut axonal_engine,
) -> axonal_status {
    run(|| {
        let out = handle_out(out)?;
        let graph = Arc::clone(&graph_ref(g)?.graph);
        let config = if config_json.is_null() {
            EngineConfig::default()
        } else {
            EngineConfig::default().patched(&unsafe { json_arg(config_json, "config_json") }?)?
        };
        *out = Box::into_raw(Box::new(axonal_engine { host: Host::new(Engine::new(graph, config)?) }));
        Ok(())
    })
}

/// Stop the engine's HTTP servers, stop and join its threads and free it (NULL is ignored).
/// Registered callbacks' `userdata_free` run here. Server handles stay valid (they answer nothing)
/// until `axonal_http_server_stop`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_free(e: *mut axonal_engine) {
    run_void(|| {
        if !e.is_null() {
            let handle = unsafe { Box::from_raw(e) };
            // The host stops the servers first, so no request holds the engine while it shuts down.
            drop(handle.host.close());
        }
    });
}

/// Swap in `g` atomically as the next graph version (pending changes are dropped); recalls in
/// flight finish on the version they started with.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_replace_graph(
    e: *const axonal_engine,
    g: *const axonal_graph,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        engine.replace_graph(Arc::clone(&graph_ref(g)?.graph));
        Ok(())
    })
}

/// Recall from a §15 cue JSON; `*out_json` receives the §15 result JSON (free with
/// `axonal_string_free`) and `*out_len` its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_recall(
    e: *const axonal_engine,
    cue_json: *const c_char,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        string_out(out_json, out_len)?;
        let cue = Cue::from_value(&unsafe { json_arg(cue_json, "cue_json") }?)?;
        give_string(engine.recall_cue_json(&cue)?, out_json, out_len)
    })
}

thread_local! {
    /// Reused per thread so the array recall allocates nothing once warm.
    static BUFFERS: RefCell<(Cue, Recall)> = RefCell::new((Cue::default(), Recall::default()));
}

/// Flag bit of `axonal_engine_recall_seeds`: the fallback answered.
pub const AXONAL_RECALL_FLAG_FALLBACK: u32 = 1;
/// Flag bit of `axonal_engine_recall_seeds`: a tier timeout truncated the spread.
pub const AXONAL_RECALL_FLAG_TRUNCATED: u32 = 2;

/// Flag bit of a recall's flags: the breaker refused the call (the fallback answered).
pub const AXONAL_RECALL_FLAG_BREAKER_OPEN: u32 = 4;
/// Flag bit of a recall's flags: spreading failed (injected faults included; the fallback answered).
pub const AXONAL_RECALL_FLAG_ERROR: u32 = 8;
/// Flag bit of a recall's flags: spreading was too slow (the fallback answered).
pub const AXONAL_RECALL_FLAG_SLOW: u32 = 16;
/// Flag bit of a recall's flags: spreading delivered too little activation (the fallback answered).
pub const AXONAL_RECALL_FLAG_LOW_MASS: u32 = 32;

/// A recall's `AXONAL_RECALL_FLAG_*` bits: who answered, why, and whether a timeout truncated it.
fn recall_flags(recall: &Recall) -> u32 {
    use axonal_core::FallbackReason;
    let reason = match recall.reason {
        None => 0,
        Some(FallbackReason::BreakerOpen) => AXONAL_RECALL_FLAG_BREAKER_OPEN,
        Some(FallbackReason::Error) => AXONAL_RECALL_FLAG_ERROR,
        Some(FallbackReason::Slow) => AXONAL_RECALL_FLAG_SLOW,
        Some(FallbackReason::LowMass) => AXONAL_RECALL_FLAG_LOW_MASS,
        Some(_) => 0,
    };
    reason
        | if recall.source == Source::Fallback { AXONAL_RECALL_FLAG_FALLBACK } else { 0 }
        | if recall.stats.truncated { AXONAL_RECALL_FLAG_TRUNCATED } else { 0 }
}

/// Recall from `seed_count` seed ids (activations: parallel array, or NULL for all 1.0) into caller
/// buffers: the top `capacity` results (activation descending, then id) go to `out_nodes` and
/// `out_activations`, their number to `*out_count`, and flags (`AXONAL_RECALL_FLAG_*`) to
/// `*out_flags` (NULL: not wanted). No JSON; no allocation once warm.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_recall_seeds(
    e: *const axonal_engine,
    seeds: *const u32,
    activations: *const f32,
    seed_count: usize,
    out_nodes: *mut u32,
    out_activations: *mut f32,
    capacity: usize,
    out_count: *mut usize,
    out_flags: *mut u32,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        if seeds.is_null() {
            return Err(FfiError::null("seeds"));
        }
        if seed_count == 0 {
            return Err(FfiError::invalid("seed_count must be at least 1"));
        }
        if capacity == 0 {
            return Err(FfiError::invalid("capacity must be at least 1 (it is the number of results, k)"));
        }
        if out_nodes.is_null() {
            return Err(FfiError::null("out_nodes"));
        }
        if out_activations.is_null() {
            return Err(FfiError::null("out_activations"));
        }
        // A length whose byte size passes isize::MAX cannot describe a real buffer.
        if seed_count > isize::MAX as usize / 4 || capacity > isize::MAX as usize / 4 {
            return Err(FfiError::invalid("seed_count or capacity is larger than any buffer can be"));
        }
        let out_count = out_arg(out_count, "out_count")?;
        BUFFERS.with(|buffers| {
            let mut buffers = buffers.borrow_mut();
            let (cue, recall) = &mut *buffers;
            cue.seeds.clear();
            {
                // Inputs are read (and their slices dropped) before any output slice exists, so a
                // caller may pass one buffer as both `seeds` and `out_nodes`.
                let ids = unsafe { std::slice::from_raw_parts(seeds, seed_count) };
                let weights = (!activations.is_null())
                    .then(|| unsafe { std::slice::from_raw_parts(activations, seed_count) });
                cue.seeds.extend(ids.iter().enumerate().map(|(i, &id)| (id, weights.map_or(1.0, |w| w[i]))));
            }
            cue.embedding = None;
            cue.k = Some(capacity);
            engine.recall_into(cue, recall)?;
            let n = recall.results.len().min(capacity);
            let nodes = unsafe { std::slice::from_raw_parts_mut(out_nodes, n) };
            let acts = unsafe { std::slice::from_raw_parts_mut(out_activations, n) };
            for (i, a) in recall.results[..n].iter().enumerate() {
                nodes[i] = a.node;
                acts[i] = a.activation;
            }
            *out_count = n;
            if let Some(flags) = unsafe { out_flags.as_mut() } {
                *flags = recall_flags(recall);
            }
            Ok(())
        })
    })
}

/// Recall a batch of `cue_count` cues in CSR form (docs/spec.md §19): cue `i` is seeded by
/// `seed_ids[seed_offsets[i] .. seed_offsets[i + 1]]` (activations: parallel array, or NULL for all
/// 1.0); `seed_offsets` has `cue_count + 1` entries, starts at 0 and never decreases. Each cue gets
/// the top `k` results (0: the configured `recall.k`), exactly as its own recall would: cue `i`'s are
/// `out_nodes` / `out_activations` at `out_offsets[i] .. out_offsets[i + 1]` (`out_offsets` has
/// `cue_count + 1` entries), and its `AXONAL_RECALL_FLAG_*` bits go to `out_flags[i]` (NULL: not
/// wanted). `capacity` (entries of `out_nodes` and `out_activations`) must be at least
/// `cue_count × k`, checked before anything runs (`AXONAL_STATUS_BUFFER_TOO_SMALL`). Every cue is
/// checked before any runs: an invalid cue or offset fails the call (`AXONAL_STATUS_RECALL`, the
/// message naming it) and recalls nothing. `cue_count` 0 answers nothing (`out_offsets[0] = 0`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_recall_batch(
    e: *const axonal_engine,
    seed_ids: *const u32,
    activations: *const f32,
    seed_offsets: *const usize,
    cue_count: usize,
    k: usize,
    out_offsets: *mut usize,
    out_nodes: *mut u32,
    out_activations: *mut f32,
    capacity: usize,
    out_flags: *mut u32,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        if seed_offsets.is_null() {
            return Err(FfiError::null("seed_offsets"));
        }
        if out_offsets.is_null() {
            return Err(FfiError::null("out_offsets"));
        }
        // A length whose byte size passes isize::MAX cannot describe a real buffer.
        let too_large = |n: usize| n > isize::MAX as usize / 8;
        if too_large(cue_count.saturating_add(1)) || too_large(capacity) {
            return Err(FfiError::invalid("cue_count or capacity is larger than any buffer can be"));
        }
        let cues = {
            let offsets = unsafe { std::slice::from_raw_parts(seed_offsets, cue_count + 1) };
            let seed_count = offsets[cue_count];
            if too_large(seed_count) {
                return Err(FfiError::invalid(format!(
                    "seed_offsets[{cue_count}] = {seed_count} is larger than any buffer can be"
                )));
            }
            if seed_count > 0 && seed_ids.is_null() {
                return Err(FfiError::null("seed_ids"));
            }
            let ids: &[u32] = if seed_count == 0 {
                &[]
            } else {
                unsafe { std::slice::from_raw_parts(seed_ids, seed_count) }
            };
            let weights = (!activations.is_null() && seed_count > 0)
                .then(|| unsafe { std::slice::from_raw_parts(activations, seed_count) });
            // `k` is resolved once: the capacity check below and every cue use the same value, even
            // if the configured `recall.k` changes while the batch runs.
            let k = if k > 0 { k } else { engine.config().recall.k };
            (axonal_core::recall::batch_from_csr(ids, weights, offsets, Some(k))?, k)
        };
        let (cues, k) = cues;
        let needed = cue_count.saturating_mul(k);
        if cue_count > 0 && (out_nodes.is_null() || out_activations.is_null()) {
            return Err(FfiError::null(if out_nodes.is_null() { "out_nodes" } else { "out_activations" }));
        }
        if capacity < needed {
            let product = match cue_count.checked_mul(k) {
                Some(product) => product.to_string(),
                None => "more than a size_t holds".into(),
            };
            return Err(FfiError::new(
                AXONAL_STATUS_BUFFER_TOO_SMALL,
                format!("capacity {capacity} is less than cue_count × k = {cue_count} × {k} = {product}"),
            ));
        }
        let recalls = engine.recall_batch(&cues)?;
        let offsets = unsafe { std::slice::from_raw_parts_mut(out_offsets, cue_count + 1) };
        let total: usize = recalls.iter().map(|r| r.results.len()).sum();
        if total > capacity {
            // Unreachable while each cue answers at most `k`; never write past the caller's buffer.
            return Err(FfiError::new(
                AXONAL_STATUS_BUFFER_TOO_SMALL,
                format!("{total} results do not fit capacity {capacity}"),
            ));
        }
        let (nodes, acts): (&mut [u32], &mut [f32]) = if total == 0 {
            (&mut [], &mut [])
        } else {
            unsafe {
                (
                    std::slice::from_raw_parts_mut(out_nodes, total),
                    std::slice::from_raw_parts_mut(out_activations, total),
                )
            }
        };
        let mut flags = (!out_flags.is_null() && cue_count > 0)
            .then(|| unsafe { std::slice::from_raw_parts_mut(out_flags, cue_count) });
        let mut at = 0;
        offsets[0] = 0;
        for (i, recall) in recalls.iter().enumerate() {
            for a in &recall.results {
                nodes[at] = a.node;
                acts[at] = a.activation;
                at += 1;
            }
            offsets[i + 1] = at;
            if let Some(flags) = flags.as_deref_mut() {
                flags[i] = recall_flags(recall);
            }
        }
        Ok(())
    })
}

/// A typed report as JSON text.
fn to_json(value: &impl serde::Serialize) -> FfiResult<String> {
    serde_json::to_string(value)
        .map_err(|e| FfiError::new(AXONAL_STATUS_PANIC, format!("serialising a report: {e}")))
}

/// A JSON document from the engine, handed to C.
fn engine_json(
    e: *const axonal_engine,
    out: *mut *mut c_char,
    out_len: *mut usize,
    make: impl FnOnce(&Engine) -> FfiResult<String>,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        string_out(out, out_len)?;
        give_string(make(engine)?, out, out_len)
    })
}

/// The streaming snapshot JSON (docs/spec.md §5; docs/telemetry.md).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_snapshot_json(
    e: *const axonal_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    engine_json(e, out_json, out_len, |engine| to_json(&engine.streaming_snapshot()))
}

/// The Prometheus text exposition.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_prometheus_text(
    e: *const axonal_engine,
    out_text: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    engine_json(e, out_text, out_len, |engine| Ok(engine.prometheus_text()))
}

/// The cached health report JSON (docs/spec.md §6); runs no probe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_health_json(
    e: *const axonal_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    engine_json(e, out_json, out_len, |engine| to_json(&engine.health_report()))
}

/// Run the probe `name` now (waiting up to its timeout) and return its report entry JSON.
/// `AXONAL_STATUS_NOT_FOUND` if no probe has that name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_check_probe(
    e: *const axonal_engine,
    name: *const c_char,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        string_out(out_json, out_len)?;
        let name = unsafe { str_arg(name, "name") }?;
        if !engine.health().names().iter().any(|n| n == name) {
            return Err(FfiError::new(AXONAL_STATUS_NOT_FOUND, format!("no probe named {name:?}")));
        }
        give_string(to_json(&engine.check_probe(name)?)?, out_json, out_len)
    })
}

/// The live config JSON (docs/spec.md §14).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_config_json(
    e: *const axonal_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    engine_json(e, out_json, out_len, |engine| Ok(engine.config().to_json()))
}

/// Merge a partial config (docs/spec.md §14 shape) into the live config: validated, clamped by the
/// guardrails, applied whole or not at all (`axonal_engine_config_json` shows what applied).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_update_config(
    e: *const axonal_engine,
    patch_json: *const c_char,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        let patch = unsafe { json_arg(patch_json, "patch_json") }?;
        engine.update_config(&patch)?;
        Ok(())
    })
}

/// Set the breaker override: `"auto"`, `"forced_open"` or `"forced_closed"`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_set_breaker_override(
    e: *const axonal_engine,
    mode: *const c_char,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        let mode = unsafe { str_arg(mode, "mode") }?;
        let mode = BreakerOverride::parse(mode).map_err(|e| FfiError::invalid(e.to_string()))?;
        engine.set_breaker_override(mode);
        Ok(())
    })
}

/// The breaker state: 0 closed, 1 half-open, 2 open.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_breaker_state(
    e: *const axonal_engine,
    out: *mut u32,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        *out_arg(out, "out")? = engine.breaker_state() as u32;
        Ok(())
    })
}

/// Enable or disable the auto-tuner at run time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_set_autotune_enabled(
    e: *const axonal_engine,
    enabled: bool,
) -> axonal_status {
    run(|| {
        engine_ref(e)?.set_autotune_enabled(enabled);
        Ok(())
    })
}

/// The auto-tuner's audit log JSON (`{"schema", "capacity", "entries"}`; docs/autotuning.md).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_autotune_audit_json(
    e: *const axonal_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    engine_json(e, out_json, out_len, |engine| to_json(&engine.autotune_audit_log()))
}

/// Run one tuning step now; `*out_json` receives the decision (`{"action", "reason", "entry"}`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_autotune_now(
    e: *const axonal_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    engine_json(e, out_json, out_len, |engine| to_json(&engine.autotune_now()))
}

/// Start injecting faults (docs/spec.md §15 chaos JSON); NULL or `"{}"` clears.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_set_chaos(
    e: *const axonal_engine,
    chaos_json: *const c_char,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        if chaos_json.is_null() {
            engine.clear_chaos();
            return Ok(());
        }
        let text = unsafe { str_arg(chaos_json, "chaos_json") }?;
        serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
            FfiError::new(AXONAL_STATUS_INVALID_JSON, format!("chaos_json is malformed JSON: {e}"))
        })?;
        Ok(engine.set_chaos(ChaosConfig::from_json(text)?)?)
    })
}

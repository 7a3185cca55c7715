//! The OpenCL spreading backend (cargo feature `opencl`): whole recalls on the device (docs/spec.md
//! §19). The graph's reverse CSRs, out-degrees and tiers are uploaded once per graph; a recall sends
//! its seeds, runs every depth on the device — marking, the per-tier gathers and the finish — and
//! reads back the qualifying nodes and the per-depth counters, never the per-node state. A batch runs
//! up to [`MAX_LANES`] cues as *lanes* of one launch sequence: one pass over the graph per depth
//! serves them all.
//!
//! The OpenCL library is loaded at run time (`opencl3`'s dynamic loading), so one binary runs with or
//! without a driver; platform discovery and the program build happen once per process, at the first
//! engine's creation, and the engine runs its kernels once at creation ([`OpenClBackend::warm_up`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opencl3::command_queue::{CL_QUEUE_PROFILING_ENABLE, CommandQueue};
use opencl3::context::Context;
use opencl3::device::{CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_GPU, Device, get_all_devices};
use opencl3::event::Event;
use opencl3::kernel::{ExecuteKernel, Kernel};
use opencl3::memory::{Buffer, CL_MEM_READ_ONLY, CL_MEM_READ_WRITE, ClMem};
use opencl3::program::Program;
use opencl3::types::{CL_BLOCKING, CL_NON_BLOCKING, cl_float, cl_uchar, cl_uint, cl_ulong};

use crate::config::CyclePolicy;
use crate::graph::{Csr, Graph, Tier};
use crate::spread::{
    Activation, Backend, DeviceCue, DeviceSpread, MAX_DEPTH, PhaseHook, PhaseTimer, SpreadParams, SpreadStats,
};
use crate::telemetry::Counter;

const SOURCE: &str = include_str!("recall.cl");
/// Preferred work-group size (smaller when the device's maximum is).
const LOCAL_SIZE: usize = 64;
/// Cues per launch sequence, at most: a power of two, and never more than the work-group size.
pub const MAX_LANES: usize = 32;
/// Graphs kept resident per engine: the engine's own and the health probe's, so the probe's
/// periodic spread does not evict (and force a re-upload of) the graph recalls run on.
const RESIDENT_GRAPHS: usize = 2;
/// Per-lane counters of a depth (see `recall.cl`).
const COUNTERS: usize = 7;
/// Device bytes per (node, lane): four `f32` arrays, hops, fired, and a result key with its hops.
const BYTES_PER_ENTRY: u64 = 4 * 4 + 1 + 1 + 8 + 1;
/// Spreading state may take this share of the device's memory (the graph and the driver need the rest).
const MEMORY_SHARE: u64 = 2;
const UNREACHED: u8 = u8::MAX;

/// The device, its context and the built program, shared by every engine of the process.
struct SharedDevice {
    name: String,
    /// A GPU (else a CPU or other device): picks the default `opencl_min_edges`.
    gpu: bool,
    /// Work-group size of every launch: one size, so the driver compiles one variant of each kernel
    /// (PoCL compiles per work-group size at the first launch).
    local_size: usize,
    /// Global memory, and the largest single allocation, in bytes.
    memory: u64,
    max_alloc: u64,
    context: Context,
    program: Program,
}

// OpenCL contexts and programs are thread-safe objects (OpenCL 1.2 §A.2); kernels and queues, which
// are not shared, live in each engine's `DeviceState` behind a mutex.
unsafe impl Send for SharedDevice {}
unsafe impl Sync for SharedDevice {}

static SHARED: OnceLock<Result<Arc<SharedDevice>, String>> = OnceLock::new();

/// Find a device (a GPU if there is one, else any) and build the program; once per process.
fn shared() -> Result<Arc<SharedDevice>, String> {
    SHARED
        .get_or_init(|| {
            let ids = get_all_devices(CL_DEVICE_TYPE_GPU)
                .ok()
                .filter(|ids| !ids.is_empty())
                .or_else(|| get_all_devices(CL_DEVICE_TYPE_ALL).ok().filter(|ids| !ids.is_empty()))
                .ok_or_else(|| "no OpenCL platform or device found".to_owned())?;
            let device = Device::new(ids[0]);
            let name = device.name().map_err(|e| format!("querying the device name: {e}"))?;
            let gpu = device.dev_type().is_ok_and(|t| t & CL_DEVICE_TYPE_GPU != 0);
            // A power of two, so lanes (powers of two up to it) divide it.
            let max_group = device.max_work_group_size().unwrap_or(1).clamp(1, LOCAL_SIZE);
            let local_size = 1 << max_group.ilog2();
            let memory = device.global_mem_size().map_err(|e| format!("querying {name}'s memory: {e}"))?;
            let max_alloc = device.max_mem_alloc_size().unwrap_or(memory / 4);
            let context =
                Context::from_device(&device).map_err(|e| format!("creating a context on {name}: {e}"))?;
            let program = Program::create_and_build_from_source(&context, SOURCE, "")
                .map_err(|log| format!("building the recall kernels on {name}: {log}"))?;
            Ok(Arc::new(SharedDevice { name, gpu, local_size, memory, max_alloc, context, program }))
        })
        .clone()
}

/// The reverse CSR of one tier on the device.
struct DeviceCsr {
    offsets: Buffer<cl_uint>,
    sources: Buffer<cl_uint>,
    weights: Buffer<cl_float>,
}

/// One graph on the device.
struct DeviceGraph {
    id: u64,
    reverse: [Option<DeviceCsr>; 3],
    degree: Buffer<cl_uint>,
    tiers: Buffer<cl_uchar>,
}

/// Per-(node, lane) arrays, `entries` long.
struct LaneState {
    entries: usize,
    current: Buffer<cl_float>,
    activation: Buffer<cl_float>,
    next: Buffer<cl_float>,
    send: Buffer<cl_float>,
    hops: Buffer<cl_uchar>,
    fired: Buffer<cl_uchar>,
    keys: Buffer<cl_ulong>,
    key_hops: Buffer<cl_uchar>,
}

/// Per-lane scalars and the seeds of one launch sequence.
struct LaneScalars {
    counters: Buffer<cl_ulong>,
    found: Buffer<cl_uint>,
    mass: Buffer<cl_ulong>,
    exhausted: Buffer<cl_uchar>,
    seed_capacity: usize,
    seed_nodes: Buffer<cl_uint>,
    seed_lanes: Buffer<cl_uint>,
    seed_activations: Buffer<cl_float>,
}

struct Kernels {
    seed: Kernel,
    step: Kernel,
    gather: Kernel,
    collect: Kernel,
}

/// One engine's queue, kernels and buffers.
struct DeviceState {
    queue: CommandQueue,
    kernels: Kernels,
    /// The graphs that are resident, most recently used last.
    graphs: Vec<DeviceGraph>,
    lanes: Option<LaneState>,
    scalars: Option<LaneScalars>,
}

unsafe impl Send for DeviceState {}

/// An engine's OpenCL backend.
pub struct OpenClBackend {
    shared: Arc<SharedDevice>,
    state: Mutex<DeviceState>,
    /// `auto` runs recalls over graphs with at least this many edges on the device.
    min_edges: AtomicU64,
    launches: Counter,
}

impl std::fmt::Debug for OpenClBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenClBackend").field("device", &self.shared.name).finish_non_exhaustive()
    }
}

impl OpenClBackend {
    /// Discover the device (once per process) and set up this engine's queue and kernels.
    /// `min_edges`: see [`OpenClBackend::set_min_edges`].
    pub fn new(min_edges: Option<u64>, launches: Counter) -> Result<OpenClBackend, String> {
        let shared = shared()?;
        let queue =
            CommandQueue::create_default_with_properties(&shared.context, CL_QUEUE_PROFILING_ENABLE, 0)
                .map_err(|e| format!("creating a command queue on {}: {e}", shared.name))?;
        let kernel = |name: &str| {
            Kernel::create(&shared.program, name).map_err(|e| format!("creating the {name} kernel: {e}"))
        };
        let kernels = Kernels {
            seed: kernel("seed")?,
            step: kernel("advance")?,
            gather: kernel("gather")?,
            collect: kernel("collect")?,
        };
        Ok(OpenClBackend {
            state: Mutex::new(DeviceState { queue, kernels, graphs: Vec::new(), lanes: None, scalars: None }),
            min_edges: AtomicU64::new(resolve_min_edges(min_edges, shared.gpu)),
            shared,
            launches,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.shared.name
    }

    /// Change the graph size (edges) from which `auto` runs recalls on the device; `None`: the
    /// default for the device's type.
    pub fn set_min_edges(&self, min_edges: Option<u64>) {
        self.min_edges.store(resolve_min_edges(min_edges, self.shared.gpu), Ordering::Relaxed);
    }

    /// The graph size in force (`u64::MAX`: the device is never used by `auto`).
    pub fn min_edges(&self) -> u64 {
        self.min_edges.load(Ordering::Relaxed)
    }

    /// Whether `auto`/`required` will ever send a recall here (a CPU device never, by default).
    pub fn in_use(&self) -> bool {
        self.min_edges() != u64::MAX
    }

    /// The most cues one launch sequence over `graph` holds: [`MAX_LANES`], fewer when the device's
    /// memory is short; 0 when not even one recall's state fits.
    pub fn lanes_for(&self, graph: &Graph) -> usize {
        let n = graph.node_count().max(1) as u64;
        let graph_bytes = graph_bytes(graph);
        let budget = (self.shared.memory / MEMORY_SHARE).saturating_sub(graph_bytes);
        let by_memory = budget / (n * BYTES_PER_ENTRY);
        // The largest array is the result keys, 8 bytes an entry.
        let by_alloc = self.shared.max_alloc / (n * 8);
        let lanes = by_memory.min(by_alloc).min(MAX_LANES.min(self.shared.local_size) as u64) as usize;
        if lanes == 0 { 0 } else { 1 << lanes.ilog2() }
    }

    /// Make `graph` resident and run one recall on it through every kernel, so neither the kernels'
    /// compilation (PoCL compiles at the first launch, minus what its cache holds) nor the upload falls
    /// on a recall (docs/spec.md §19). Not counted as launches.
    pub fn warm_up(&self, graph: &Graph) -> Result<(), String> {
        if graph.node_count() == 0 {
            return Ok(());
        }
        let params = SpreadParams {
            max_depth: 2,
            decay: 0.5,
            threshold: 0.0,
            max_fan_out: 0,
            cycle_policy: CyclePolicy::FireOnce,
            batch_size: 1,
            tier_timeouts: [None; 3],
            execution: Default::default(),
        };
        let mut results = Vec::new();
        let mut cue =
            [DeviceCue { seeds: &[(0, 1.0)], k: 1, results: &mut results, stats: SpreadStats::default() }];
        self.run(graph, &params, &mut cue, &crate::spread::NoHook, false)
    }

    fn run(
        &self,
        graph: &Graph,
        params: &SpreadParams,
        cues: &mut [DeviceCue<'_>],
        hook: &dyn PhaseHook,
        counted: bool,
    ) -> Result<(), String> {
        if counted && FORCE_FAILURE.with(|f| f.replace(false)) {
            return Err("injected GPU failure (chaos)".into());
        }
        check_cues(graph, cues)?;
        let max_lanes = self.lanes_for(graph);
        if max_lanes == 0 {
            return Err(format!(
                "a recall over {} nodes needs {} MiB of device memory; {} has {} MiB",
                graph.node_count(),
                (graph.node_count() as u64 * BYTES_PER_ENTRY + graph_bytes(graph)) >> 20,
                self.shared.name,
                self.shared.memory >> 20
            ));
        }
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        state.make_resident(&self.shared.context, graph)?;
        for chunk in cues.chunks_mut(max_lanes) {
            let lanes = chunk.len().next_power_of_two().min(max_lanes);
            state.reserve(&self.shared.context, graph.node_count() * lanes, chunk)?;
            let mut launch = Launch {
                state: &*state,
                graph,
                params,
                lanes,
                local: self.shared.local_size,
                launches: if counted { Some(&self.launches) } else { None },
            };
            launch.recall(chunk, hook)?;
        }
        Ok(())
    }
}

impl DeviceState {
    /// Upload `graph` unless it is resident; either way it ends up the most recently used.
    fn make_resident(&mut self, context: &Context, graph: &Graph) -> Result<(), String> {
        if let Some(i) = self.graphs.iter().position(|g| g.id == graph.id()) {
            let entry = self.graphs.remove(i);
            self.graphs.push(entry);
            return Ok(());
        }
        if self.graphs.len() >= RESIDENT_GRAPHS {
            self.graphs.remove(0); // free the least recently used copy before uploading
        }
        let queue = &self.queue;
        let mut reverse = [None, None, None];
        for (slot, csr) in reverse.iter_mut().zip(&graph.reverse) {
            *slot = upload_csr(context, queue, csr)?;
        }
        let n = graph.node_count();
        let degree: Vec<u32> = graph.forward.offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let degree = if degree.len() == n { degree } else { vec![0; n] };
        let tiers: Vec<u8> = graph.tiers.iter().map(|t| t.index() as u8).collect();
        self.graphs.push(DeviceGraph {
            id: graph.id(),
            reverse,
            degree: upload(context, queue, &degree, CL_MEM_READ_ONLY)?,
            tiers: upload(context, queue, &tiers, CL_MEM_READ_ONLY)?,
        });
        Ok(())
    }

    /// Buffers for `entries` (node, lane) pairs and the seeds of `cues`.
    fn reserve(&mut self, context: &Context, entries: usize, cues: &[DeviceCue<'_>]) -> Result<(), String> {
        let entries = entries.max(1);
        if self.lanes.as_ref().is_none_or(|l| l.entries < entries) {
            self.lanes = None; // free the old arrays before allocating larger ones
            self.lanes = Some(LaneState {
                entries,
                current: create(context, entries, CL_MEM_READ_WRITE)?,
                activation: create(context, entries, CL_MEM_READ_WRITE)?,
                next: create(context, entries, CL_MEM_READ_WRITE)?,
                send: create(context, entries, CL_MEM_READ_WRITE)?,
                hops: create(context, entries, CL_MEM_READ_WRITE)?,
                fired: create(context, entries, CL_MEM_READ_WRITE)?,
                keys: create(context, entries, CL_MEM_READ_WRITE)?,
                key_hops: create(context, entries, CL_MEM_READ_WRITE)?,
            });
        }
        let seeds = cues.iter().map(|c| c.seeds.len()).sum::<usize>().max(1);
        if self.scalars.as_ref().is_none_or(|s| s.seed_capacity < seeds) {
            let seed_capacity = seeds.next_power_of_two();
            self.scalars = Some(LaneScalars {
                counters: create(context, MAX_LANES * COUNTERS, CL_MEM_READ_WRITE)?,
                found: create(context, MAX_LANES, CL_MEM_READ_WRITE)?,
                mass: create(context, 2 * MAX_LANES, CL_MEM_READ_WRITE)?,
                exhausted: create(context, MAX_LANES, CL_MEM_READ_ONLY)?,
                seed_capacity,
                seed_nodes: create(context, seed_capacity, CL_MEM_READ_ONLY)?,
                seed_lanes: create(context, seed_capacity, CL_MEM_READ_ONLY)?,
                seed_activations: create(context, seed_capacity, CL_MEM_READ_ONLY)?,
            });
        }
        Ok(())
    }
}

/// One launch sequence: up to `lanes` cues recalled together.
struct Launch<'a> {
    state: &'a DeviceState,
    graph: &'a Graph,
    params: &'a SpreadParams,
    lanes: usize,
    local: usize,
    launches: Option<&'a Counter>,
}

/// What the host keeps per lane while the depths run.
#[derive(Default, Clone, Copy)]
struct LaneRun {
    exhausted: u8,
    delivered: u64,
}

impl Launch<'_> {
    fn recall(&mut self, cues: &mut [DeviceCue<'_>], hook: &dyn PhaseHook) -> Result<(), String> {
        let (state, graph, p) = (self.state, self.graph, self.params);
        let n = graph.node_count();
        let lanes = self.lanes;
        let entries = n * lanes;
        let queue = &state.queue;
        let (Some(arrays), Some(scalars), Some(resident)) =
            (state.lanes.as_ref(), state.scalars.as_ref(), state.graphs.last())
        else {
            return Err("device buffers missing".into());
        };
        debug_assert_eq!(resident.id, graph.id());
        // The seeds of every lane, as three parallel arrays.
        let mut seed_nodes = Vec::new();
        let mut seed_lanes = Vec::new();
        let mut seed_activations = Vec::new();
        for (lane, cue) in cues.iter().enumerate() {
            for &(v, a) in cue.seeds {
                seed_nodes.push(v);
                seed_lanes.push(lane as u32);
                seed_activations.push(a);
            }
        }
        let seeds = seed_nodes.len();
        let mut no_tiers = vec![0u8; lanes];
        // Declared after the host slices the queue reads without blocking, so dropped before them:
        // on an error or a panic it waits for the device before they are freed.
        let _drain = DrainOnDrop { queue, armed: true };
        // SAFETY (every enqueue below): the buffers are at least `entries` (or `lanes`, or `seeds`)
        // long, as `reserve` made them; host slices written without blocking (the seeds, the
        // exhausted masks) live until the blocking read that follows their write, or `_drain`
        // waits for the queue.
        unsafe {
            fill(queue, &arrays.current, 0.0f32, entries)?;
            fill(queue, &arrays.activation, 0.0f32, entries)?;
            fill(queue, &arrays.next, 0.0f32, entries)?;
            fill(queue, &arrays.hops, UNREACHED, entries)?;
            fill(queue, &arrays.fired, 0u8, entries)?;
            fill(queue, &scalars.found, 0u32, lanes)?;
            fill(queue, &scalars.mass, 0u64, 2 * lanes)?;
            write(queue, &scalars.exhausted, &no_tiers)?;
            if seeds > 0 {
                write(queue, &scalars.seed_nodes, &seed_nodes)?;
                write(queue, &scalars.seed_lanes, &seed_lanes)?;
                write(queue, &scalars.seed_activations, &seed_activations)?;
                self.enqueue(
                    ExecuteKernel::new(&state.kernels.seed)
                        .set_arg(&(seeds as cl_uint))
                        .set_arg(&(lanes.ilog2() as cl_uint))
                        .set_arg(&scalars.seed_nodes)
                        .set_arg(&scalars.seed_lanes)
                        .set_arg(&scalars.seed_activations)
                        .set_arg(&arrays.current)
                        .set_arg(&arrays.activation)
                        .set_arg(&arrays.hops),
                    seeds,
                )?;
            }
        }
        let mut runs = vec![LaneRun::default(); lanes];
        let mut counters = vec![0u64; lanes * COUNTERS];
        // Depth 0's frontier: the seeds, marked.
        self.step(false, true, 0, &mut counters)?;
        for d in 0..(p.max_depth as usize).min(MAX_DEPTH) {
            // The frontier of depth `d` is in `send`, its counts in `counters`.
            // A lane whose frontier was empty once stays so (its state is all zeros from then on):
            // it counts nothing here and is charged no time.
            let lane_work: Vec<[bool; 3]> =
                (0..cues.len()).map(|l| [0, 1, 2].map(|t| counters[l * COUNTERS + t] > 0)).collect();
            for (lane, cue) in cues.iter_mut().enumerate() {
                let c = &counters[lane * COUNTERS..(lane + 1) * COUNTERS];
                let fired = (c[0] + c[1] + c[2]) as u32;
                if fired > 0 {
                    let s = &mut cue.stats;
                    s.depth_reached = d as u32 + 1;
                    s.nodes_fired[d] = fired;
                    s.edges_traversed[d] = c[3] + c[4] + c[5];
                }
            }
            let work = [0, 1, 2].map(|t| lane_work.iter().any(|w| w[t]));
            if !work.contains(&true) {
                break;
            }
            let depth_start = PhaseTimer::start();
            // Per tier: the chaos hook's host time and the tier's gather on the device.
            let mut times = [Duration::ZERO; 3];
            let mut hooks = Duration::ZERO;
            let mut gathers: Vec<(usize, Event)> = Vec::new();
            for tier in Tier::ALL {
                let t = tier.index();
                if !work[t] {
                    continue;
                }
                let mut timer = PhaseTimer::start();
                hook.before_tier(tier);
                let spent = timer.lap();
                times[t] += spent;
                hooks += spent;
                if let Some(csr) = &resident.reverse[t] {
                    // SAFETY: as above; the CSR has `n + 1` offsets.
                    let event = unsafe {
                        self.enqueue(
                            ExecuteKernel::new(&state.kernels.gather)
                                .set_arg(&(n as cl_uint))
                                .set_arg(&(lanes.ilog2() as cl_uint))
                                .set_arg(&csr.offsets)
                                .set_arg(&csr.sources)
                                .set_arg(&csr.weights)
                                .set_arg(&arrays.send)
                                .set_arg(&arrays.next),
                            entries,
                        )?
                    };
                    gathers.push((t, event));
                }
            }
            let mark = d + 1 < (p.max_depth as usize).min(MAX_DEPTH);
            let finish = self.step(true, mark, d, &mut counters)?;
            // The finish (and next marking) counts toward each lane's own last tier with work, as on
            // the CPU, where the last tier's gather finishes the depth.
            let gathered: Option<Vec<(usize, Duration)>> =
                gathers.iter().map(|(t, event)| event_time(event).map(|spent| (*t, spent))).collect();
            let finished = match (gathered, event_time(&finish)) {
                (Some(gathered), Some(finished)) => {
                    for (t, spent) in gathered {
                        times[t] += spent;
                    }
                    finished
                }
                // No profiling information: the depth's device time is its wall time less the hooks'.
                _ => depth_start.elapsed().saturating_sub(hooks),
            };
            let mut newly_exhausted = false;
            for (lane, (cue, run)) in cues.iter_mut().zip(&mut runs).enumerate() {
                run.delivered = run.delivered.saturating_add(counters[lane * COUNTERS + 6]);
                let last = (0..3).rev().find(|&t| lane_work[lane][t]).unwrap_or(0);
                for t in 0..3 {
                    if !lane_work[lane][t] {
                        continue;
                    }
                    let spent = times[t] + if t == last { finished } else { Duration::ZERO };
                    let s = &mut cue.stats;
                    s.tier_had_work[t] = true;
                    s.tier_time[t] += spent;
                    s.depth_time[d] += spent;
                    if let Some(limit) = p.tier_timeouts[t]
                        && s.tier_time[t] > limit
                        && !s.tier_timed_out[t]
                    {
                        s.tier_timed_out[t] = true;
                        s.truncated = true;
                        run.exhausted |= 1 << t;
                        newly_exhausted = true;
                    }
                }
            }
            if newly_exhausted && mark {
                // The next depth's frontier was marked before this depth's times were known: mark
                // it again without the exhausted tiers (docs/spec.md §19: judged per depth).
                for (lane, run) in runs.iter().enumerate() {
                    no_tiers[lane] = run.exhausted;
                }
                // SAFETY: as above; `no_tiers` lives until the blocking read in `step`.
                unsafe { write(queue, &scalars.exhausted, &no_tiers)? };
                self.step(false, true, d + 1, &mut counters)?;
            }
        }
        // Results out.
        // SAFETY: as above.
        unsafe {
            self.enqueue(
                ExecuteKernel::new(&state.kernels.collect)
                    .set_arg(&(n as cl_uint))
                    .set_arg(&(lanes.ilog2() as cl_uint))
                    .set_arg(&p.threshold)
                    .set_arg(&(n as cl_ulong))
                    .set_arg(&arrays.activation)
                    .set_arg(&arrays.hops)
                    .set_arg(&scalars.found)
                    .set_arg(&arrays.keys)
                    .set_arg(&arrays.key_hops)
                    .set_arg(&scalars.mass)
                    .set_arg_local_buffer(self.local * std::mem::size_of::<cl_ulong>()),
                entries,
            )?;
        }
        let mut found = vec![0u32; lanes];
        let mut mass = vec![0u64; 2 * lanes];
        let mut keys: Vec<u64> = Vec::new();
        let mut key_hops: Vec<u8> = Vec::new();
        // SAFETY: as above; the reads block.
        unsafe {
            read(queue, &scalars.found, 0, &mut found)?;
            read(queue, &scalars.mass, 0, &mut mass)?;
        }
        for (lane, (cue, run)) in cues.iter_mut().zip(&runs).enumerate() {
            let count = (found[lane] as usize).min(n);
            keys.resize(count, 0);
            key_hops.resize(count, 0);
            if count > 0 {
                // SAFETY: the lane's region holds `n` entries from `lane * n`.
                unsafe {
                    read(queue, &arrays.keys, lane * n, &mut keys)?;
                    read(queue, &arrays.key_hops, lane * n, &mut key_hops)?;
                }
            }
            let mut ranked: Vec<(u64, u8)> = keys.iter().copied().zip(key_hops.iter().copied()).collect();
            crate::spread::keep_top_k(&mut ranked, cue.k, |a, b| a.0.cmp(&b.0));
            let tiers = &graph.tiers;
            cue.results.clear();
            cue.results.extend(ranked.iter().map(|&(key, hops)| {
                let node = key as u32;
                Activation {
                    node,
                    activation: f32::from_bits(u32::MAX - (key >> 32) as u32),
                    hops: u32::from(hops),
                    tier: tiers[node as usize],
                }
            }));
            let s = &mut cue.stats;
            let units = (u128::from(mass[2 * lane + 1]) << 64) | u128::from(mass[2 * lane]);
            s.mass = units as f64 * (1.0 / MASS_SCALE);
            s.delivered = run.delivered as f64 * (1.0 / DELIVERED_SCALE);
            s.delivered_any = run.delivered > 0;
            // `pulled` and `pull_phases` describe the CPU pool's work (the tuner reads them): none here.
            s.device_depths = s.depth_reached;
            s.backend = Backend::OpenCl;
        }
        Ok(())
    }

    /// Enqueue the `advance` kernel with zeroed counters, then read the counters back (blocking).
    /// With `finish`: finish depth `d` (nodes first reached get hop `d + 1`) and, with `mark`, mark
    /// depth `d + 1`'s frontier. Without: mark depth `d`'s frontier. A node's `fired` tag is the
    /// depth it fired at plus one. Returns the kernel's event (for its time).
    fn step(&self, finish: bool, mark: bool, d: usize, counters: &mut [u64]) -> Result<Event, String> {
        let (state, p) = (self.state, self.params);
        let (Some(arrays), Some(scalars), Some(resident)) =
            (state.lanes.as_ref(), state.scalars.as_ref(), state.graphs.last())
        else {
            return Err("device buffers missing".into());
        };
        let n = self.graph.node_count();
        let lanes = self.lanes;
        // SAFETY: the buffers are as `reserve` made them; the read blocks.
        unsafe {
            fill(&state.queue, &scalars.counters, 0u64, lanes * COUNTERS)?;
            let event = self.enqueue(
                ExecuteKernel::new(&state.kernels.step)
                    .set_arg(&(n as cl_uint))
                    .set_arg(&(lanes.ilog2() as cl_uint))
                    .set_arg(&cl_uint::from(finish))
                    .set_arg(&cl_uint::from(mark))
                    .set_arg(&(d as cl_uchar + 1))
                    .set_arg(&(d as cl_uchar + if finish { 2 } else { 1 }))
                    .set_arg(&p.threshold)
                    .set_arg(&p.decay)
                    .set_arg(&p.max_fan_out)
                    .set_arg(&cl_uint::from(p.cycle_policy == CyclePolicy::Reverberate))
                    .set_arg(&scalars.exhausted)
                    .set_arg(&resident.degree)
                    .set_arg(&resident.tiers)
                    .set_arg(&arrays.next)
                    .set_arg(&arrays.current)
                    .set_arg(&arrays.activation)
                    .set_arg(&arrays.hops)
                    .set_arg(&arrays.fired)
                    .set_arg(&arrays.send)
                    .set_arg(&scalars.counters)
                    .set_arg_local_buffer(COUNTERS * self.local * std::mem::size_of::<cl_ulong>()),
                n * lanes,
            )?;
            read(&state.queue, &scalars.counters, 0, &mut counters[..lanes * COUNTERS])?;
            Ok(event)
        }
    }

    /// Enqueue `kernel` over `items` work-items (rounded up to whole work-groups) and count it.
    ///
    /// # Safety
    /// The kernel's arguments must be valid for that many items.
    unsafe fn enqueue(&self, kernel: &mut ExecuteKernel<'_>, items: usize) -> Result<Event, String> {
        let local = self.local;
        let event = unsafe {
            kernel
                .set_global_work_size(items.max(1).div_ceil(local) * local)
                .set_local_work_size(local)
                .enqueue_nd_range(&self.state.queue)
        }
        .map_err(cl)?;
        if let Some(launches) = self.launches {
            launches.increment();
        }
        Ok(event)
    }
}

/// The device time of a finished command (`None` without profiling information).
fn event_time(event: &Event) -> Option<Duration> {
    let start = event.profiling_command_start().ok()?;
    let end = event.profiling_command_end().ok()?;
    Some(Duration::from_nanos(end.saturating_sub(start)))
}

/// 2³⁰ and 2⁴⁰: the units the kernels count delivered activation and mass in (the CPU's).
const DELIVERED_SCALE: f64 = 1_073_741_824.0;
const MASS_SCALE: f64 = 1_099_511_627_776.0;

/// The kernels write each seed's entries unchecked: every cue's seeds must be in range, strictly
/// ascending (unique) and in (0, 1], as a recall resolves them; the seeds of a launch must fit a u32.
fn check_cues(graph: &Graph, cues: &[DeviceCue<'_>]) -> Result<(), String> {
    let n = graph.node_count() as u64;
    let mut total = 0u64;
    for (i, cue) in cues.iter().enumerate() {
        let mut previous = None;
        for &(v, a) in cue.seeds {
            if u64::from(v) >= n || previous.is_some_and(|p| p >= v) || !(a > 0.0 && a <= 1.0) {
                return Err(format!(
                    "cues[{i}].seeds: ({v}, {a}) is not a resolved seed (ids < {n}, strictly ascending, \
                     activation in (0, 1])"
                ));
            }
            previous = Some(v);
        }
        total += cue.seeds.len() as u64;
    }
    if total > u64::from(u32::MAX) {
        return Err(format!("{total} seeds in one device spread; at most {}", u32::MAX));
    }
    Ok(())
}

/// Waits for everything enqueued on `queue` when dropped while armed.
struct DrainOnDrop<'a> {
    queue: &'a CommandQueue,
    armed: bool,
}

impl Drop for DrainOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.queue.finish();
        }
    }
}

/// The configured threshold, or the default for the device's type (`crate::config`).
fn resolve_min_edges(configured: Option<u64>, gpu: bool) -> u64 {
    configured.unwrap_or(if gpu { crate::config::GPU_OPENCL_MIN_EDGES } else { u64::MAX })
}

fn cl(e: opencl3::error_codes::ClError) -> String {
    format!("OpenCL error {e}")
}

fn cl_code(code: opencl3::types::cl_int) -> String {
    cl(opencl3::error_codes::ClError(code))
}

/// Device bytes of `graph`'s resident copy: reverse CSRs, out-degrees and tiers.
fn graph_bytes(graph: &Graph) -> u64 {
    let n = graph.node_count() as u64;
    let m = graph.edge_count() as u64;
    // Three offset arrays, every edge once as (source, weight), a degree and a tier per node.
    3 * (n + 1) * 4 + m * 8 + n * 5
}

fn create<T>(context: &Context, len: usize, flags: u64) -> Result<Buffer<T>, String> {
    // SAFETY: no host pointer is given.
    unsafe { Buffer::<T>::create(context, flags, len.max(1), std::ptr::null_mut()) }.map_err(cl)
}

fn upload<T>(context: &Context, queue: &CommandQueue, data: &[T], flags: u64) -> Result<Buffer<T>, String> {
    let mut buffer = create(context, data.len(), flags)?;
    if !data.is_empty() {
        // SAFETY: the buffer holds `data.len()` elements; the write blocks.
        unsafe { queue.enqueue_write_buffer(&mut buffer, CL_BLOCKING, 0, data, &[]) }.map_err(cl)?;
    }
    Ok(buffer)
}

fn upload_csr(context: &Context, queue: &CommandQueue, csr: &Csr) -> Result<Option<DeviceCsr>, String> {
    if csr.neighbours.is_empty() {
        return Ok(None);
    }
    Ok(Some(DeviceCsr {
        offsets: upload(context, queue, &csr.offsets, CL_MEM_READ_ONLY)?,
        sources: upload(context, queue, &csr.neighbours, CL_MEM_READ_ONLY)?,
        weights: upload(context, queue, &csr.weights, CL_MEM_READ_ONLY)?,
    }))
}

/// Fill the first `len` elements of `buffer` with `value` (the pattern is copied at once).
///
/// # Safety
/// `buffer` holds at least `len` elements.
unsafe fn fill<T: Copy>(
    queue: &CommandQueue,
    buffer: &Buffer<T>,
    value: T,
    len: usize,
) -> Result<(), String> {
    let size = std::mem::size_of::<T>();
    // The raw call: opencl3's wrapper wants `&mut Buffer`, though the buffer is only a shared handle.
    let event = unsafe {
        opencl3::command_queue::enqueue_fill_buffer(
            queue.get(),
            buffer.get(),
            (&value as *const T).cast(),
            size,
            0,
            len * size,
            0,
            std::ptr::null(),
        )
    }
    .map_err(cl_code)?;
    drop(Event::new(event));
    Ok(())
}

/// Write `data` to the start of `buffer` without blocking.
///
/// # Safety
/// `buffer` holds at least `data.len()` elements, and `data` lives until the queue has run the write.
unsafe fn write<T>(queue: &CommandQueue, buffer: &Buffer<T>, data: &[T]) -> Result<(), String> {
    let event = unsafe {
        opencl3::command_queue::enqueue_write_buffer(
            queue.get(),
            buffer.get(),
            CL_NON_BLOCKING,
            0,
            std::mem::size_of_val(data),
            data.as_ptr().cast(),
            0,
            std::ptr::null(),
        )
    }
    .map_err(cl_code)?;
    drop(Event::new(event));
    Ok(())
}

/// Read `out.len()` elements from `buffer` at `offset` (blocking).
///
/// # Safety
/// `buffer` holds at least `offset + out.len()` elements.
unsafe fn read<T>(
    queue: &CommandQueue,
    buffer: &Buffer<T>,
    offset: usize,
    out: &mut [T],
) -> Result<(), String> {
    unsafe { queue.enqueue_read_buffer(buffer, CL_BLOCKING, offset * std::mem::size_of::<T>(), out, &[]) }
        .map(drop)
        .map_err(cl)
}

thread_local! {
    /// Set by the engine when chaos asks for a GPU failure on this thread's next device recall.
    static FORCE_FAILURE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Make the next device recall on this thread fail (chaos injection); returns the previous setting,
/// for the caller to restore (a thread waiting inside its own spread may run another recall's work).
pub(crate) fn force_failure_on_this_thread(fail: bool) -> bool {
    FORCE_FAILURE.with(|f| f.replace(fail))
}

/// Log each distinct error once (a failing driver would otherwise flood the log).
fn log_once(error: &str) {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(error.to_owned()) {
        tracing::warn!(
            error,
            "OpenCL recall failed; this call and later ones with this error fall back to the CPU"
        );
    }
}

impl DeviceSpread for OpenClBackend {
    fn wants(&self, graph: &Graph) -> bool {
        graph.edge_count() as u64 >= self.min_edges.load(Ordering::Relaxed)
    }

    fn lanes(&self, graph: &Graph) -> usize {
        self.lanes_for(graph)
    }

    fn spread(
        &self,
        graph: &Graph,
        params: &SpreadParams,
        cues: &mut [DeviceCue<'_>],
        hook: &dyn PhaseHook,
    ) -> Result<(), String> {
        self.run(graph, params, cues, hook, true).inspect_err(|e| log_once(e))
    }
}

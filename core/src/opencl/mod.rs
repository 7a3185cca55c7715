//! The OpenCL spreading backend (cargo feature `opencl`): a pull depth's per-tier gathers run as a
//! kernel over a device-resident copy of the reverse CSRs. The OpenCL library is loaded at run time
//! (`opencl3`'s dynamic loading), so one binary runs with or without a driver; platform discovery and
//! the program build happen once per process, at the first engine's creation, never on a recall.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use opencl3::command_queue::CommandQueue;
use opencl3::context::Context;
use opencl3::device::{CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_GPU, Device, get_all_devices};
use opencl3::kernel::{ExecuteKernel, Kernel};
use opencl3::memory::{Buffer, CL_MEM_READ_ONLY, CL_MEM_READ_WRITE};
use opencl3::program::Program;
use opencl3::types::{CL_BLOCKING, CL_NON_BLOCKING, cl_float, cl_uint};

use crate::graph::{Csr, Graph};
use crate::spread::PullAccelerator;
use crate::telemetry::Counter;

const SOURCE: &str = include_str!("gather.cl");
/// Preferred work-group size (smaller when the device's maximum is).
const LOCAL_SIZE: usize = 64;
/// Graphs kept resident per engine: the engine's own and the health probe's, so the probe's
/// periodic spread does not evict (and force a re-upload of) the graph recalls run on.
const RESIDENT_GRAPHS: usize = 2;

/// The device, its context and the built program, shared by every engine of the process.
struct SharedDevice {
    name: String,
    /// A GPU (else a CPU or other device): picks the default `opencl_min_edges`.
    gpu: bool,
    /// Work-group size of every launch: one size, so the driver compiles one variant of the kernel
    /// (PoCL compiles per work-group size at the first launch of each).
    local_size: usize,
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
            let local_size = device.max_work_group_size().unwrap_or(1).clamp(1, LOCAL_SIZE);
            let context =
                Context::from_device(&device).map_err(|e| format!("creating a context on {name}: {e}"))?;
            let program = Program::create_and_build_from_source(&context, SOURCE, "")
                .map_err(|log| format!("building the gather kernel on {name}: {log}"))?;
            Ok(Arc::new(SharedDevice { name, gpu, local_size, context, program }))
        })
        .clone()
}

/// The reverse CSR of one tier on the device.
struct DeviceCsr {
    offsets: Buffer<cl_uint>,
    sources: Buffer<cl_uint>,
    weights: Buffer<cl_float>,
}

/// One engine's queue, kernel and buffers.
struct DeviceState {
    queue: CommandQueue,
    kernel: Kernel,
    /// The graphs whose CSRs are resident, by id, most recently used last.
    graphs: Vec<(u64, [Option<DeviceCsr>; 3])>,
    send: Option<Buffer<cl_float>>,
    next: Option<Buffer<cl_float>>,
    capacity: usize,
}

unsafe impl Send for DeviceState {}

/// An engine's OpenCL backend.
pub struct OpenClBackend {
    shared: Arc<SharedDevice>,
    state: Mutex<DeviceState>,
    /// Use the device for pull depths whose frontier has at least this many out-edges.
    min_edges: AtomicU64,
    launches: Counter,
}

impl std::fmt::Debug for OpenClBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenClBackend").field("device", &self.shared.name).finish_non_exhaustive()
    }
}

impl OpenClBackend {
    /// Discover the device (once per process) and set up this engine's queue and kernel.
    /// `min_edges`: see [`OpenClBackend::set_min_edges`].
    pub fn new(min_edges: Option<u64>, launches: Counter) -> Result<OpenClBackend, String> {
        let shared = shared()?;
        let queue = CommandQueue::create_default_with_properties(&shared.context, 0, 0)
            .map_err(|e| format!("creating a command queue on {}: {e}", shared.name))?;
        let kernel = Kernel::create(&shared.program, "gather")
            .map_err(|e| format!("creating the gather kernel: {e}"))?;
        Ok(OpenClBackend {
            state: Mutex::new(DeviceState {
                queue,
                kernel,
                graphs: Vec::new(),
                send: None,
                next: None,
                capacity: 0,
            }),
            min_edges: AtomicU64::new(resolve_min_edges(min_edges, shared.gpu)),
            shared,
            launches,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.shared.name
    }

    /// Change the frontier size (out-edges) from which pull depths run on the device; `None`: the
    /// measured default for the device's type.
    pub fn set_min_edges(&self, min_edges: Option<u64>) {
        self.min_edges.store(resolve_min_edges(min_edges, self.shared.gpu), Ordering::Relaxed);
    }

    /// The frontier size in force (`u64::MAX`: the device is never used by `auto`).
    pub fn min_edges(&self) -> u64 {
        self.min_edges.load(Ordering::Relaxed)
    }

    /// Whether `auto`/`required` will ever send a depth here (a CPU device never, by default).
    pub fn in_use(&self) -> bool {
        self.min_edges() != u64::MAX
    }

    /// Make `graph` resident and run every tier's gather once over it, so neither the kernel's
    /// compilation (PoCL compiles at the first launch, minus what its cache holds) nor the upload
    /// falls on a recall (docs/spec.md §19). These launches are not counted.
    pub fn warm_up(&self, graph: &Graph) -> Result<(), String> {
        let n = graph.node_count();
        let send = vec![0.0f32; n];
        let mut next = vec![0.0f32; n];
        self.run_depth(graph, [1, 1, 1], &send, &mut next, &mut |_, _| {}, false)
    }

    fn run_depth(
        &self,
        graph: &Graph,
        counts: [u32; 3],
        send: &[f32],
        next: &mut [f32],
        phases: &mut dyn FnMut(crate::graph::Tier, bool),
        count_launches: bool,
    ) -> Result<(), String> {
        if count_launches && FORCE_FAILURE.with(|f| f.replace(false)) {
            return Err("injected GPU failure (chaos)".into());
        }
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = &mut *guard;
        let n = graph.node_count();
        let context = &self.shared.context;
        match state.graphs.iter().position(|(id, _)| *id == graph.id()) {
            Some(i) => {
                let entry = state.graphs.remove(i);
                state.graphs.push(entry);
            }
            None => {
                if state.graphs.len() >= RESIDENT_GRAPHS {
                    state.graphs.remove(0); // free the least recently used copy before uploading
                }
                let csrs = [0, 1, 2].map(|t| upload_csr(context, &state.queue, &graph.reverse[t]));
                let mut resident = [None, None, None];
                for (slot, csr) in resident.iter_mut().zip(csrs) {
                    *slot = csr?;
                }
                state.graphs.push((graph.id(), resident));
            }
        }
        if state.capacity < n || state.send.is_none() {
            state.send = Some(
                unsafe {
                    Buffer::<cl_float>::create(context, CL_MEM_READ_ONLY, n.max(1), std::ptr::null_mut())
                }
                .map_err(cl)?,
            );
            state.next = Some(
                unsafe {
                    Buffer::<cl_float>::create(context, CL_MEM_READ_WRITE, n.max(1), std::ptr::null_mut())
                }
                .map_err(cl)?,
            );
            state.capacity = n;
        }
        let (Some(send_buffer), Some(next_buffer)) = (state.send.as_mut(), state.next.as_mut()) else {
            return Err("device buffers missing".into());
        };
        let queue = &state.queue;
        let kernel = &state.kernel;
        let resident = match state.graphs.last() {
            Some((id, resident)) if *id == graph.id() => resident,
            _ => return Err("graph not resident".into()),
        };
        let local = self.shared.local_size;
        // The upload of `send` below is non-blocking: until the queue has drained, the device may still
        // read it. On success the final blocking read has drained it; on an error or a panic (from
        // the `phases` callback) this guard waits for the device before `send` can be reused.
        let mut drain = DrainOnDrop { queue, armed: true };
        let result = (|| -> Result<(), String> {
            unsafe {
                // The queue is in order: the upload and the fill complete before the first gather, and the
                // final blocking read returns only after all of them (`send` outlives this call).
                queue.enqueue_write_buffer(send_buffer, CL_NON_BLOCKING, 0, &send[..n], &[]).map_err(cl)?;
                // `next` is all zeros at the start of a pull depth on the host; fill rather than copy.
                queue
                    .enqueue_fill_buffer(next_buffer, &[0.0f32], 0, n * std::mem::size_of::<f32>(), &[])
                    .map_err(cl)?;
            }
            for tier in crate::graph::Tier::ALL {
                let t = tier.index();
                if counts[t] == 0 {
                    continue;
                }
                phases(tier, false);
                if let Some(csr) = &resident[t] {
                    let event = unsafe {
                        ExecuteKernel::new(kernel)
                            .set_arg(&csr.offsets)
                            .set_arg(&csr.sources)
                            .set_arg(&csr.weights)
                            .set_arg(&*send_buffer)
                            .set_arg(&*next_buffer)
                            .set_arg(&(n as cl_uint))
                            .set_global_work_size(n.div_ceil(local) * local)
                            .set_local_work_size(local)
                            .enqueue_nd_range(queue)
                    }
                    .map_err(cl)?;
                    event.wait().map_err(cl)?;
                    if count_launches {
                        self.launches.increment();
                    }
                }
                phases(tier, true);
            }
            unsafe { queue.enqueue_read_buffer(next_buffer, CL_BLOCKING, 0, &mut next[..n], &[]) }
                .map_err(cl)?;
            Ok(())
        })();
        drain.armed = result.is_err();
        drop(drain);
        result
    }
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

/// The configured threshold, or the measured one for the device's type (`crate::config`).
fn resolve_min_edges(configured: Option<u64>, gpu: bool) -> u64 {
    configured.unwrap_or(if gpu { crate::config::GPU_OPENCL_MIN_EDGES } else { u64::MAX })
}

fn cl(e: opencl3::error_codes::ClError) -> String {
    format!("OpenCL error {e}")
}

fn upload_csr(context: &Context, queue: &CommandQueue, csr: &Csr) -> Result<Option<DeviceCsr>, String> {
    if csr.neighbours.is_empty() {
        return Ok(None);
    }
    let create_u32 = |data: &[u32]| -> Result<Buffer<cl_uint>, String> {
        let mut buffer =
            unsafe { Buffer::<cl_uint>::create(context, CL_MEM_READ_ONLY, data.len(), std::ptr::null_mut()) }
                .map_err(cl)?;
        unsafe { queue.enqueue_write_buffer(&mut buffer, CL_BLOCKING, 0, data, &[]) }.map_err(cl)?;
        Ok(buffer)
    };
    let mut weights = unsafe {
        Buffer::<cl_float>::create(context, CL_MEM_READ_ONLY, csr.weights.len(), std::ptr::null_mut())
    }
    .map_err(cl)?;
    unsafe { queue.enqueue_write_buffer(&mut weights, CL_BLOCKING, 0, &csr.weights, &[]) }.map_err(cl)?;
    Ok(Some(DeviceCsr { offsets: create_u32(&csr.offsets)?, sources: create_u32(&csr.neighbours)?, weights }))
}

thread_local! {
    /// Set by the engine when chaos asks for a GPU failure on this thread's next device depth.
    static FORCE_FAILURE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Make the next device depth on this thread fail (chaos injection); returns the previous setting,
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
            "OpenCL depth failed; this call and later ones with this error fall back to the CPU"
        );
    }
}

impl PullAccelerator for OpenClBackend {
    fn wants(&self, _graph: &Graph, work: u64) -> bool {
        work >= self.min_edges.load(Ordering::Relaxed)
    }

    fn pull_depth(
        &self,
        graph: &Graph,
        counts: [u32; 3],
        send: &[f32],
        next: &mut [f32],
        phases: &mut dyn FnMut(crate::graph::Tier, bool),
    ) -> Result<(), String> {
        self.run_depth(graph, counts, send, next, phases, true).inspect_err(|e| {
            // `next` was all zeros when the depth began; leave it so for the CPU to redo the depth.
            next.fill(0.0);
            log_once(e);
        })
    }
}

//! Once warm, a recall allocates nothing (docs/spec.md §4): counted by a global allocator on this thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use axonal_core::{Cue, Engine, EngineConfig, Graph, Recall};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn warm_recall_allocates_nothing() {
    let src: Vec<u32> = (0..5).collect();
    let dst: Vec<u32> = (0..5).map(|i| (i + 1) % 5).collect();
    let graph = std::sync::Arc::new(Graph::from_edges(5, &src, &dst, &[1.0; 5]).unwrap());
    for threads in [1, 2] {
        let engine =
            Engine::new(std::sync::Arc::clone(&graph), EngineConfig { threads, ..EngineConfig::default() })
                .unwrap();
        let cue = Cue::nodes([0]);
        let mut out = Recall::default();
        engine.recall_into(&cue, &mut out).unwrap();
        let count = allocations_during(|| {
            for _ in 0..1000 {
                engine.recall_into(&cue, &mut out).unwrap();
            }
        });
        assert_eq!(count, 0, "threads {threads}: {count} allocations in 1000 warm recalls");
        assert_eq!(out.results.len(), 4);
    }
}

#[test]
fn spreading_probe_run_allocates_nothing() {
    use axonal_core::HealthProbe;
    let graph = Graph::from_edges(2, &[0], &[1], &[1.0]).unwrap();
    let engine = Engine::new(graph, EngineConfig::default()).unwrap();
    let probe = engine.spreading_probe();
    assert_eq!(probe.check().status, axonal_core::HealthStatus::Healthy);
    let count = allocations_during(|| {
        for _ in 0..1000 {
            assert_eq!(probe.check().status, axonal_core::HealthStatus::Healthy);
        }
    });
    assert_eq!(count, 0, "{count} allocations in 1000 probe runs");
}

//! The OpenCL backend (PoCL in CI) runs whole recalls on the device and agrees with the CPU within
//! 1e-5 relative: the worked examples and random graphs, both cycle policies, single recalls and
//! batches of lanes; tier timeouts judged per depth; a forced device failure falls back to the CPU
//! with the same result and the counters say so.
#![cfg(feature = "opencl")]
#![allow(clippy::type_complexity)] // test tables

use std::sync::OnceLock;

use axonal_core::ToJson;
use axonal_core::opencl::OpenClBackend;
use axonal_core::telemetry::Counter;
use axonal_core::{
    Activation, Backend, ChaosConfig, Cue, CyclePolicy, DeviceCue, DeviceSpread, Engine, EngineConfig,
    Execution, Graph, GraphBuilder, SpreadParams, SpreadStats, Tier, spread_standalone, spread_standalone_on,
};
use proptest::prelude::*;
use serde_json::json;

fn backend() -> &'static OpenClBackend {
    static BACKEND: OnceLock<OpenClBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        OpenClBackend::new(Some(0), Counter::detached()).expect("an OpenCL device (PoCL in CI)")
    })
}

fn close(a: &[Activation], b: &[Activation]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} vs {} results", a.len(), b.len()));
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by_key(|x| x.node);
    b.sort_by_key(|x| x.node);
    for (x, y) in a.iter().zip(&b) {
        let tolerance = 1e-7 + 1e-5 * x.activation.abs().max(y.activation.abs());
        if x.node != y.node || x.hops != y.hops || (x.activation - y.activation).abs() > tolerance {
            return Err(format!("{x:?} vs {y:?}"));
        }
    }
    Ok(())
}

fn params(depth: u32, decay: f32, policy: CyclePolicy) -> SpreadParams {
    SpreadParams {
        max_depth: depth,
        decay,
        threshold: 0.01,
        max_fan_out: 0,
        cycle_policy: policy,
        batch_size: 64,
        tier_timeouts: [None; 3],
        execution: Execution::default(),
    }
}

#[test]
fn worked_examples_on_the_device() {
    let cases: [(u32, &[(u32, u32, f32)], u32, f32, CyclePolicy); 4] = [
        (
            5,
            &[(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0), (3, 4, 1.0), (4, 0, 1.0)],
            3,
            0.8,
            CyclePolicy::FireOnce,
        ),
        (4, &[(0, 1, 0.5), (0, 2, 0.5), (1, 3, 1.0), (2, 3, 1.0)], 2, 0.8, CyclePolicy::FireOnce),
        (2, &[(0, 1, 1.0), (1, 0, 1.0)], 4, 0.5, CyclePolicy::FireOnce),
        (2, &[(0, 1, 1.0), (1, 0, 1.0)], 4, 0.5, CyclePolicy::Reverberate),
    ];
    for (n, edges, depth, decay, policy) in cases {
        let src: Vec<u32> = edges.iter().map(|e| e.0).collect();
        let dst: Vec<u32> = edges.iter().map(|e| e.1).collect();
        let w: Vec<f32> = edges.iter().map(|e| e.2).collect();
        let graph = Graph::from_edges(n, &src, &dst, &w).unwrap();
        let p = params(depth, decay, policy);
        let (cpu, _) = spread_standalone(&graph, &p, &[(0, 1.0)], None, None).unwrap();
        let (gpu, stats) =
            spread_standalone_on(&graph, &p, &[(0, 1.0)], None, None, Some(backend())).unwrap();
        close(&cpu, &gpu).unwrap();
        assert_eq!(stats.backend, Backend::OpenCl);
        assert!(stats.device_depths >= 1);
    }
}

fn case() -> impl Strategy<Value = (u32, Vec<(u32, u32, f32)>, Vec<Tier>, Vec<(u32, f32)>, u32, CyclePolicy)>
{
    (2u32..60).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec((0..n, 0..n, (1u32..=1000).prop_map(|x| x as f32 / 1000.0)), 1..300),
            prop::collection::vec(
                prop_oneof![Just(Tier::Hot), Just(Tier::Warm), Just(Tier::Cold)],
                n as usize,
            ),
            prop::collection::vec((0..n, (1u32..=100).prop_map(|x| x as f32 / 100.0)), 1..4),
            1u32..=6,
            prop_oneof![Just(CyclePolicy::FireOnce), Just(CyclePolicy::Reverberate)],
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(80))]

    #[test]
    fn device_equals_cpu_on_random_graphs((n, edges, tiers, seeds, depth, policy) in case()) {
        let mut builder = GraphBuilder::new(n);
        for &(s, d, w) in &edges {
            builder.add_edge(s, d, w).unwrap();
        }
        for (v, &tier) in tiers.iter().enumerate() {
            builder.set_tier(v as u32, tier).unwrap();
        }
        let graph = builder.build().unwrap();
        let p = params(depth, 0.8, policy);
        let (cpu, cpu_stats) = spread_standalone(&graph, &p, &seeds, None, None).unwrap();
        let (gpu, gpu_stats) = spread_standalone_on(&graph, &p, &seeds, None, None, Some(backend())).unwrap();
        prop_assert!(close(&cpu, &gpu).is_ok(), "{:?}", close(&cpu, &gpu));
        prop_assert!(same_stats(&cpu_stats, &gpu_stats).is_ok(), "{:?}", same_stats(&cpu_stats, &gpu_stats));
        prop_assert_eq!(gpu_stats.backend, Backend::OpenCl);
    }

    #[test]
    fn a_batch_of_lanes_equals_each_cue_on_the_cpu(
        (n, edges, tiers, _, depth, policy) in case(),
        cues in prop::collection::vec(
            (prop::collection::vec((0u32..1000, (1u32..=100).prop_map(|x| x as f32 / 100.0)), 1..5), 1usize..40),
            1..45,
        ),
    ) {
        let graph = build(n, &edges, &tiers);
        let p = params(depth, 0.8, policy);
        // Seeds as a recall resolves them: in range, unique, sorted by id.
        let seeds: Vec<Vec<(u32, f32)>> = cues
            .iter()
            .map(|(s, _)| {
                let mut merged = Vec::new();
                let s: Vec<(u32, f32)> = s.iter().map(|&(v, a)| (v % n, a)).collect();
                axonal_core::spread::normalise_seeds(graph.view(), &s, &mut merged).unwrap();
                merged
            })
            .collect();
        let mut results: Vec<Vec<Activation>> = vec![Vec::new(); cues.len()];
        let mut batch: Vec<DeviceCue<'_>> = seeds
            .iter()
            .zip(&cues)
            .zip(&mut results)
            .map(|((s, (_, k)), r)| DeviceCue { seeds: s, k: *k, results: r, stats: SpreadStats::default() })
            .collect();
        backend().spread(&graph, &p, &mut batch, &axonal_core::spread::NoHook).unwrap();
        let stats: Vec<SpreadStats> = batch.iter().map(|c| c.stats).collect();
        drop(batch);
        for (i, ((s, (_, k)), got)) in seeds.iter().zip(&cues).zip(&results).enumerate() {
            let (mut cpu, cpu_stats) = spread_standalone(&graph, &p, s, None, None).unwrap();
            cpu.truncate(*k);
            prop_assert!(close(&cpu, got).is_ok(), "cue {}: {:?}", i, close(&cpu, got));
            prop_assert!(same_stats(&cpu_stats, &stats[i]).is_ok(), "cue {}: {:?}", i, same_stats(&cpu_stats, &stats[i]));
        }
    }
}

fn build(n: u32, edges: &[(u32, u32, f32)], tiers: &[Tier]) -> Graph {
    let mut builder = GraphBuilder::new(n);
    for &(s, d, w) in edges {
        builder.add_edge(s, d, w).unwrap();
    }
    for (v, &tier) in tiers.iter().enumerate() {
        builder.set_tier(v as u32, tier).unwrap();
    }
    builder.build().unwrap()
}

/// The device's stats against the CPU's: the same depths, frontiers and edges; the same mass and
/// delivered activation within the tolerance.
fn same_stats(cpu: &SpreadStats, device: &SpreadStats) -> Result<(), String> {
    let near = |a: f64, b: f64| (a - b).abs() <= 1e-7 + 1e-5 * a.abs().max(b.abs());
    if cpu.depth_reached != device.depth_reached
        || cpu.nodes_fired != device.nodes_fired
        || cpu.edges_traversed != device.edges_traversed
        || !near(cpu.mass, device.mass)
        || !near(cpu.delivered, device.delivered)
        || cpu.delivered_any != device.delivered_any
        || cpu.tier_had_work != device.tier_had_work
    {
        return Err(format!("{cpu:?}\nvs\n{device:?}"));
    }
    Ok(())
}

#[test]
fn a_tier_timeout_is_judged_after_each_depth_on_the_device() {
    // Every node hot, a hot timeout no depth can meet: the seeds fire at depth 1, the hot tier is
    // then exhausted, so depth 2's frontier (marked before the times were known) is marked again
    // without it and the call stops, truncated — as on the CPU.
    let graph = Graph::from_edges(4, &[0, 1, 2], &[1, 2, 3], &[1.0; 3]).unwrap();
    let mut p = params(3, 0.8, CyclePolicy::FireOnce);
    p.tier_timeouts = [Some(std::time::Duration::from_nanos(1)), None, None];
    let (results, stats) =
        spread_standalone_on(&graph, &p, &[(0, 1.0)], None, None, Some(backend())).unwrap();
    let (cpu, cpu_stats) = spread_standalone(&graph, &p, &[(0, 1.0)], None, None).unwrap();
    assert_eq!(stats.backend, Backend::OpenCl);
    assert!(stats.truncated && stats.tier_timed_out[0], "{stats:?}");
    assert_eq!(stats.depth_reached, 1, "{stats:?}");
    assert_eq!(results.iter().map(|a| a.node).collect::<Vec<_>>(), [0, 1]);
    close(&cpu, &results).unwrap();
    assert_eq!(cpu_stats.depth_reached, 1);
    // Without the timeout every depth runs.
    p.tier_timeouts = [None; 3];
    let (results, stats) =
        spread_standalone_on(&graph, &p, &[(0, 1.0)], None, None, Some(backend())).unwrap();
    assert!(!stats.truncated);
    assert_eq!((stats.depth_reached, results.len()), (3, 4));
}

#[test]
fn a_tier_that_runs_out_stops_only_its_own_nodes_single_and_batched() {
    // 0 (hot) → 1 (hot) → 2 (warm) and 0 → 3 (warm) → 4 (warm), fire once. The hot tier runs out at
    // depth 1, whose finish has already marked depth 2's frontier {1, 3}: marked again without hot
    // nodes it is {3}, so 4 is reached and 2 is not — as on the CPU.
    let mut builder = GraphBuilder::new(5);
    builder.add_edges(&[0, 1, 0, 3], &[1, 2, 3, 4], &[1.0; 4]).unwrap();
    for v in [2, 3, 4] {
        builder.set_tier(v, Tier::Warm).unwrap();
    }
    let graph = builder.build().unwrap();
    let mut p = params(3, 0.8, CyclePolicy::FireOnce);
    p.tier_timeouts = [Some(std::time::Duration::from_nanos(1)), None, None];
    let (cpu, cpu_stats) = spread_standalone(&graph, &p, &[(0, 1.0)], None, None).unwrap();
    let mut reached: Vec<u32> = cpu.iter().map(|a| a.node).collect();
    reached.sort_unstable();
    assert_eq!(reached, [0, 1, 3, 4], "the CPU reference");
    let (single, stats) = spread_standalone_on(&graph, &p, &[(0, 1.0)], None, None, Some(backend())).unwrap();
    close(&cpu, &single).unwrap();
    assert!(stats.truncated && stats.tier_timed_out[0]);
    assert_eq!(stats.depth_reached, cpu_stats.depth_reached);
    // Batched: the lane seeded at 3 never touches the hot tier and must not be cut by the others'.
    let seeds: [&[(u32, f32)]; 3] = [&[(0, 1.0)], &[(3, 1.0)], &[(0, 1.0)]];
    let mut results: Vec<Vec<Activation>> = vec![Vec::new(); 3];
    let mut batch: Vec<DeviceCue<'_>> = seeds
        .iter()
        .zip(&mut results)
        .map(|(s, r)| DeviceCue { seeds: s, k: 10, results: r, stats: SpreadStats::default() })
        .collect();
    backend().spread(&graph, &p, &mut batch, &axonal_core::spread::NoHook).unwrap();
    let truncated: Vec<bool> = batch.iter().map(|c| c.stats.truncated).collect();
    drop(batch);
    for (s, got) in seeds.iter().zip(&results) {
        let (expected, _) = spread_standalone(&graph, &p, s, None, None).unwrap();
        close(&expected, got).unwrap();
    }
    assert_eq!(truncated, [true, false, true]);
}

#[test]
fn seeds_a_recall_would_not_resolve_are_refused_before_anything_runs() {
    let graph = Graph::from_edges(3, &[0, 1], &[1, 2], &[1.0, 1.0]).unwrap();
    let p = params(2, 0.8, CyclePolicy::FireOnce);
    let bad: [&[(u32, f32)]; 5] =
        [&[(3, 1.0)], &[(1, 1.0), (0, 1.0)], &[(1, 1.0), (1, 0.5)], &[(0, 0.0)], &[(0, f32::NAN)]];
    for seeds in bad {
        let mut results = Vec::new();
        let mut cue = [DeviceCue { seeds, k: 3, results: &mut results, stats: SpreadStats::default() }];
        let err = backend().spread(&graph, &p, &mut cue, &axonal_core::spread::NoHook).unwrap_err();
        assert!(err.contains("cues[0].seeds"), "{err}");
    }
}

fn engine(mode: &str) -> Engine {
    let graph = axonal_core::generate::barabasi_albert(300, 3, 0.9, 1).build().unwrap();
    let config = EngineConfig::default()
        .patched(&json!({"opencl": mode, "spreading": {"tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0},
                          "latency_budget_ms": 60000}}))
        .unwrap();
    Engine::new(graph, config).unwrap()
}

#[test]
fn always_mode_runs_every_depth_on_the_device_and_counts_launches() {
    let device = engine("always");
    let cpu = engine("off");
    let cue = Cue::nodes([0, 7]).with_k(300);
    let on_device = device.recall(&cue).unwrap();
    let on_cpu = cpu.recall(&cue).unwrap();
    close(&on_cpu.results, &on_device.results).unwrap();
    assert_eq!(on_device.stats.backend, Backend::OpenCl);
    let section = device.spreading_section().to_json();
    assert!(section["gpu"]["device"].is_string(), "{section}");
    assert!(section["gpu"]["launches"].as_u64().unwrap() >= on_device.stats.depth_reached as u64);
    assert_eq!(section["gpu"]["fallbacks"], 0);
    assert!(cpu.spreading_section().to_json()["gpu"]["device"].is_null(), "off: no device");
}

#[test]
fn a_forced_device_failure_falls_back_to_the_cpu_with_the_same_result() {
    let device = engine("always");
    // The spreading probe's first check (due at creation, on its own thread) launches too: let it
    // finish so that every launch counted below is a recall's. The next is 10 s away.
    let probed =
        || device.health_report().to_json()["probes"]["spreading"]["checks_total"].as_u64().unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while probed() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(probed(), 1);
    let cue = Cue::nodes([3]).with_k(300);
    let reference = device.recall(&cue).unwrap();
    let launches = device.spreading_section().to_json()["gpu"]["launches"].as_u64().unwrap();
    device.set_chaos(ChaosConfig { gpu_failure_rate: 1.0, seed: Some(1), ..Default::default() }).unwrap();
    for _ in 0..3 {
        let recall = device.recall(&cue).unwrap();
        assert_eq!(recall.source, axonal_core::Source::Spreading, "a device failure is not a recall failure");
        assert_eq!(recall.stats.backend, Backend::Cpu);
        assert!(recall.stats.device_failed);
        close(&reference.results, &recall.results).unwrap();
    }
    let section = device.spreading_section().to_json();
    assert_eq!(section["gpu"]["fallbacks"], 3);
    assert_eq!(section["gpu"]["launches"], launches, "no launch after the injected failures");
    device.clear_chaos();
    assert_eq!(device.recall(&cue).unwrap().stats.backend, Backend::OpenCl);
    // Device use, the fallbacks' denominator: the probe's spread, the reference, 3 failed, this one.
    let text = device.prometheus_text();
    assert!(text.contains("\naxonal_spreading_gpu_spreads_total 6\n"), "{text}");
    assert!(text.contains("\naxonal_spreading_gpu_fallback_total 3\n"));
}

#[test]
fn required_mode_creates_an_engine_when_a_device_exists() {
    let e = engine("required");
    assert!(e.spreading_section().to_json()["gpu"]["device"].is_string());
}

#[test]
fn auto_uses_the_device_only_from_the_threshold_in_force() {
    // A graph below the GPU default (`GPU_OPENCL_MIN_EDGES` edges).
    let edges = axonal_core::generate::barabasi_albert(8_000, 4, 0.9, 1);
    let hub = edges.hub();
    let config = EngineConfig::default()
        .patched(&json!({"opencl": "required", "spreading": {"max_depth": 4, "threshold": 0.0,
                          "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}, "latency_budget_ms": 60000}}))
        .unwrap();
    let e = Engine::new(edges.build().unwrap(), config).unwrap();
    let cue = Cue::nodes([hub]);
    assert!(e.spreading_section().to_json()["gpu"]["device"].is_string());
    // Default threshold: never on a CPU device (PoCL), 100 000 edges on a GPU.
    assert_eq!(e.recall(&cue).unwrap().stats.backend, Backend::Cpu);
    assert_eq!(e.spreading_section().to_json()["gpu"]["launches"], 0);
    e.update_config(&json!({"opencl_min_edges": 0})).unwrap();
    assert_eq!(e.recall(&cue).unwrap().stats.backend, Backend::OpenCl, "threshold lowered at run time");
    e.update_config(&json!({"opencl_min_edges": null})).unwrap();
    assert_eq!(e.recall(&cue).unwrap().stats.backend, Backend::Cpu, "back to the measured default");
}

#[test]
fn a_batch_on_the_device_agrees_with_the_cpu_and_a_device_failure_mid_batch_answers_every_cue() {
    let device = engine("always");
    let cpu = engine("off");
    // Enough cues that the batch runs in parallel on the pool.
    let cues: Vec<Cue> =
        (0..200u32).map(|i| Cue::nodes([i * 11 % 300, (i * 37 + 5) % 300]).with_k(300)).collect();
    let expected = cpu.recall_batch(&cues).unwrap();
    let on_device = device.recall_batch(&cues).unwrap();
    for (i, (e, d)) in expected.iter().zip(&on_device).enumerate() {
        close(&e.results, &d.results).map_err(|m| format!("cue {i}: {m}")).unwrap();
        assert_eq!(d.stats.backend, Backend::OpenCl, "cue {i} ran on the device");
    }
    // Half the device depths fail by injection: every cue is still answered by spreading, on the CPU
    // where its device failed, with the same results.
    device.set_chaos(ChaosConfig { gpu_failure_rate: 0.5, seed: Some(3), ..Default::default() }).unwrap();
    let mixed = device.recall_batch(&cues).unwrap();
    let failed = mixed.iter().filter(|r| r.stats.device_failed).count();
    assert!(failed > 0 && failed < cues.len(), "{failed} of {} device failures at rate 0.5", cues.len());
    for (i, (e, m)) in expected.iter().zip(&mixed).enumerate() {
        assert_eq!(m.source, axonal_core::Source::Spreading, "cue {i}");
        close(&e.results, &m.results).map_err(|msg| format!("cue {i}: {msg}")).unwrap();
    }
}

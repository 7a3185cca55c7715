//! Per-tier timeouts: a tier that exceeds its budget stops firing for the rest of the call, and the
//! result says `truncated`.

use std::time::Duration;

use axonal_core::{Execution, GraphBuilder, PhaseHook, SpreadParams, Tier, spread_standalone};

/// Makes every cold-tier phase take at least 2 ms, as a slow cold store would.
struct SlowCold;

impl PhaseHook for SlowCold {
    fn before_tier(&self, tier: Tier) {
        if tier == Tier::Cold {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn params(cold_timeout: Option<Duration>) -> SpreadParams {
    SpreadParams {
        max_depth: 5,
        decay: 1.0,
        threshold: 0.01,
        max_fan_out: 0,
        cycle_policy: Default::default(),
        batch_size: 64,
        tier_timeouts: [None, None, cold_timeout],
        execution: Execution::default(),
    }
}

#[test]
fn exhausted_tier_stops_firing_and_truncates() {
    // 0 (hot) → 1 (cold) → 2 (cold) → 3 (hot)
    let mut b = GraphBuilder::new(4);
    b.add_edges(&[0, 1, 2], &[1, 2, 3], &[1.0, 1.0, 1.0]).unwrap();
    b.set_tier(1, Tier::Cold).unwrap();
    b.set_tier(2, Tier::Cold).unwrap();
    let graph = b.build().unwrap();

    let (full, stats) = spread_standalone(&graph, &params(None), &[(0, 1.0)], None, Some(&SlowCold)).unwrap();
    assert_eq!(full.len(), 4);
    assert!(!stats.truncated);
    assert!(stats.tier_time[2] >= Duration::from_millis(4), "two cold phases timed: {:?}", stats.tier_time);

    let timeout = Some(Duration::from_millis(1));
    let (cut, stats) =
        spread_standalone(&graph, &params(timeout), &[(0, 1.0)], None, Some(&SlowCold)).unwrap();
    let nodes: Vec<u32> = cut.iter().map(|a| a.node).collect();
    assert_eq!(nodes, vec![0, 1, 2], "node 2 (cold) cannot fire after the cold tier timed out");
    assert!(stats.truncated);
    assert_eq!(stats.tier_timed_out, [false, false, true]);
    assert_eq!(stats.tier_had_work, [true, false, true]);
    assert_eq!(stats.depth_reached, 2);
}

//! Streaming telemetry (SPEC §5): a metrics registry with pre-registered engine handles, rolling
//! windows of 1 s / 10 s / 60 s / 300 s plus totals, the snapshot JSON and the Prometheus text.
//!
//! Recording never blocks and never allocates: counters and histograms are sharded cumulative atomics.
//! A fold once per second (the engine's `axonal-telemetry` thread, or any snapshot) turns them into
//! per-second differences and rolling-window sums. Nothing is queued, so nothing is ever sampled or
//! dropped; see docs/telemetry.md.

mod catalogue;
mod metric;
mod prometheus;
mod registry;
mod window;

pub use catalogue::SpreadingMetrics;
pub(crate) use metric::HistogramTotals;
pub use metric::{Counter, Gauge, Histogram};
pub use registry::{LATENCY_BOUNDS, MetricKind, MetricsRegistry};
pub use window::{Summary, WINDOWS};

use std::sync::Mutex;

use serde_json::{Map, Value, json};

use crate::clock::SharedClock;
use registry::CellRef;
use window::{WindowValue, Windows};

/// Version tag of the snapshot JSON.
pub const SNAPSHOT_SCHEMA: &str = "axonal.snapshot.v1";

/// The registry, the engine's handles and the rolling windows.
#[derive(Debug)]
pub struct Telemetry {
    registry: MetricsRegistry,
    spreading: SpreadingMetrics,
    windows: Mutex<Windows>,
    clock: SharedClock,
    started_unix_ms: u64,
}

impl Telemetry {
    /// Telemetry with every engine metric registered, windows starting now on `clock`.
    pub fn new(clock: SharedClock) -> Telemetry {
        let registry = MetricsRegistry::new();
        let spreading = SpreadingMetrics::register(&registry);
        let windows = Mutex::new(Windows::new(clock.now()));
        let started_unix_ms = clock.unix_ms();
        Telemetry { registry, spreading, windows, clock, started_unix_ms }
    }

    /// The registry (host metrics are registered here by name).
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// The engine's pre-registered handles.
    pub fn spreading(&self) -> &SpreadingMetrics {
        &self.spreading
    }

    /// The clock windows are measured on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Fold every second that has ended into the windows.
    pub fn tick(&self) {
        let entries = self.registry.entries();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.fold(self.clock.now(), &entries);
    }

    /// `windows`, `totals` and `export` of the snapshot (the engine adds `spreading` and `health`).
    pub fn snapshot_parts(&self) -> (Value, Value, Value) {
        self.tick();
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_window = Map::new();
        for (w, seconds) in WINDOWS.iter().enumerate() {
            let (mut counters, mut gauges, mut histograms) = (Map::new(), Map::new(), Map::new());
            for (entry, value) in windows.window(w) {
                match value {
                    WindowValue::Counter(v) => counters.insert(entry.name.clone(), json!(v)),
                    WindowValue::Gauge(v) => gauges.insert(entry.name.clone(), finite(v)),
                    WindowValue::Histogram(s) => histograms.insert(entry.name.clone(), summary_json(&s)),
                };
            }
            by_window.insert(
                format!("{seconds}s"),
                json!({"seconds": seconds, "counters": counters, "gauges": gauges, "histograms": histograms}),
            );
        }
        let export = json!({"sampled": 0, "dropped": 0, "skipped_seconds": windows.skipped_seconds});
        drop(windows);
        (Value::Object(by_window), self.totals_json(), export)
    }

    /// Every metric since start.
    pub fn totals_json(&self) -> Value {
        let (mut counters, mut gauges, mut histograms) = (Map::new(), Map::new(), Map::new());
        for entry in self.registry.entries() {
            match &entry.cell {
                CellRef::Counter(c) => counters.insert(entry.name.clone(), json!(c.total())),
                CellRef::Gauge(g) => gauges.insert(entry.name.clone(), finite(g.value())),
                CellRef::Histogram(h) => {
                    histograms.insert(entry.name.clone(), summary_json(&total_summary(h)))
                }
            };
        }
        json!({
            "since_unix_ms": self.started_unix_ms,
            "uptime_s": self.clock.now().as_secs_f64(),
            "counters": counters,
            "gauges": gauges,
            "histograms": histograms,
        })
    }

    /// A histogram's summary over window `w` (index into [`WINDOWS`]), by metric name.
    pub fn window_summary(&self, w: usize, name: &str) -> Option<Summary> {
        self.tick();
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.window(w).find(|(e, _)| e.name == name).and_then(|(_, v)| match v {
            WindowValue::Histogram(s) => Some(s),
            _ => None,
        })
    }

    /// The Prometheus text exposition of every metric since start.
    pub fn prometheus_text(&self) -> String {
        prometheus::render(&self.registry.entries())
    }
}

fn total_summary(cell: &metric::HistogramCell) -> Summary {
    let t = cell.totals();
    Summary::from_buckets(&t.fine, t.count, t.sum, (t.count > 0).then_some((t.min, t.max)))
}

/// JSON of a histogram summary.
pub fn summary_json(s: &Summary) -> Value {
    json!({
        "count": s.count, "sum": s.sum, "min": s.min, "max": s.max, "mean": s.mean,
        "p50": s.p50, "p90": s.p90, "p95": s.p95, "p99": s.p99,
    })
}

fn finite(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Time until just after the next whole second of `clock` — the seconds the windows fold on.
fn until_next_second(clock: &SharedClock) -> std::time::Duration {
    let into_second = u64::from(clock.now().subsec_nanos());
    std::time::Duration::from_nanos(1_000_000_000 - into_second + 2_000_000)
}

/// The engine's `axonal-telemetry` thread: once a second, `tick` samples gauges and folds the second
/// that just ended.
pub(crate) fn start_ticker(
    clock: SharedClock,
    tick: impl Fn() + Send + 'static,
) -> std::io::Result<crate::worker::Worker> {
    crate::worker::Worker::spawn("axonal-telemetry", move || {
        tick();
        until_next_second(&clock)
    })
}

/// The value a fine histogram bucket stands for (the tuner reads interval histograms bucket by bucket).
pub(crate) fn bucket_midpoint(index: usize) -> f64 {
    metric::bucket_value(index)
}

//! Streaming telemetry (docs/spec.md §5): a metrics registry whose owners hold pre-registered
//! handles, rolling windows of 1 s / 10 s / 60 s / 300 s plus totals, typed snapshots and the
//! Prometheus text. It knows the metrics only by name and kind: their meaning belongs to whoever
//! registered them (an owner keeps its own catalogue).
//!
//! Recording never blocks and never allocates: counters and histograms are sharded cumulative atomics.
//! A fold once per second (the owner's `axonal-telemetry` thread, or any snapshot) turns them into
//! per-second differences and rolling-window sums. Nothing is queued, so nothing is ever sampled or
//! dropped; see docs/telemetry.md.

mod metric;
mod prometheus;
mod registry;
mod window;

pub(crate) use metric::HistogramTotals;
pub use metric::{Counter, Gauge, Histogram};
pub use registry::{Exposition, LATENCY_BOUNDS, MetricKind, MetricsRegistry};
pub use window::{Summary, WINDOWS};

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::SharedClock;
use registry::CellRef;
use window::{WindowValue, Windows};

/// The registry and its rolling windows.
#[derive(Debug)]
pub struct Telemetry {
    registry: MetricsRegistry,
    windows: Mutex<Windows>,
    clock: SharedClock,
    started_unix_ms: u64,
}

/// Every metric over one rolling window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowSnapshot {
    /// The window's length.
    pub seconds: u64,
    /// Counter increments within the window.
    pub counters: BTreeMap<String, u64>,
    /// Last values (`None`: not a finite number).
    pub gauges: BTreeMap<String, Option<f64>>,
    /// Histogram summaries of the window's observations.
    pub histograms: BTreeMap<String, Summary>,
}

/// Every metric since start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// When the telemetry started, Unix milliseconds.
    pub since_unix_ms: u64,
    /// Seconds since start on the telemetry's clock.
    pub uptime_s: f64,
    /// Counter totals.
    pub counters: BTreeMap<String, u64>,
    /// Last values (`None`: not a finite number).
    pub gauges: BTreeMap<String, Option<f64>>,
    /// Histogram summaries since start.
    pub histograms: BTreeMap<String, Summary>,
}

/// What the aggregation sampled, dropped or skipped (it samples and drops nothing; a second no fold
/// saw is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExportStats {
    /// Observations sampled rather than recorded.
    pub sampled: u64,
    /// Observations dropped.
    pub dropped: u64,
    /// Seconds that passed without a fold.
    pub skipped_seconds: u64,
}

/// The windows, totals and export statistics at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TelemetrySnapshot {
    /// By window name (`1s`, `10s`, `60s`, `300s`).
    pub windows: BTreeMap<String, WindowSnapshot>,
    /// Since start.
    pub totals: Totals,
    /// Sampling and dropping.
    pub export: ExportStats,
}

impl Telemetry {
    /// An empty registry with windows starting now on `clock`.
    pub fn new(clock: SharedClock) -> Telemetry {
        let windows = Mutex::new(Windows::new(clock.now()));
        let started_unix_ms = clock.unix_ms();
        Telemetry { registry: MetricsRegistry::new(), windows, clock, started_unix_ms }
    }

    /// The registry (owners register their metrics here and keep the handles).
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
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

    /// Windows, totals and export statistics, folded up to now.
    pub fn snapshot(&self) -> TelemetrySnapshot {
        self.tick();
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_window = BTreeMap::new();
        for (w, &seconds) in WINDOWS.iter().enumerate() {
            let mut window = WindowSnapshot {
                seconds,
                counters: BTreeMap::new(),
                gauges: BTreeMap::new(),
                histograms: BTreeMap::new(),
            };
            for (entry, value) in windows.window(w) {
                let name = entry.name.clone();
                match value {
                    WindowValue::Counter(v) => {
                        window.counters.insert(name, v);
                    }
                    WindowValue::Gauge(v) => {
                        window.gauges.insert(name, v.is_finite().then_some(v));
                    }
                    WindowValue::Histogram(summary) => {
                        window.histograms.insert(name, summary);
                    }
                }
            }
            by_window.insert(format!("{seconds}s"), window);
        }
        let export = ExportStats { sampled: 0, dropped: 0, skipped_seconds: windows.skipped_seconds };
        drop(windows);
        TelemetrySnapshot { windows: by_window, totals: self.totals(), export }
    }

    /// Every metric since start.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            since_unix_ms: self.started_unix_ms,
            uptime_s: self.clock.now().as_secs_f64(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            histograms: BTreeMap::new(),
        };
        for entry in self.registry.entries() {
            let name = entry.name.clone();
            match &entry.cell {
                CellRef::Counter(c) => {
                    totals.counters.insert(name, c.total());
                }
                CellRef::Gauge(g) => {
                    let v = g.value();
                    totals.gauges.insert(name, v.is_finite().then_some(v));
                }
                CellRef::Histogram(h) => {
                    totals.histograms.insert(name, total_summary(h));
                }
            }
        }
        totals
    }

    /// [`Telemetry::totals`] as a JSON value.
    pub fn totals_json(&self) -> serde_json::Value {
        serde_json::to_value(self.totals()).unwrap_or(serde_json::Value::Null)
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

/// Time until just after the next whole second of `clock` — the seconds the windows fold on.
fn until_next_second(clock: &SharedClock) -> std::time::Duration {
    let into_second = u64::from(clock.now().subsec_nanos());
    std::time::Duration::from_nanos(1_000_000_000 - into_second + 2_000_000)
}

/// A `axonal-telemetry` thread: once a second, `tick` (sample gauges, fold the second that just
/// ended).
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

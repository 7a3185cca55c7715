//! Rolling windows (1 s, 10 s, 60 s, 300 s) over cumulative metrics.
//!
//! Recorders only ever add to cumulative cells. Once per second a fold takes the difference from the
//! previous fold — exact for counters, per bucket for histograms — pushes it into a ring of the last
//! 300 seconds, and updates one running accumulator per window (add the new second, subtract the one
//! that fell out). Reading a window is then a read of its accumulator. Memory is bounded by the ring.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::metric::{BUCKETS, HistogramTotals, bucket_value};
use super::registry::{CellRef, Entry};

/// Window lengths in seconds.
pub const WINDOWS: [u64; 4] = [1, 10, 60, 300];
const RING: usize = 300;

/// Summary of a histogram over a window or since start.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Summary {
    /// Observations.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
    /// Smallest observation (within bucket resolution for windows; exact for totals).
    pub min: f64,
    /// Largest observation (within bucket resolution for windows; exact for totals).
    pub max: f64,
    /// sum / count.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Summary {
    /// Summarise fine-bucket counts; `exact` bounds (min, max) clamp the estimates when known.
    pub(crate) fn from_buckets(buckets: &[u64], count: u64, sum: f64, exact: Option<(f64, f64)>) -> Summary {
        if count == 0 {
            return Summary::default();
        }
        let lowest = buckets.iter().position(|&c| c > 0).unwrap_or(0);
        let highest = buckets.iter().rposition(|&c| c > 0).unwrap_or(0);
        let (min, max) = exact.unwrap_or((bucket_value(lowest), bucket_value(highest)));
        let clamp = |v: f64| v.clamp(min, max);
        let quantile = |q: f64| {
            // Nearest rank: the smallest value with at least ⌈q·count⌉ observations at or below it.
            let rank = ((q * count as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, &c) in buckets.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return clamp(bucket_value(i));
                }
            }
            max
        };
        Summary {
            count,
            sum,
            min,
            max,
            mean: sum / count as f64,
            p50: quantile(0.50),
            p90: quantile(0.90),
            p95: quantile(0.95),
            p99: quantile(0.99),
        }
    }
}

#[derive(Debug, Default)]
struct HistogramDelta {
    entries: Vec<(u16, u64)>,
    count: u64,
    sum: f64,
}

#[derive(Debug)]
struct HistogramAccumulator {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl HistogramAccumulator {
    fn new() -> Self {
        HistogramAccumulator { buckets: vec![0; BUCKETS], count: 0, sum: 0.0 }
    }

    fn apply(&mut self, delta: &HistogramDelta, sign: i64) {
        for &(i, c) in &delta.entries {
            let slot = &mut self.buckets[i as usize];
            *slot = if sign > 0 { slot.wrapping_add(c) } else { slot.wrapping_sub(c) };
        }
        self.count = if sign > 0 {
            self.count.wrapping_add(delta.count)
        } else {
            self.count.wrapping_sub(delta.count)
        };
        self.sum += sign as f64 * delta.sum;
        if self.count == 0 {
            self.sum = 0.0;
        }
    }
}

#[derive(Debug)]
enum Track {
    Counter {
        last: u64,
        ring: VecDeque<u64>,
        windows: [u64; 4],
    },
    Histogram {
        last: Box<HistogramTotals>,
        ring: VecDeque<HistogramDelta>,
        windows: Box<[HistogramAccumulator; 4]>,
    },
    Gauge,
}

/// Per-metric rings and window accumulators, advanced by [`Windows::fold`].
#[derive(Debug)]
pub(crate) struct Windows {
    /// The last second folded (seconds since the telemetry clock's origin).
    folded_second: u64,
    tracks: Vec<(Arc<Entry>, Track)>,
    /// Seconds the fold did not run for; their activity was attributed to the next folded second.
    pub(crate) skipped_seconds: u64,
}

/// One metric's view of one window.
pub(crate) enum WindowValue {
    Counter(u64),
    Histogram(Summary),
    Gauge(f64),
}

impl Windows {
    pub(crate) fn new(now: Duration) -> Self {
        Windows { folded_second: now.as_secs(), tracks: Vec::new(), skipped_seconds: 0 }
    }

    /// Fold every whole second that has ended by `now`.
    pub(crate) fn fold(&mut self, now: Duration, entries: &[Arc<Entry>]) {
        for entry in &entries[self.tracks.len().min(entries.len())..] {
            self.tracks.push((Arc::clone(entry), new_track(entry)));
        }
        let second = now.as_secs();
        if second <= self.folded_second {
            return;
        }
        let gap = second - self.folded_second;
        self.skipped_seconds += gap - 1;
        self.folded_second = second;
        // Seconds the fold missed get empty slots so the ring stays one slot per second; what they
        // counted lands in the latest second.
        let empty_slots = (gap - 1).min(RING as u64) as usize;
        for (entry, track) in &mut self.tracks {
            match (track, &entry.cell) {
                (Track::Counter { last, ring, windows }, CellRef::Counter(cell)) => {
                    let total = cell.total();
                    let delta = total.wrapping_sub(*last);
                    *last = total;
                    for slot in std::iter::repeat_n(0, empty_slots).chain([delta]) {
                        ring.push_back(slot);
                        for (w, &length) in WINDOWS.iter().enumerate() {
                            windows[w] += slot;
                            if ring.len() > length as usize {
                                windows[w] -= ring[ring.len() - 1 - length as usize];
                            }
                        }
                        if ring.len() > RING {
                            ring.pop_front();
                        }
                    }
                }
                (Track::Histogram { last, ring, windows }, CellRef::Histogram(cell)) => {
                    let totals = cell.totals();
                    let mut delta = HistogramDelta {
                        count: totals.count - last.count,
                        sum: totals.sum - last.sum,
                        ..Default::default()
                    };
                    for (i, (&now, &before)) in totals.fine.iter().zip(&last.fine).enumerate() {
                        if now != before {
                            delta.entries.push((i as u16, now - before));
                        }
                    }
                    **last = totals;
                    for slot in
                        std::iter::repeat_with(HistogramDelta::default).take(empty_slots).chain([delta])
                    {
                        ring.push_back(slot);
                        for (w, &length) in WINDOWS.iter().enumerate() {
                            windows[w].apply(&ring[ring.len() - 1], 1);
                            if ring.len() > length as usize {
                                windows[w].apply(&ring[ring.len() - 1 - length as usize], -1);
                            }
                        }
                        if ring.len() > RING {
                            ring.pop_front();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Every tracked metric's value over window `w` (index into [`WINDOWS`]).
    pub(crate) fn window(&self, w: usize) -> impl Iterator<Item = (&Entry, WindowValue)> + '_ {
        self.tracks.iter().map(move |(entry, track)| {
            let value = match (track, &entry.cell) {
                (Track::Counter { windows, .. }, _) => WindowValue::Counter(windows[w]),
                (Track::Histogram { windows, .. }, _) => {
                    let a = &windows[w];
                    WindowValue::Histogram(Summary::from_buckets(&a.buckets, a.count, a.sum, None))
                }
                (Track::Gauge, CellRef::Gauge(cell)) => WindowValue::Gauge(cell.value()),
                (Track::Gauge, _) => WindowValue::Gauge(f64::NAN),
            };
            (&**entry, value)
        })
    }
}

/// A metric starts tracking from zero: whatever it counted before its first fold lands in that fold.
fn new_track(entry: &Entry) -> Track {
    match &entry.cell {
        CellRef::Counter(_) => Track::Counter { last: 0, ring: VecDeque::new(), windows: [0; 4] },
        CellRef::Histogram(cell) => Track::Histogram {
            last: Box::new(HistogramTotals::empty(cell.bounds.len())),
            ring: VecDeque::new(),
            windows: Box::new(std::array::from_fn(|_| HistogramAccumulator::new())),
        },
        CellRef::Gauge(_) => Track::Gauge,
    }
}

//! Metric cells and their handles. Recording is a handful of relaxed atomic operations on a shard
//! picked per thread, so concurrent recorders do not share cache lines and never take a lock.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Recording shards per metric; threads are spread over them round-robin.
pub(crate) const SHARDS: usize = 8;

/// Sub-buckets per power of two in the fine histogram layout: the bucket midpoint is within
/// 1 / (2 · 32) = 1.6 % of any value in the bucket.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const MIN_EXP: i32 = -32;
const MAX_EXP: i32 = 32;
/// Largest value a histogram records (larger observations are clamped to it).
const MAX_VALUE: f64 = 4_294_967_296.0;
/// Fine buckets: index 0 holds values ≤ 0; the rest cover [2^-32, 2^32) log-linearly.
pub(crate) const BUCKETS: usize = 1 + (MAX_EXP - MIN_EXP) as usize * SUB;

/// The fine bucket of `value` (values outside the range land in the first or last bucket).
#[inline]
pub(crate) fn bucket_index(value: f64) -> usize {
    if value.is_nan() || value <= 0.0 {
        return 0;
    }
    let bits = value.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    if exponent < MIN_EXP {
        return 1;
    }
    if exponent >= MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((bits >> (52 - SUB_BITS)) as usize) & (SUB - 1);
    1 + (exponent - MIN_EXP) as usize * SUB + sub
}

/// The representative value (midpoint) of a fine bucket.
pub(crate) fn bucket_value(index: usize) -> f64 {
    if index == 0 {
        return 0.0;
    }
    let i = index - 1;
    let base = 2f64.powi((i / SUB) as i32 + MIN_EXP);
    let sub = (i % SUB) as f64;
    base * (1.0 + (sub + 0.5) / SUB as f64)
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn shard_index() -> usize {
    SHARD.with(|shard| {
        let mut index = shard.get();
        if index == usize::MAX {
            index = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            shard.set(index);
        }
        index
    })
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A monotonic counter, exact: sharded adds, summed on read.
#[derive(Debug, Default)]
pub(crate) struct CounterCell {
    shards: [Padded; SHARDS],
}

impl CounterCell {
    pub(crate) fn total(&self) -> u64 {
        // Wrapping: a host adding absurd amounts must not panic the fold.
        self.shards.iter().fold(0u64, |total, s| total.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

/// Handle to a counter.
#[derive(Debug, Clone)]
pub struct Counter(pub(crate) Arc<CounterCell>);

impl Counter {
    /// A counter outside any registry (internal feeds that are not exported).
    pub fn detached() -> Counter {
        Counter(Arc::default())
    }

    /// Add `by`.
    #[inline]
    pub fn add(&self, by: u64) {
        self.0.shards[shard_index()].0.fetch_add(by, Ordering::Relaxed);
    }

    /// Add one.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// The total since start.
    pub fn total(&self) -> u64 {
        self.0.total()
    }
}

/// A gauge: the last value recorded.
#[derive(Debug, Default)]
pub(crate) struct GaugeCell(AtomicU64);

impl GaugeCell {
    pub(crate) fn value(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Handle to a gauge.
#[derive(Debug, Clone)]
pub struct Gauge(pub(crate) Arc<GaugeCell>);

impl Gauge {
    /// Record the current value.
    #[inline]
    pub fn set(&self, value: f64) {
        self.0.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// The last value recorded.
    pub fn value(&self) -> f64 {
        self.0.value()
    }
}

#[derive(Debug)]
#[repr(align(128))]
struct HistogramShard {
    /// Fine buckets, then one "upper part" slot per fine bucket that a Prometheus bound splits.
    fine: Box<[AtomicU64]>,
    /// Sum in units of the cell's `resolution` (fixed point: one relaxed add, no CAS loop).
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

/// How fine buckets map onto the fixed Prometheus buckets. A bound that falls inside a fine bucket
/// splits it: observations above the bound go to an extra slot, so Prometheus counts stay exact while
/// recording costs one bucket increment.
#[derive(Debug)]
struct Layout {
    /// Prometheus slot of each fine bucket (of its part at or below any splitting bound).
    slot: Box<[u8]>,
    /// 0, or 1 + the index of the bound splitting this fine bucket.
    split: Box<[u8]>,
    /// Splitting bounds, and the fine bucket each splits.
    split_bounds: Vec<(f64, usize)>,
}

impl Layout {
    fn new(bounds: &[f64]) -> Layout {
        assert!(bounds.len() < 255 && bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascending, < 255");
        let mut slot = vec![0u8; BUCKETS].into_boxed_slice();
        let mut split = vec![0u8; BUCKETS].into_boxed_slice();
        let mut split_bounds = Vec::new();
        for (i, s) in slot.iter_mut().enumerate() {
            let (lower, upper) = bucket_range(i);
            // Slot of the bucket's lowest value.
            *s = bounds.iter().position(|&b| lower <= b).unwrap_or(bounds.len()) as u8;
            if let Some(&b) = bounds.iter().find(|&&b| lower <= b && b < upper && i != 0) {
                assert!(
                    bounds.iter().filter(|&&x| lower <= x && x < upper).count() == 1,
                    "one bound per fine bucket"
                );
                split_bounds.push((b, i));
                split[i] = split_bounds.len() as u8;
            }
        }
        Layout { slot, split, split_bounds }
    }
}

/// The value range `[lower, upper)` of a fine bucket (bucket 0: values ≤ 0).
fn bucket_range(index: usize) -> (f64, f64) {
    if index == 0 {
        return (f64::NEG_INFINITY, 0.0);
    }
    let i = index - 1;
    let base = 2f64.powi((i / SUB) as i32 + MIN_EXP);
    let sub = (i % SUB) as f64;
    (base * (1.0 + sub / SUB as f64), base * (1.0 + (sub + 1.0) / SUB as f64))
}

/// A histogram: fine log-linear buckets for quantiles (≤ 1.6 % error) plus fixed Prometheus buckets.
#[derive(Debug)]
pub(crate) struct HistogramCell {
    shards: Box<[HistogramShard]>,
    pub(crate) bounds: &'static [f64],
    layout: Layout,
    /// Sum resolution: 10⁻⁴ of the smallest positive bucket bound (1 ns for latency buckets).
    resolution: f64,
    /// The sum so far, in f64: every `totals()` drains the shards' fixed-point sums into it, so
    /// those only ever hold what accumulated since the last read (at most a second or so).
    drained_sum: std::sync::Mutex<f64>,
}

/// Cumulative contents of a histogram since start, merged over shards.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramTotals {
    pub(crate) fine: Vec<u64>,
    /// Non-cumulative counts per Prometheus bucket (`le` bounds, then +Inf).
    pub(crate) prometheus: Vec<u64>,
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl HistogramTotals {
    pub(crate) fn empty(bounds: usize) -> Self {
        HistogramTotals {
            fine: vec![0; BUCKETS],
            prometheus: vec![0; bounds + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl HistogramCell {
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        let layout = Layout::new(bounds);
        let slots = BUCKETS + layout.split_bounds.len();
        let shards = (0..SHARDS)
            .map(|_| HistogramShard {
                fine: (0..slots).map(|_| AtomicU64::new(0)).collect(),
                sum: AtomicU64::new(0),
                min: AtomicU64::new(f64::INFINITY.to_bits()),
                max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            })
            .collect();
        let smallest = bounds.iter().copied().filter(|&b| b > 0.0).fold(1.0, f64::min);
        HistogramCell { shards, bounds, layout, resolution: smallest * 1e-4, drained_sum: Default::default() }
    }

    pub(crate) fn totals(&self) -> HistogramTotals {
        let mut t = HistogramTotals::empty(self.bounds.len());
        let mut upper_parts = vec![0u64; self.layout.split_bounds.len()];
        let mut drained = self.drained_sum.lock().unwrap_or_else(|p| p.into_inner());
        for shard in self.shards.iter() {
            for (slot, cell) in t.fine.iter_mut().zip(shard.fine.iter()) {
                *slot += cell.load(Ordering::Relaxed);
            }
            for (slot, cell) in upper_parts.iter_mut().zip(shard.fine[BUCKETS..].iter()) {
                *slot += cell.load(Ordering::Relaxed);
            }
            *drained += shard.sum.swap(0, Ordering::Relaxed) as f64 * self.resolution;
            t.min = t.min.min(f64::from_bits(shard.min.load(Ordering::Relaxed)));
            t.max = t.max.max(f64::from_bits(shard.max.load(Ordering::Relaxed)));
        }
        for (i, &count) in t.fine.iter().enumerate() {
            t.prometheus[self.layout.slot[i] as usize] += count;
        }
        for (&count, &(_, bucket)) in upper_parts.iter().zip(&self.layout.split_bounds) {
            t.prometheus[self.layout.slot[bucket] as usize + 1] += count;
            t.fine[bucket] += count;
        }
        t.sum = *drained;
        t.count = t.fine.iter().sum();
        t
    }
}

/// Handle to a histogram.
#[derive(Debug, Clone)]
pub struct Histogram(pub(crate) Arc<HistogramCell>);

impl Histogram {
    /// A histogram outside any registry (internal feeds that are not exported).
    pub fn detached(bounds: &'static [f64]) -> Histogram {
        Histogram(Arc::new(HistogramCell::new(bounds)))
    }

    /// Cumulative contents since start.
    pub(crate) fn totals(&self) -> HistogramTotals {
        self.0.totals()
    }

    /// Record one observation. Metrics here are non-negative and bounded: NaN and negatives are
    /// recorded as 0, values above 2³² (and +∞) as 2³².
    #[inline]
    pub fn observe(&self, value: f64) {
        let value = if value > 0.0 { value.min(MAX_VALUE) } else { 0.0 };
        let cell = &*self.0;
        let shard = &cell.shards[shard_index()];
        let mut index = bucket_index(value);
        let split = cell.layout.split[index];
        if split != 0 && value > cell.layout.split_bounds[split as usize - 1].0 {
            index = BUCKETS + split as usize - 1;
        }
        shard.fine[index].fetch_add(1, Ordering::Relaxed);
        shard.sum.fetch_add((value / cell.resolution) as u64, Ordering::Relaxed);
        if value < f64::from_bits(shard.min.load(Ordering::Relaxed)) {
            let _ = shard.min.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (value < f64::from_bits(m)).then_some(value.to_bits())
            });
        }
        if value > f64::from_bits(shard.max.load(Ordering::Relaxed)) {
            let _ = shard.max.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                (value > f64::from_bits(m)).then_some(value.to_bits())
            });
        }
    }

    /// Record a duration in seconds.
    #[inline]
    pub fn observe_duration(&self, duration: std::time::Duration) {
        self.observe(duration.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_midpoints_are_within_two_percent() {
        let mut x = 1e-9;
        while x < 1e9 {
            let estimate = bucket_value(bucket_index(x));
            assert!((estimate - x).abs() / x <= 0.0157, "{x}: {estimate}");
            x *= 1.013;
        }
        assert_eq!(bucket_index(0.0), 0);
        assert_eq!(bucket_index(-1.0), 0);
        assert_eq!(bucket_index(f64::NAN), 0);
        assert_eq!(bucket_index(1e300), BUCKETS - 1);
    }

    #[test]
    fn prometheus_buckets_are_exact_at_every_bound() {
        static BOUNDS: &[f64] = &[0.0, 1.0, 2.0, 3.0, 0.05 * 64.0, 10.0];
        let h = Histogram(Arc::new(HistogramCell::new(super::super::registry::LATENCY_BOUNDS)));
        let d = Histogram(Arc::new(HistogramCell::new(BOUNDS)));
        let mut expected = vec![0u64; super::super::registry::LATENCY_BOUNDS.len() + 1];
        for &b in super::super::registry::LATENCY_BOUNDS {
            for v in [b, b * (1.0 - 1e-12), b * (1.0 + 1e-12), b * 1.01, b * 0.99] {
                h.observe(v);
                let slot = super::super::registry::LATENCY_BOUNDS
                    .iter()
                    .position(|&x| v <= x)
                    .unwrap_or(expected.len() - 1);
                expected[slot] += 1;
            }
        }
        assert_eq!(h.0.totals().prometheus, expected);
        for v in [0.0, 1.0, 1.5, 2.0, 2.0001, 3.0, 3.2, 3.3, 100.0] {
            d.observe(v);
        }
        assert_eq!(d.0.totals().prometheus, vec![1, 1, 2, 2, 1, 1, 1]);
        assert_eq!(d.0.totals().count, 9);
    }
}

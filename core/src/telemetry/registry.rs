//! [`MetricsRegistry`]: named counters, gauges and histograms. Lookup by name is for hosts and tests;
//! an owner's hot path holds pre-registered handles and never looks a name up.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::metric::{Counter, CounterCell, Gauge, GaugeCell, Histogram, HistogramCell};
use crate::error::{Error, Result};

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Monotonic count.
    Counter,
    /// Last recorded value.
    Gauge,
    /// Distribution of observations.
    Histogram,
}

/// Most metrics one registry holds (its owner's and its hosts' together): memory stays bounded
/// whatever names hosts send.
pub const MAX_METRICS: usize = 1024;

/// Default Prometheus buckets (seconds) for histograms a host registers by name.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a metric appears in the Prometheus exposition: as a member of a family, told apart from
/// the family's other members by one label (`request_seconds{route="search"}`).
#[derive(Debug, Clone)]
pub struct Exposition {
    /// Family name without the `axonal_` prefix.
    pub family: String,
    /// The label distinguishing this member of the family.
    pub label: Option<(&'static str, &'static str)>,
}

impl Exposition {
    /// A family of one metric, or of labelled members.
    pub fn family(family: &str, label: Option<(&'static str, &'static str)>) -> Option<Exposition> {
        Some(Exposition { family: family.to_owned(), label })
    }
}

#[derive(Debug, Clone)]
pub(crate) enum CellRef {
    Counter(Arc<CounterCell>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<HistogramCell>),
}

/// One registered metric.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) exposition: Option<Exposition>,
    pub(crate) cell: CellRef,
}

impl Entry {
    pub(crate) fn kind(&self) -> MetricKind {
        match self.cell {
            CellRef::Counter(_) => MetricKind::Counter,
            CellRef::Gauge(_) => MetricKind::Gauge,
            CellRef::Histogram(_) => MetricKind::Histogram,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Arc<Entry>>,
    by_name: HashMap<String, usize>,
}

/// Named metrics. Registration takes a write lock; recording through a handle takes none.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    inner: RwLock<Inner>,
}

impl MetricsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        MetricsRegistry::default()
    }

    /// Add `by` to the counter `name`, registering it on first use.
    pub fn increment_counter(&self, name: &str, by: u64) -> Result<()> {
        self.counter(name, "Host-defined counter.").map(|c| c.add(by))
    }

    /// Record `value` in the histogram `name`, registering it (latency buckets) on first use.
    pub fn observe_histogram(&self, name: &str, value: f64) -> Result<()> {
        self.histogram(name, "Host-defined histogram.", LATENCY_BOUNDS).map(|h| h.observe(value))
    }

    /// Set the gauge `name`, registering it on first use.
    pub fn record_gauge(&self, name: &str, value: f64) -> Result<()> {
        self.gauge(name, "Host-defined gauge.").map(|g| g.set(value))
    }

    /// The counter `name`, registered if new.
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter> {
        let family = if name.ends_with("_total") { name.to_owned() } else { format!("{name}_total") };
        match self.get_or_register(name, help, Some(Exposition { family, label: None }), || {
            CellRef::Counter(Arc::default())
        })? {
            CellRef::Counter(cell) => Ok(Counter(cell)),
            _ => Err(kind_clash(name, MetricKind::Counter)),
        }
    }

    /// The gauge `name`, registered if new.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge> {
        let exposition = Some(Exposition { family: name.to_owned(), label: None });
        match self.get_or_register(name, help, exposition, || CellRef::Gauge(Arc::default()))? {
            CellRef::Gauge(cell) => Ok(Gauge(cell)),
            _ => Err(kind_clash(name, MetricKind::Gauge)),
        }
    }

    /// The histogram `name` with Prometheus bucket bounds `bounds`, registered if new.
    pub fn histogram(&self, name: &str, help: &str, bounds: &'static [f64]) -> Result<Histogram> {
        let exposition = Some(Exposition { family: name.to_owned(), label: None });
        match self.get_or_register(name, help, exposition, || {
            CellRef::Histogram(Arc::new(HistogramCell::new(bounds)))
        })? {
            CellRef::Histogram(cell) => Ok(Histogram(cell)),
            _ => Err(kind_clash(name, MetricKind::Histogram)),
        }
    }

    /// The counter `name`, exposed as `exposition` (`None`: in snapshots only, not in the
    /// Prometheus text), registered if new.
    pub fn counter_exposed(&self, name: &str, help: &str, exposition: Option<Exposition>) -> Result<Counter> {
        match self.get_or_register(name, help, exposition, || CellRef::Counter(Arc::default()))? {
            CellRef::Counter(cell) => Ok(Counter(cell)),
            _ => Err(kind_clash(name, MetricKind::Counter)),
        }
    }

    /// The gauge `name`, exposed as `exposition`, registered if new.
    pub fn gauge_exposed(&self, name: &str, help: &str, exposition: Option<Exposition>) -> Result<Gauge> {
        match self.get_or_register(name, help, exposition, || CellRef::Gauge(Arc::default()))? {
            CellRef::Gauge(cell) => Ok(Gauge(cell)),
            _ => Err(kind_clash(name, MetricKind::Gauge)),
        }
    }

    /// The histogram `name` with bucket bounds `bounds`, exposed as `exposition`, registered if new.
    pub fn histogram_exposed(
        &self,
        name: &str,
        help: &str,
        exposition: Option<Exposition>,
        bounds: &'static [f64],
    ) -> Result<Histogram> {
        match self.get_or_register(name, help, exposition, || {
            CellRef::Histogram(Arc::new(HistogramCell::new(bounds)))
        })? {
            CellRef::Histogram(cell) => Ok(Histogram(cell)),
            _ => Err(kind_clash(name, MetricKind::Histogram)),
        }
    }

    /// Every registered metric, in registration order.
    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).entries.clone()
    }

    /// The kind of the metric `name`, if registered.
    pub fn kind(&self, name: &str) -> Option<MetricKind> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.by_name.get(name).map(|&i| inner.entries[i].kind())
    }

    fn get_or_register(
        &self,
        name: &str,
        help: &str,
        exposition: Option<Exposition>,
        make: impl FnOnce() -> CellRef,
    ) -> Result<CellRef> {
        {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            if let Some(&i) = inner.by_name.get(name) {
                return Ok(inner.entries[i].cell.clone());
            }
        }
        check_name(name)?;
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&i) = inner.by_name.get(name) {
            return Ok(inner.entries[i].cell.clone());
        }
        if inner.entries.len() >= MAX_METRICS {
            return Err(Error::InvalidMetric {
                name: name.to_owned(),
                message: format!("the registry already holds its maximum of {MAX_METRICS} metrics"),
            });
        }
        // One exposition family has one type and no duplicate series: a new metric may not reuse a
        // family unless it adds a new label value to it.
        if let Some(new) = &exposition
            && inner.entries.iter().filter_map(|e| e.exposition.as_ref()).any(|e| {
                e.family == new.family && (e.label.is_none() || new.label.is_none() || e.label == new.label)
            })
        {
            return Err(Error::InvalidMetric {
                name: name.to_owned(),
                message: format!("its exposition name axonal_{} is already taken", new.family),
            });
        }
        let cell = make();
        let entry = Entry { name: name.to_owned(), help: help.to_owned(), exposition, cell: cell.clone() };
        let index = inner.entries.len();
        inner.entries.push(Arc::new(entry));
        inner.by_name.insert(name.to_owned(), index);
        Ok(cell)
    }
}

fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidMetric {
            name: name.to_owned(),
            message: "names are [A-Za-z_][A-Za-z0-9_]*".into(),
        })
    }
}

fn kind_clash(name: &str, wanted: MetricKind) -> Error {
    Error::InvalidMetric {
        name: name.to_owned(),
        message: format!("already registered as another kind, not {wanted:?}"),
    }
}

//! Prometheus text exposition (format 0.0.4): prefix `axonal_`, labels for tiers and reasons, fixed
//! histogram buckets, HELP and TYPE once per family.

use std::fmt::Write;
use std::sync::Arc;

use super::registry::{CellRef, Entry, MetricKind};

const PREFIX: &str = "axonal_";

/// Render every exposed metric, families in first-registration order.
pub(super) fn render(entries: &[Arc<Entry>]) -> String {
    let mut families: Vec<(&str, Vec<&Entry>)> = Vec::new();
    for entry in entries {
        let Some(exposition) = &entry.exposition else { continue };
        match families.iter_mut().find(|(family, _)| *family == exposition.family) {
            Some((_, members)) => members.push(entry),
            None => families.push((&exposition.family, vec![entry])),
        }
    }
    let mut out = String::with_capacity(16 * 1024);
    for (family, members) in families {
        let kind = match members[0].kind() {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {PREFIX}{family} {}", escape_help(&members[0].help));
        let _ = writeln!(out, "# TYPE {PREFIX}{family} {kind}");
        for entry in members {
            let label = entry.exposition.as_ref().and_then(|e| e.label);
            match &entry.cell {
                CellRef::Counter(c) => {
                    let _ = writeln!(out, "{PREFIX}{family}{} {}", labels(label, None), c.total());
                }
                CellRef::Gauge(g) => {
                    let _ = writeln!(out, "{PREFIX}{family}{} {}", labels(label, None), number(g.value()));
                }
                CellRef::Histogram(h) => {
                    let totals = h.totals();
                    let mut cumulative = 0;
                    for (i, count) in totals.prometheus.iter().enumerate() {
                        cumulative += count;
                        let le = h.bounds.get(i).map_or_else(|| "+Inf".to_owned(), |b| number(*b));
                        let _ =
                            writeln!(out, "{PREFIX}{family}_bucket{} {cumulative}", labels(label, Some(&le)));
                    }
                    let _ =
                        writeln!(out, "{PREFIX}{family}_sum{} {}", labels(label, None), number(totals.sum));
                    let _ = writeln!(out, "{PREFIX}{family}_count{} {}", labels(label, None), totals.count);
                }
            }
        }
    }
    out
}

fn labels(label: Option<(&str, &str)>, le: Option<&str>) -> String {
    match (label, le) {
        (None, None) => String::new(),
        (Some((k, v)), None) => format!("{{{k}=\"{v}\"}}"),
        (None, Some(le)) => format!("{{le=\"{le}\"}}"),
        (Some((k, v)), Some(le)) => format!("{{{k}=\"{v}\",le=\"{le}\"}}"),
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

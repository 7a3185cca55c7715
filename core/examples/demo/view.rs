//! The demo's live terminal view: one block redrawn in place on a terminal (a line every few
//! seconds otherwise), fed from the engine's own snapshot, health report and transition events.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axonal_core::Engine;
use axonal_core::ToJson;
use serde_json::Value;

/// Recent breaker transitions, as the engine's dispatcher delivered them.
pub type Events = Arc<Mutex<VecDeque<String>>>;

pub struct View {
    started: Instant,
    terminal: bool,
    drawn_lines: usize,
    last_total: u64,
    last_at: Instant,
    last_line_at: Option<Instant>,
    title: String,
    threads: usize,
    pub events: Events,
}

impl View {
    pub fn new(title: String, threads: usize) -> View {
        let now = Instant::now();
        View {
            started: now,
            terminal: std::io::stdout().is_terminal(),
            drawn_lines: 0,
            last_total: 0,
            last_at: now,
            last_line_at: None,
            title,
            threads,
            events: Arc::default(),
        }
    }

    /// Subscribe to the engine's breaker transitions (kept: the last five).
    pub fn follow(&self, engine: &Engine) {
        let events = Arc::clone(&self.events);
        let started = self.started;
        engine.on_breaker_transition(move |event| {
            let mut events = events.lock().unwrap_or_else(|p| p.into_inner());
            if events.len() == 5 {
                events.pop_front();
            }
            let reason = serde_json::to_value(event.reason).unwrap_or_default();
            events.push_back(format!(
                "t+{:5.1}s  breaker {} → {} ({})",
                started.elapsed().as_secs_f64(),
                event.from.as_str(),
                event.to.as_str(),
                reason.as_str().unwrap_or("?")
            ));
        });
    }

    /// Draw the current state; `phase` is the game day's step, if one runs.
    pub fn refresh(&mut self, engine: &Engine, phase: Option<&str>) {
        let section = engine.spreading_section().to_json();
        let health = engine.health_report().to_json();
        let total = section["recalls_total"].as_u64().unwrap_or(0);
        let now = Instant::now();
        let rate =
            (total - self.last_total.min(total)) as f64 / now.duration_since(self.last_at).as_secs_f64();
        self.last_total = total;
        self.last_at = now;
        if self.terminal {
            let lines = self.block(&section, &health, rate, phase);
            let mut out = std::io::stdout().lock();
            if self.drawn_lines > 0 {
                let _ = write!(out, "\x1b[{}A", self.drawn_lines);
            }
            for line in &lines {
                let _ = writeln!(out, "\x1b[2K{line}");
            }
            let _ = out.flush();
            self.drawn_lines = lines.len();
        } else if self.last_line_at.is_none_or(|at| at.elapsed().as_secs_f64() >= 5.0) {
            // Not a terminal (a log, CI): one compact line every five seconds.
            self.last_line_at = Some(now);
            println!("{}", self.line(&section, &health, rate, phase));
        }
    }

    fn block(&self, section: &Value, health: &Value, rate: f64, phase: Option<&str>) -> Vec<String> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut lines = vec![
            format!("── {} ── {elapsed:.0} s ── Ctrl-C stops ──", self.title),
            format!(
                "throughput  {:>9.0} recalls/s on {} threads   fallback {} ({})",
                rate,
                self.threads,
                section["fallback"]["total"],
                reasons(&section["fallback"]["by_reason"])
            ),
            "latency     (last 60 s)     p50        p95        p99".to_string(),
        ];
        for tier in ["total", "hot", "warm", "cold"] {
            let l = &section["latency"][tier];
            let q =
                |name: &str| if l["count"].as_u64() == Some(0) { "—".into() } else { duration(&l[name]) };
            lines.push(format!(
                "  {tier:<6} {:>9} calls  {:>9}  {:>9}  {:>9}",
                l["count"],
                q("p50"),
                q("p95"),
                q("p99")
            ));
        }
        let breaker = &section["breaker"];
        lines.push(format!(
            "breaker     {:<10} override {:<13} failure rate {:.2} over {} calls",
            breaker["state"].as_str().unwrap_or("?"),
            breaker["override"].as_str().unwrap_or("?"),
            breaker["failure_rate"].as_f64().unwrap_or(0.0),
            breaker["window_calls"]
        ));
        let probe = &health["probes"]["spreading"];
        lines.push(format!(
            "health      {:<10} spreading probe {} after {} checks (budget {} ms)",
            health["status"].as_str().unwrap_or("?"),
            probe["status"].as_str().unwrap_or("?"),
            probe["checks_total"],
            probe["budget_ms"]
        ));
        let tuner = &section["autotune"];
        let last = tuner["last"]["reason"].as_str().map(|r| short(r, 70)).unwrap_or_else(|| "—".into());
        lines.push(format!(
            "tuner       {:<10} {} changes; last: {last}",
            if tuner["enabled"].as_bool() == Some(true) { "enabled" } else { "disabled" },
            tuner["changes_total"]
        ));
        let graph = &section["graph"];
        lines.push(format!(
            "graph       version {}  {} nodes  {} edges  pending {} of {}  {} compactions  {} batches",
            graph["version"],
            graph["nodes"],
            graph["edges"],
            graph["delta_edges"],
            graph["compaction_threshold_edges"],
            graph["compactions_total"],
            graph["batches_total"]
        ));
        if let Some(phase) = phase {
            lines.push(format!("game day    {phase}"));
        }
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        lines.push(format!(
            "events      {}",
            if events.is_empty() { "no breaker transitions yet" } else { "" }
        ));
        lines.extend(events.iter().map(|e| format!("  {e}")));
        lines
    }

    fn line(&self, section: &Value, health: &Value, rate: f64, phase: Option<&str>) -> String {
        format!(
            "t+{:.0}s  {:.0} recalls/s  p99 {}  breaker {}  health {}  tuner changes {}  graph v{} {} edges, {} pending, {} \
             compactions{}",
            self.started.elapsed().as_secs_f64(),
            rate,
            if section["latency"]["total"]["count"].as_u64() == Some(0) {
                "—".into()
            } else {
                duration(&section["latency"]["total"]["p99"])
            },
            section["breaker"]["state"].as_str().unwrap_or("?"),
            health["status"].as_str().unwrap_or("?"),
            section["autotune"]["changes_total"],
            section["graph"]["version"],
            section["graph"]["edges"],
            section["graph"]["delta_edges"],
            section["graph"]["compactions_total"],
            phase.map(|p| format!("  [{p}]")).unwrap_or_default()
        )
    }
}

fn duration(seconds: &Value) -> String {
    match seconds.as_f64() {
        None => "—".into(),
        Some(s) if s < 1e-3 => format!("{:.1} µs", s * 1e6),
        Some(s) => format!("{:.2} ms", s * 1e3),
    }
}

fn reasons(by_reason: &Value) -> String {
    let Some(map) = by_reason.as_object() else { return String::new() };
    let nonzero: Vec<String> =
        map.iter().filter(|(_, v)| v.as_u64() != Some(0)).map(|(k, v)| format!("{k} {v}")).collect();
    if nonzero.is_empty() { "none".into() } else { nonzero.join(", ") }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.into()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

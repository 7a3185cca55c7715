//! What the benchmarks share: the scale (full under `cargo bench`, 1/100 as a smoke run under
//! `cargo test --all-targets`), the machine line every report starts with, percentiles and units,
//! and the process's memory from `/proc/self/status`. Each bench uses part of it.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

/// 1 under `cargo bench`, 100 under `cargo test` (smoke run).
static SCALE_DOWN: OnceLock<usize> = OnceLock::new();

/// Read the command line once: `--bench` (what `cargo bench` passes) runs at full scale. Returns
/// the remaining arguments (the scenario names).
pub fn init() -> Vec<String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let full = all.iter().any(|a| a == "--bench");
    SCALE_DOWN.set(if full { 1 } else { 100 }).expect("init once");
    all.into_iter().filter(|a| !a.starts_with("--")).collect()
}

/// `n` at this run's scale (at least 1).
pub fn scaled(n: usize) -> usize {
    (n / SCALE_DOWN.get().copied().unwrap_or(1)).max(1)
}

/// Whether this is the scaled-down smoke run.
pub fn smoke() -> bool {
    SCALE_DOWN.get() != Some(&1)
}

/// The CPU's model name, as /proc/cpuinfo reports it.
pub fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The line every report starts with.
pub fn machine() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {}, {cores} cores", cpu());
}

/// The `p` quantile of sorted samples (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A `/proc/self/status` field in KiB (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

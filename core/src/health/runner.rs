//! [`HealthRegistry`]: the runner thread that schedules probes, one worker thread per probe,
//! timeouts, hysteresis; the report is built in `report.rs`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::options::ProbeOptions;
use super::report::{HEALTH_SCHEMA, HealthReport, ProbeReport};
use super::{HealthCheckResult, HealthProbe, HealthStatus};
use crate::clock::SharedClock;
use crate::config::HealthConfig;
use crate::error::{Error, Result};
use crate::telemetry::{Counter, Gauge};
/// The runner sleeps until the next due check or timeout, but never longer than this (so a changed
/// clock or schedule is noticed).
const RUNNER_MAX_SLEEP: Duration = Duration::from_secs(1);

/// Telemetry the registry feeds.
#[derive(Debug, Clone)]
pub struct HealthMetrics {
    /// `spreading_health_checks_total`.
    pub checks: Counter,
    /// `spreading_health_failures_total`.
    pub failures: Counter,
    /// `spreading_health_status`.
    pub status: Gauge,
}

#[derive(Debug)]
pub(super) struct ProbeState {
    pub(super) options: ProbeOptions,
    /// Unregistered or shut down: the worker must not start another check.
    pub(super) retired: bool,
    pub(super) status: HealthStatus,
    pub(super) consecutive_failures: u32,
    pub(super) consecutive_successes: u32,
    pub(super) last_success: Option<u64>,
    pub(super) last_failure: Option<u64>,
    pub(super) latency: Duration,
    pub(super) reason: Option<std::borrow::Cow<'static, str>>,
    pub(super) details: Value,
    pub(super) checks_total: u64,
    pub(super) next_due: Duration,
    pub(super) generation: u64,
    /// The check in progress: its generation and real-time deadline.
    pub(super) in_flight: Option<(u64, Instant)>,
}

pub(super) struct Entry {
    id: u64,
    pub(super) name: String,
    /// Registered without options: interval and timeout follow the `health` config.
    follows_config: bool,
    pub(super) probe: Arc<dyn HealthProbe>,
    state: Mutex<ProbeState>,
    finished: Condvar,
    requests: Mutex<Option<SyncSender<u64>>>,
    busy: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Entry {
    fn worker_is_current(&self) -> bool {
        self.worker
            .lock()
            .map(|w| w.as_ref().is_some_and(|w| w.thread().id() == std::thread::current().id()))
            .unwrap_or(false)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Inner {
    probes: Mutex<Vec<Arc<Entry>>>,
    defaults: Mutex<ProbeOptions>,
    next_id: AtomicU64,
    clock: SharedClock,
    failure_threshold: AtomicU32,
    success_threshold: AtomicU32,
    checked_at: AtomicU64,
    metrics: HealthMetrics,
}

/// The probes of one engine, their runner thread (`axonal-health`) and one worker thread per probe.
pub struct HealthRegistry {
    inner: Arc<Inner>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    runner: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthRegistry").finish_non_exhaustive()
    }
}

impl HealthRegistry {
    /// A registry with no probes and no runner; thresholds from `config`.
    pub fn new(config: &HealthConfig, clock: SharedClock, metrics: HealthMetrics) -> Self {
        metrics.status.set(0.0);
        HealthRegistry {
            inner: Arc::new(Inner {
                probes: Mutex::new(Vec::new()),
                defaults: Mutex::new(ProbeOptions::from_config(config)),
                next_id: AtomicU64::new(0),
                clock,
                failure_threshold: AtomicU32::new(config.failure_threshold),
                success_threshold: AtomicU32::new(config.success_threshold),
                checked_at: AtomicU64::new(0),
                metrics,
            }),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            runner: Mutex::new(None),
        }
    }

    /// Start the background runner (idempotent).
    pub fn start(&self) -> std::io::Result<()> {
        let mut runner = self.runner.lock().unwrap_or_else(|p| p.into_inner());
        if runner.is_some() {
            return Ok(());
        }
        let (inner, stop) = (Arc::clone(&self.inner), Arc::clone(&self.stop));
        *runner = Some(std::thread::Builder::new().name("axonal-health".into()).spawn(move || {
            let (lock, wake) = &*stop;
            let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !*stopped {
                drop(stopped);
                inner.run_pending();
                let wait = inner.until_next_event();
                stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                if !*stopped {
                    stopped = wake.wait_timeout(stopped, wait).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
        })?);
        Ok(())
    }

    /// Apply a new `health` config: hysteresis thresholds, and interval and timeout of every probe
    /// registered without options of its own (a shorter interval takes effect at once).
    pub fn apply_config(&self, config: &HealthConfig) {
        self.inner.failure_threshold.store(config.failure_threshold, Ordering::Relaxed);
        self.inner.success_threshold.store(config.success_threshold, Ordering::Relaxed);
        let defaults = ProbeOptions::from_config(config);
        *self.inner.defaults.lock().unwrap_or_else(|p| p.into_inner()) = defaults;
        let now = self.inner.clock.now();
        for entry in self.inner.snapshot().iter().filter(|e| e.follows_config) {
            let mut state = entry.lock();
            state.options.interval = defaults.interval;
            state.options.timeout = defaults.timeout;
            state.next_due = state.next_due.min(now + defaults.interval);
        }
        self.wake_runner();
    }

    /// Register `probe` with `options` (`None`: the configured interval and timeout, critical, and
    /// following later config changes); its first check is due at once. Names must be unique.
    pub fn register(&self, probe: Arc<dyn HealthProbe>, options: Option<ProbeOptions>) -> Result<u64> {
        let follows_config = options.is_none();
        let options =
            options.unwrap_or_else(|| *self.inner.defaults.lock().unwrap_or_else(|p| p.into_inner()));
        let name = probe.name().to_owned();
        if name.is_empty() {
            return Err(Error::config("probe name", "must not be empty"));
        }
        let mut probes = self.inner.probes.lock().unwrap_or_else(|p| p.into_inner());
        if probes.iter().any(|e| e.name == name) {
            return Err(Error::config("probe name", format!("{name:?} is already registered")));
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (sender, receiver) = sync_channel::<u64>(1);
        let entry = Arc::new(Entry {
            id,
            name: name.clone(),
            follows_config,
            probe,
            state: Mutex::new(ProbeState {
                options,
                retired: false,
                status: HealthStatus::Healthy,
                consecutive_failures: 0,
                consecutive_successes: 0,
                last_success: None,
                last_failure: None,
                latency: Duration::ZERO,
                reason: None,
                details: Value::Null,
                checks_total: 0,
                next_due: self.inner.clock.now(),
                generation: 0,
                in_flight: None,
            }),
            finished: Condvar::new(),
            requests: Mutex::new(Some(sender)),
            busy: Arc::new(AtomicBool::new(false)),
            worker: Mutex::new(None),
        });
        let (inner, worker_entry) = (Arc::clone(&self.inner), Arc::clone(&entry));
        let thread = std::thread::Builder::new()
            .name(format!("axonal-probe-{}", name.chars().take(20).collect::<String>()))
            .spawn(move || work(&inner, &worker_entry, &receiver))
            .map_err(|e| Error::Unavailable {
                feature: "threads",
                message: format!("cannot start a probe worker: {e}"),
            })?;
        *entry.worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        probes.push(entry);
        drop(probes);
        // The new probe is due now.
        self.wake_runner();
        Ok(id)
    }

    fn wake_runner(&self) {
        let _stopped = self.stop.0.lock().unwrap_or_else(|p| p.into_inner());
        self.stop.1.notify_all();
    }

    /// Remove a probe. Its worker stops after any check in progress; a hung check is left to finish
    /// on its own (its thread is detached). Returns whether `id` was registered.
    pub fn unregister(&self, id: u64) -> bool {
        let entry = {
            let mut probes = self.inner.probes.lock().unwrap_or_else(|p| p.into_inner());
            let Some(position) = probes.iter().position(|e| e.id == id) else { return false };
            probes.remove(position)
        };
        let hung = retire(&entry);
        self.inner.refresh_overall();
        // The runner holds an entry for a moment while it schedules checks: wait for it to let go,
        // so the probe (and a host's userdata with it) is freed before this returns. A hung check's
        // worker keeps it until that check returns (decision 0006).
        let deadline = Instant::now() + RELEASE_WAIT;
        while !hung && Arc::strong_count(&entry) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(100));
        }
        true
    }

    /// Run the probe `name` now, wait for it (up to its timeout) and return its entry of the report.
    pub fn check_named(&self, name: &str) -> Result<ProbeReport> {
        let entry = self.inner.find(name).ok_or_else(|| {
            Error::config(
                "probe",
                format!("no probe named {name:?} (registered: {})", self.names().join(", ")),
            )
        })?;
        let mut state = entry.lock();
        let generation = self.inner.dispatch(&entry, &mut state);
        loop {
            match state.in_flight {
                Some((g, deadline)) if g == generation => {
                    let now = Instant::now();
                    if now >= deadline {
                        self.inner.apply_timeout(&entry, &mut state);
                        break;
                    }
                    state = entry
                        .finished
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                _ => break,
            }
        }
        let report = ProbeReport::of(&entry, &state);
        drop(state);
        self.inner.refresh_overall();
        Ok(report)
    }

    /// Dispatch due probes and time out overdue checks now (the runner does this whenever one is due).
    pub fn run_pending(&self) {
        self.inner.run_pending();
    }

    /// Wait until no check is in flight: each finishes or reaches its timeout (tests drive the
    /// schedule with an injected clock, then settle).
    pub fn settle(&self) {
        for entry in self.inner.snapshot() {
            let mut state = entry.lock();
            let Some((generation, _)) = state.in_flight else { continue };
            // Only the check in flight now: a short interval must not keep this waiting forever.
            while let Some((_, deadline)) = state.in_flight.filter(|(g, _)| *g == generation) {
                let now = Instant::now();
                if now >= deadline {
                    self.inner.apply_timeout(&entry, &mut state);
                    break;
                }
                state =
                    entry.finished.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
            }
        }
        self.inner.refresh_overall();
    }

    /// The cached report: every probe's latest state and the overall status. Runs nothing.
    pub fn latest_report(&self) -> HealthReport {
        let probes = self.inner.snapshot();
        let checked_at = self.inner.checked_at.load(Ordering::Relaxed);
        HealthReport {
            schema: HEALTH_SCHEMA,
            status: self.inner.overall(&probes),
            checked_at: (checked_at != 0).then_some(checked_at),
            probes: probes.iter().map(|e| (e.name.clone(), ProbeReport::of(e, &e.lock()))).collect(),
        }
    }

    /// The overall status: the worst of the critical probes (healthy when there are none).
    pub fn status(&self) -> HealthStatus {
        self.inner.overall(&self.inner.snapshot())
    }

    /// One probe's current status.
    pub fn probe_status(&self, name: &str) -> Option<HealthStatus> {
        self.inner.find(name).map(|e| e.lock().status)
    }

    /// Registered probe names.
    pub fn names(&self) -> Vec<String> {
        self.inner.snapshot().iter().map(|e| e.name.clone()).collect()
    }

    /// Stop the runner and every worker (engine shutdown).
    pub fn shutdown(&self) {
        {
            let (lock, wake) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
        }
        if let Some(runner) = self.runner.lock().unwrap_or_else(|p| p.into_inner()).take()
            && runner.thread().id() != std::thread::current().id()
        {
            let _ = runner.join();
        }
        let probes = std::mem::take(&mut *self.inner.probes.lock().unwrap_or_else(|p| p.into_inner()));
        for entry in &probes {
            retire(entry);
        }
    }
}

impl Drop for HealthRegistry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How long unregistration waits for the runner to drop its passing reference to a probe.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

/// Stop the probe's worker: no new check starts (the worker checks `retired` under the state lock
/// before it begins one); a check already running gets up to the probe's timeout to finish, then
/// the worker is joined — or, if the check is hung, detached to finish on its own (also when we
/// are that worker). Returns whether the check is still running (hung, or we are its worker).
fn retire(entry: &Entry) -> bool {
    let busy = {
        let mut state = entry.lock();
        state.retired = true;
        let deadline = Instant::now() + state.options.timeout;
        while entry.busy.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= deadline || entry.worker_is_current() {
                break;
            }
            state = entry.finished.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        entry.busy.load(Ordering::Acquire)
    };
    drop(entry.requests.lock().unwrap_or_else(|p| p.into_inner()).take());
    let worker = entry.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(worker) = worker
        && !busy
        && worker.thread().id() != std::thread::current().id()
    {
        let _ = worker.join();
    }
    busy
}

impl Inner {
    fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.probes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn find(&self, name: &str) -> Option<Arc<Entry>> {
        self.snapshot().into_iter().find(|e| e.name == name)
    }

    /// Time until the next due check or in-flight timeout (at most `RUNNER_MAX_SLEEP`).
    fn until_next_event(&self) -> Duration {
        let (now, real_now) = (self.clock.now(), Instant::now());
        let mut wait = RUNNER_MAX_SLEEP;
        for entry in self.snapshot() {
            let state = entry.lock();
            wait = wait.min(state.next_due.saturating_sub(now));
            if let Some((_, deadline)) = state.in_flight {
                wait = wait.min(deadline.saturating_duration_since(real_now));
            }
        }
        wait.max(Duration::from_millis(1))
    }

    fn run_pending(&self) {
        let now = self.clock.now();
        let mut changed = false;
        for entry in self.snapshot() {
            let mut state = entry.lock();
            if let Some((_, deadline)) = state.in_flight
                && Instant::now() >= deadline
            {
                self.apply_timeout(&entry, &mut state);
                changed = true;
            }
            if now >= state.next_due {
                state.next_due = now + state.options.interval;
                self.dispatch(&entry, &mut state);
                changed |= state.in_flight.is_none();
            }
        }
        if changed {
            self.refresh_overall();
        }
    }

    /// Start a check on the probe's worker; returns its generation. A worker still stuck in an
    /// earlier check cannot take it: that counts as another timeout at once.
    fn dispatch(&self, entry: &Entry, state: &mut ProbeState) -> u64 {
        if let Some((generation, _)) = state.in_flight {
            return generation;
        }
        state.generation += 1;
        let generation = state.generation;
        let sent = match entry.requests.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(sender) if !entry.busy.load(Ordering::Acquire) => match sender.try_send(generation) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            _ => false,
        };
        if sent {
            state.in_flight = Some((generation, Instant::now() + state.options.timeout));
        } else {
            let result =
                HealthCheckResult::failed(HealthStatus::Unhealthy, "timeout (previous check still running)");
            self.apply_hang(entry, state, result);
        }
        generation
    }

    fn apply_timeout(&self, entry: &Entry, state: &mut ProbeState) {
        state.in_flight = None;
        let mut result = HealthCheckResult::failed(HealthStatus::Unhealthy, "timeout");
        result.latency = state.options.timeout;
        self.apply_hang(entry, state, result);
        entry.finished.notify_all();
    }

    /// A hung probe is `unhealthy` at once (docs/spec.md §6): hysteresis smooths flapping answers, but a
    /// probe that does not answer at all is not one to wait another interval for. The counters still
    /// follow the hysteresis rules, so recovery takes `success_threshold` successes as usual.
    fn apply_hang(&self, entry: &Entry, state: &mut ProbeState, result: HealthCheckResult) {
        self.apply(entry, state, result);
        state.status = HealthStatus::Unhealthy;
    }

    /// Hysteresis: a failure makes the probe degraded, `failure_threshold` in a row unhealthy (never
    /// better than it was); `success_threshold` successes in a row make it healthy again.
    fn apply(&self, entry: &Entry, state: &mut ProbeState, result: HealthCheckResult) {
        let now = self.clock.unix_ms();
        state.checks_total += 1;
        state.latency = result.latency;
        state.details = result.details;
        self.metrics.checks.increment();
        self.checked_at.store(now, Ordering::Relaxed);
        if result.status == HealthStatus::Healthy {
            state.consecutive_successes += 1;
            state.consecutive_failures = 0;
            state.last_success = Some(now);
            // A healthy result may say why it is healthy ("idle"); most say nothing.
            state.reason = result.reason;
            if state.consecutive_successes >= self.success_threshold.load(Ordering::Relaxed) {
                state.status = HealthStatus::Healthy;
            }
        } else {
            self.metrics.failures.increment();
            state.consecutive_failures += 1;
            state.consecutive_successes = 0;
            state.last_failure = Some(now);
            state.reason = result.reason.or(Some(std::borrow::Cow::Borrowed(result.status.as_str())));
            let worst = if state.consecutive_failures >= self.failure_threshold.load(Ordering::Relaxed) {
                HealthStatus::Unhealthy
            } else {
                HealthStatus::Degraded
            };
            state.status = state.status.max(worst);
        }
        if state.status != HealthStatus::Healthy {
            tracing::debug!(probe = %entry.name, status = state.status.as_str(), reason = ?state.reason, "health check");
        }
    }

    fn overall(&self, probes: &[Arc<Entry>]) -> HealthStatus {
        probes
            .iter()
            .map(|e| {
                let state = e.lock();
                (state.options.critical, state.status)
            })
            .filter(|(critical, _)| *critical)
            .map(|(_, status)| status)
            .max()
            .unwrap_or(HealthStatus::Healthy)
    }

    fn refresh_overall(&self) {
        let status = self.overall(&self.snapshot());
        self.metrics.status.set(status as u8 as f64);
    }
}

/// The worker: run each requested check, measure it, and record it unless it already timed out.
fn work(inner: &Inner, entry: &Entry, requests: &Receiver<u64>) {
    while let Ok(generation) = requests.recv() {
        {
            let state = entry.lock();
            if state.retired || state.in_flight.is_none_or(|(g, _)| g != generation) {
                continue;
            }
            entry.busy.store(true, Ordering::Release);
        }
        let start = Instant::now();
        let mut result = catch_unwind(AssertUnwindSafe(|| entry.probe.check()))
            .unwrap_or_else(|_| HealthCheckResult::failed(HealthStatus::Unhealthy, "probe panicked"));
        if result.latency.is_zero() {
            result.latency = start.elapsed();
        }
        let mut state = entry.lock();
        if state.in_flight.is_some_and(|(g, _)| g == generation) {
            state.in_flight = None;
            inner.apply(entry, &mut state, result);
        }
        // Under the state lock, so `retire` and `check_named` waiting on `finished` see it.
        entry.busy.store(false, Ordering::Release);
        entry.finished.notify_all();
        drop(state);
        inner.refresh_overall();
    }
}

//! Injectable time: the engine's background work (telemetry windows, later breaker, health, tuner)
//! reads a [`Clock`], so tests advance time instead of sleeping.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + Debug {
    /// Monotonic time since the clock's origin.
    fn now(&self) -> Duration;
    /// Wall-clock time in milliseconds since the Unix epoch.
    fn unix_ms(&self) -> u64;
}

/// Shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose origin is now.
    pub fn new() -> Self {
        SystemClock { origin: Instant::now() }
    }

    /// A shared system clock.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn unix_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicU64,
    unix_origin_ms: u64,
}

impl ManualClock {
    /// A manual clock at time zero whose wall clock starts at `unix_origin_ms`.
    pub fn new(unix_origin_ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock { nanos: AtomicU64::new(0), unix_origin_ms })
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn unix_ms(&self) -> u64 {
        self.unix_origin_ms + self.now().as_millis() as u64
    }
}

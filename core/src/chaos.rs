//! Chaos injection (docs/spec.md §9): real faults inside the real spreading path, so the breaker, health
//! probes, tuner and alerts react to them. Always compiled; off costs one relaxed atomic load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::Tier;
use crate::spread::PhaseHook;

/// What to inject (docs/spec.md §15 chaos JSON). Every key is optional; unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosConfig {
    /// Latency added to each tier's work at every depth where that tier has frontier nodes, in ms.
    pub latency_ms: TierLatency,
    /// Uniform extra latency in [0, jitter_ms] added to each injected delay.
    pub jitter_ms: f64,
    /// Probability that a spread fails with an injected error.
    pub failure_rate: f64,
    /// Probability that a spread's activation is wiped (zero mass).
    pub zero_mass_rate: f64,
    /// Probability that a spread's OpenCL depth fails (the call falls back to the CPU).
    pub gpu_failure_rate: f64,
    /// RNG seed; `None` picks one from the clock.
    pub seed: Option<u64>,
}

/// Per-tier injected latency in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TierLatency {
    /// Hot tier.
    pub hot: f64,
    /// Warm tier.
    pub warm: f64,
    /// Cold tier.
    pub cold: f64,
}

impl ChaosConfig {
    /// Parse the §15 chaos JSON; `{}` is "no chaos".
    pub fn from_json(text: &str) -> Result<ChaosConfig> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::config("chaos", format!("malformed JSON: {e}")))?;
        ChaosConfig::from_value(value)
    }

    /// [`ChaosConfig::from_json`] from an already parsed JSON value. The document and
    /// `latency_ms` must be JSON objects: an array would fill fields by position.
    pub fn from_value(value: serde_json::Value) -> Result<ChaosConfig> {
        let fields = crate::error::expect_object(&value, "chaos")?;
        if let Some(latency) = fields.get("latency_ms") {
            crate::error::expect_object(latency, "chaos.latency_ms")?;
        }
        let config: ChaosConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            Error::config(crate::error::field_path("chaos", e.path()), e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        let ms = |field: &str, v: f64| {
            if (0.0..=60_000.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::config(format!("chaos.{field}"), format!("must be in [0, 60000] ms, got {v}")))
            }
        };
        ms("latency_ms.hot", self.latency_ms.hot)?;
        ms("latency_ms.warm", self.latency_ms.warm)?;
        ms("latency_ms.cold", self.latency_ms.cold)?;
        ms("jitter_ms", self.jitter_ms)?;
        for (field, rate) in [
            ("failure_rate", self.failure_rate),
            ("zero_mass_rate", self.zero_mass_rate),
            ("gpu_failure_rate", self.gpu_failure_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Error::config(
                    format!("chaos.{field}"),
                    format!("must be in [0, 1], got {rate}"),
                ));
            }
        }
        Ok(())
    }

    /// Whether this config injects anything.
    pub fn is_active(&self) -> bool {
        let l = self.latency_ms;
        l.hot > 0.0
            || l.warm > 0.0
            || l.cold > 0.0
            || self.failure_rate > 0.0
            || self.zero_mass_rate > 0.0
            || self.gpu_failure_rate > 0.0
    }

    fn tier_latency(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Hot => self.latency_ms.hot,
            Tier::Warm => self.latency_ms.warm,
            Tier::Cold => self.latency_ms.cold,
        }
    }
}

/// What the injector decided for one spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChaosVerdict {
    /// Fail the spread with an injected error.
    pub fail: bool,
    /// Wipe the spread's activation.
    pub zero_mass: bool,
    /// Fail the spread's OpenCL depth.
    pub gpu_fail: bool,
}

/// The engine's injector: set and cleared at run time from any thread.
#[derive(Debug, Default)]
pub struct ChaosInjector {
    enabled: AtomicBool,
    config: ArcSwapOption<ChaosConfig>,
    rng: AtomicU64,
    /// Serialises set/clear so `enabled` and `config` change together.
    writer: Mutex<()>,
    /// Injected delays wait on this, so clearing chaos (or dropping the engine) cuts them short.
    delay: (Mutex<()>, Condvar),
}

impl ChaosInjector {
    /// An injector that injects nothing.
    pub fn new() -> Self {
        ChaosInjector::default()
    }

    /// Start injecting `config` (validated); an inactive config clears.
    pub fn set(&self, config: ChaosConfig) -> Result<()> {
        config.validate()?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if !config.is_active() {
            self.enabled.store(false, Ordering::Release);
            self.config.store(None);
            return Ok(());
        }
        let seed = config.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        self.rng.store(seed, Ordering::Relaxed);
        tracing::warn!(chaos = %serde_json::to_string(&config).unwrap_or_default(), "chaos injection on");
        self.config.store(Some(std::sync::Arc::new(config)));
        self.enabled.store(true, Ordering::Release);
        self.delay.1.notify_all();
        Ok(())
    }

    /// Stop injecting.
    pub fn clear(&self) {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if self.enabled.swap(false, Ordering::AcqRel) {
            tracing::warn!("chaos injection off");
        }
        self.config.store(None);
        let _delays = self.delay.0.lock().unwrap_or_else(|p| p.into_inner());
        self.delay.1.notify_all();
    }

    /// The config being injected, if any.
    pub fn current(&self) -> Option<ChaosConfig> {
        self.config.load_full().map(|c| (*c).clone())
    }

    /// Whether anything is being injected (one relaxed load).
    #[inline]
    pub fn is_on(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Draw this spread's fate (call once per spread; off → nothing, after one relaxed load).
    #[inline]
    pub fn verdict(&self) -> ChaosVerdict {
        if !self.is_on() {
            return ChaosVerdict::default();
        }
        let config = self.config.load();
        let Some(config) = config.as_ref() else { return ChaosVerdict::default() };
        ChaosVerdict {
            fail: self.chance(config.failure_rate),
            zero_mass: self.chance(config.zero_mass_rate),
            gpu_fail: self.chance(config.gpu_failure_rate),
        }
    }

    fn chance(&self, rate: f64) -> bool {
        rate > 0.0 && self.unit() < rate
    }

    /// A uniform draw in [0, 1) from a lock-free SplitMix64 stream.
    fn unit(&self) -> f64 {
        let mut z =
            self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl PhaseHook for ChaosInjector {
    /// Inject the tier's latency (plus jitter) before its work, inside its timed phase.
    fn before_tier(&self, tier: Tier) {
        if !self.is_on() {
            return;
        }
        let (mut ms, jitter) = {
            let config = self.config.load();
            let Some(config) = config.as_ref() else { return };
            (config.tier_latency(tier), config.jitter_ms)
        };
        if ms <= 0.0 {
            return;
        }
        if jitter > 0.0 {
            ms += jitter * self.unit();
        }
        // A real delay of the calling thread, cut short when chaos is cleared or replaced.
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(ms / 1000.0);
        let mut guard = self.delay.0.lock().unwrap_or_else(|p| p.into_inner());
        while self.is_on() {
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            guard = self.delay.1.wait_timeout(guard, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_honoured_and_seeded() {
        let chaos = ChaosInjector::new();
        assert_eq!(chaos.verdict(), ChaosVerdict::default());
        chaos.set(ChaosConfig { failure_rate: 0.25, seed: Some(7), ..Default::default() }).unwrap();
        let fails = (0..40_000).filter(|_| chaos.verdict().fail).count();
        assert!((9_000..11_000).contains(&fails), "{fails}");
        chaos.clear();
        assert!(!chaos.is_on());
        assert!((0..1000).all(|_| !chaos.verdict().fail));
    }

    #[test]
    fn bad_chaos_json_names_the_field() {
        for (json, field) in [
            (r#"{"failure_rate": 2}"#, "chaos.failure_rate"),
            (r#"{"latency_ms": {"cold": -1}}"#, "chaos.latency_ms.cold"),
            (r#"{"latency_ms": {"tepid": 1}}"#, "chaos.latency_ms"),
            (r#"{"bogus": 1}"#, "chaos"),
            (r#"{"seed": "x"}"#, "chaos.seed"),
            (r#"[{"hot": 5}, 0, 1.0]"#, "chaos: must be a JSON object, got an array"),
            ("[]", "chaos: must be a JSON object"),
            (r#"{"latency_ms": [1, 2, 3]}"#, "chaos.latency_ms: must be a JSON object, got an array"),
        ] {
            let e = ChaosConfig::from_json(json).unwrap_err();
            assert!(e.to_string().contains(field), "{json}: {e}");
            assert!(!e.to_string().contains(".."), "{json}: {e}");
        }
        assert!(!ChaosConfig::from_json("{}").unwrap().is_active());
    }
}

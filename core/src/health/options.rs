//! [`ProbeOptions`]: when and how long a probe runs, and whether it counts toward the overall status.

use std::time::Duration;

use serde_json::Value;

use crate::config::HealthConfig;
use crate::error::{Error, Result};

/// Per-probe scheduling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeOptions {
    /// Time between checks.
    pub interval: Duration,
    /// A check running longer is reported `unhealthy`, reason `timeout`.
    pub timeout: Duration,
    /// Whether the probe counts toward the overall status.
    pub critical: bool,
}

impl ProbeOptions {
    /// The configured defaults, critical.
    pub fn from_config(config: &HealthConfig) -> Self {
        ProbeOptions {
            interval: Duration::from_millis(config.interval_ms),
            timeout: Duration::from_millis(config.timeout_ms),
            critical: true,
        }
    }

    /// Defaults overridden by `{"interval_ms", "timeout_ms", "critical"}` (any subset).
    pub fn from_json(defaults: ProbeOptions, text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::config("probe options", format!("malformed JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(Error::config("probe options", "must be a JSON object"));
        };
        let mut options = defaults;
        for (key, value) in map {
            let ms = |v: &Value| {
                v.as_u64().filter(|&ms| (1..=86_400_000).contains(&ms)).map(Duration::from_millis).ok_or_else(
                    || Error::config(key.clone(), format!("must be an integer in 1..=86400000, got {v}")),
                )
            };
            match key.as_str() {
                "interval_ms" => options.interval = ms(&value)?,
                "timeout_ms" => options.timeout = ms(&value)?,
                "critical" => {
                    options.critical = value
                        .as_bool()
                        .ok_or_else(|| Error::config("critical", format!("must be a boolean, got {value}")))?
                }
                other => {
                    return Err(Error::config(
                        other,
                        "unknown key (expected interval_ms, timeout_ms, critical)",
                    ));
                }
            }
        }
        Ok(options)
    }
}

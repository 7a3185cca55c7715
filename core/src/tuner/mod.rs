//! [`SpreadingAutoTuner`] (docs/spec.md §8): once per interval it reads the engine's cumulative telemetry,
//! updates EWMAs, and either judges its last change (keeping it, or rolling it back and backing off),
//! applies the best recommendation whose predicted improvement exceeds the threshold, walks one
//! guarded step back toward the operator's base config when pressure is gone, or explains why it did
//! nothing. Every change goes to a bounded audit log.

pub mod model;

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::{AutotuneConfig, SpreadingConfig};
use crate::graph::Tier;
pub use model::{Candidate, Ewma, IntervalStats, Knobs, Objective, Pins};
use model::{Context, Sample};

/// Version tag of the audit log JSON.
pub const AUDIT_SCHEMA: &str = "axonal.audit.v1";
/// The longest the tuner backs off to.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// An interval with fewer recalls than this is not judged.
pub const MIN_RECALLS: u64 = 20;
/// An observed change this much worse than before (relative) counts as worse.
pub const WORSE_TOLERANCE: f64 = 0.02;

/// The knobs as they appear in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KnobValues {
    /// `spreading.max_depth`.
    pub max_depth: u32,
    /// `spreading.batch_size`.
    pub batch_size: u32,
    /// `spreading.tier_timeouts_ms`.
    pub tier_timeouts_ms: TierValues,
}

/// Per-tier values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierValues {
    /// Hot.
    pub hot: f64,
    /// Warm.
    pub warm: f64,
    /// Cold.
    pub cold: f64,
}

/// One audit log entry (docs/spec.md §8).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When, Unix milliseconds.
    pub at: u64,
    /// `apply`, `rollback` or `walk_back`.
    pub action: &'static str,
    /// The knobs before.
    pub old: KnobValues,
    /// The knobs after.
    pub new: KnobValues,
    /// Why, with the measured numbers.
    pub reason: String,
    /// Predicted relative improvement.
    pub predicted: f64,
    /// Relative improvement observed over the next interval (`None` until measured).
    pub observed: Option<f64>,
}

/// What one step decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A change was applied (a recommendation or a walk back).
    Applied(AuditEntry),
    /// The last change made things worse and was undone.
    RolledBack(AuditEntry),
    /// Nothing changed, and why.
    NoChange(String),
}

impl Decision {
    /// The decision as reported: `{"action": "applied"|"rolled_back"|"no_change", "reason", "entry"}`.
    pub fn view(&self) -> DecisionView<'_> {
        match self {
            Decision::Applied(e) => DecisionView { action: "applied", reason: &e.reason, entry: Some(e) },
            Decision::RolledBack(e) => {
                DecisionView { action: "rolled_back", reason: &e.reason, entry: Some(e) }
            }
            Decision::NoChange(reason) => DecisionView { action: "no_change", reason, entry: None },
        }
    }

    /// [`Decision::view`] as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or(Value::Null)
    }
}

/// A decision as reported.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DecisionView<'a> {
    /// `applied`, `rolled_back` or `no_change`.
    pub action: &'static str,
    /// Why, with the measured numbers.
    pub reason: &'a str,
    /// The audit entry of a change.
    pub entry: Option<&'a AuditEntry>,
}

impl Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.view().serialize(serializer)
    }
}

/// The audit log (docs/spec.md §8) as reported.
#[derive(Debug, Clone, Serialize)]
pub struct AuditLog {
    /// [`AUDIT_SCHEMA`].
    pub schema: &'static str,
    /// Entries kept.
    pub capacity: usize,
    /// Config paths of the knobs the operator pinned outside their guardrails.
    pub pinned: Vec<&'static str>,
    /// The entries, oldest first.
    pub entries: Vec<AuditEntry>,
}

/// The tuner's state as reported (the config view's `autotune.state`).
#[derive(Debug, Clone, Serialize)]
pub struct TunerState {
    /// Whether the tuner may change the config.
    pub enabled: bool,
    /// The current interval, backoff included.
    pub interval_ms: u64,
    /// Doublings of the interval after rollbacks.
    pub backoff: u32,
    /// The knobs in force.
    pub knobs: KnobValues,
    /// The operator's knobs.
    pub base: KnobValues,
    /// Knobs the tuner leaves alone.
    pub pinned: Vec<&'static str>,
    /// The smoothed statistics.
    pub ewma: Ewma,
    /// A change waiting to be judged.
    pub pending: Option<PendingView>,
    /// The last step's decision.
    pub last_decision: Option<Decision>,
}

/// A change waiting for the next interval's judgement.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PendingView {
    /// What the change aims at.
    pub objective: Objective,
    /// The objective's value before the change.
    pub before: f64,
    /// The predicted relative improvement.
    pub predicted: f64,
}

/// A change waiting for the next interval to judge it.
#[derive(Debug, Clone)]
struct Pending {
    old: Knobs,
    objective: Objective,
    /// The objective's value in the interval before the change.
    before: f64,
    predicted: f64,
    /// Audit sequence number of the change.
    sequence: u64,
}

/// The operator's part of the config the tuner works from: its knobs' base values and the tuner's
/// own section.
#[derive(Debug, Clone, PartialEq)]
struct Base {
    spreading: SpreadingConfig,
    autotune: AutotuneConfig,
}

/// The tuner's state (behind the engine's tuner mutex).
#[derive(Debug, Clone)]
pub struct SpreadingAutoTuner {
    base: Base,
    knobs: Knobs,
    ewma: Ewma,
    last: Option<Sample>,
    pending: Option<Pending>,
    backoff: u32,
    /// After a walk back was undone: walk back again only once p95 is below this.
    walk_back_below: Option<f64>,
    audit: VecDeque<(u64, AuditEntry)>,
    sequence: u64,
    last_decision: Option<Decision>,
    /// Knob sets rolled back recently, with the step they were rejected at: not retried for
    /// `REJECT_STEPS` steps, so a rejected change cannot come straight back.
    rejected: VecDeque<(Knobs, u64)>,
    steps: u64,
}

/// Steps a rolled-back knob set stays rejected.
const REJECT_STEPS: u64 = 8;

/// What a step knows besides the statistics.
#[derive(Debug, Clone)]
pub struct StepEnv<'a> {
    /// The live `spreading` section (the latency budget).
    pub spreading: &'a SpreadingConfig,
    /// The live `autotune` section (guardrails, threshold).
    pub autotune: &'a AutotuneConfig,
    /// Now, Unix milliseconds (audit timestamps).
    pub now_unix_ms: u64,
    /// Spreading pool threads.
    pub threads: usize,
    /// Nodes in the graph.
    pub nodes: usize,
    /// Measured cost of one parallel task, seconds.
    pub task_overhead: f64,
    /// Destination nodes per unit of batch size.
    pub nodes_per_batch_unit: usize,
}

impl SpreadingAutoTuner {
    /// A tuner whose base is the operator's `spreading` and `autotune` sections.
    pub fn new(spreading: &SpreadingConfig, autotune: &AutotuneConfig) -> Self {
        SpreadingAutoTuner {
            base: Base { spreading: spreading.clone(), autotune: autotune.clone() },
            knobs: base_knobs(spreading),
            ewma: Ewma::default(),
            last: None,
            pending: None,
            backoff: 0,
            walk_back_below: None,
            audit: VecDeque::new(),
            sequence: 0,
            last_decision: None,
            rejected: VecDeque::new(),
            steps: 0,
        }
    }

    /// Record the operator's enable switch in the base; enabling starts the statistics afresh, so
    /// the first judgement never spans the time the tuner was off.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.base.autotune.enabled = enabled;
        if enabled {
            self.last = None;
            self.pending = None;
        }
    }

    /// The operator changed the config: it is the new base; the tuner's adjustments, pending
    /// judgement, backoff and statistics start over.
    pub fn operator_changed(&mut self, spreading: &SpreadingConfig, autotune: &AutotuneConfig) {
        let audit = std::mem::take(&mut self.audit);
        let sequence = self.sequence;
        *self = SpreadingAutoTuner::new(spreading, autotune);
        self.audit = audit;
        self.sequence = sequence;
        self.trim_audit();
    }

    /// The knobs in force.
    pub fn knobs(&self) -> Knobs {
        self.knobs
    }

    /// The current interval: the configured one doubled per backoff, capped at an hour.
    pub fn interval(&self, configured: Duration) -> Duration {
        configured.saturating_mul(1u32 << self.backoff.min(16)).min(MAX_INTERVAL.max(configured))
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.audit.iter().map(|(_, e)| e.clone()).collect()
    }

    /// The tuner's state for the config endpoint and the snapshot.
    pub fn state(&self, configured: Duration, enabled: bool) -> TunerState {
        TunerState {
            enabled,
            interval_ms: self.interval(configured).as_millis() as u64,
            backoff: self.backoff,
            knobs: self.values(self.knobs),
            base: self.values(base_knobs(&self.base.spreading)),
            pinned: self.pinned(),
            ewma: self.ewma,
            pending: self.pending.as_ref().map(|p| PendingView {
                objective: p.objective,
                before: p.before,
                predicted: p.predicted,
            }),
            last_decision: self.last_decision.clone(),
        }
    }

    /// The audit log with its capacity and the pinned knobs.
    pub fn audit_log(&self, capacity: usize) -> AuditLog {
        AuditLog { schema: AUDIT_SCHEMA, capacity, pinned: self.pinned(), entries: self.audit() }
    }

    /// Config paths of the knobs the operator pinned outside their guardrails.
    pub fn pinned(&self) -> Vec<&'static str> {
        self.base
            .autotune
            .guardrails
            .pinned(&self.base.spreading)
            .into_iter()
            .map(crate::config::TunedKnob::as_str)
            .collect()
    }

    fn pins(&self) -> Pins {
        Pins::of(&self.base.spreading, &self.base.autotune.guardrails)
    }

    /// The last applied change, if any.
    pub fn last_change(&self) -> Option<AuditEntry> {
        self.audit.back().map(|(_, e)| e.clone())
    }

    /// The `spreading` section to run with `knobs`: the operator's, with tuned depth, batch and
    /// timeouts (the engine puts it into the live config).
    pub fn config_for(&self, knobs: Knobs) -> SpreadingConfig {
        let mut s = self.base.spreading.clone();
        s.max_depth = knobs.max_depth;
        s.batch_size = knobs.batch_size;
        let base = &self.base.spreading.tier_timeouts_ms;
        s.tier_timeouts_ms.hot = base.hot * knobs.timeout_multiplier[0];
        s.tier_timeouts_ms.warm = base.warm * knobs.timeout_multiplier[1];
        s.tier_timeouts_ms.cold = base.cold * knobs.timeout_multiplier[2];
        s
    }

    /// One step on the cumulative `sample`. Returns the decision and, when the knobs changed, the
    /// config to apply.
    pub(crate) fn step(&mut self, sample: Sample, env: &StepEnv<'_>) -> (Decision, Option<SpreadingConfig>) {
        let (decision, config) = match self.last.replace(sample.clone()) {
            None => (Decision::NoChange("collecting a baseline interval".into()), None),
            Some(last) => self.step_on_stats(&IntervalStats::between(&last, &sample), env),
        };
        self.last_decision = Some(decision.clone());
        (decision, config)
    }

    /// One step on an interval's statistics (the engine computes them from cumulative telemetry;
    /// property tests feed them directly).
    #[doc(hidden)]
    pub fn step_on_stats(
        &mut self,
        stats: &IntervalStats,
        env: &StepEnv<'_>,
    ) -> (Decision, Option<SpreadingConfig>) {
        self.steps += 1;
        let steps = self.steps;
        self.rejected.retain(|(_, at)| steps - at < REJECT_STEPS);
        if stats.recalls < MIN_RECALLS {
            return (
                Decision::NoChange(format!(
                    "only {} recalls in the interval (need {MIN_RECALLS})",
                    stats.recalls
                )),
                None,
            );
        }
        self.ewma.update(stats, self.knobs.max_depth);
        let budget = env.spreading.latency_budget().as_secs_f64();
        let guardrails = &env.autotune.guardrails;

        if let Some(pending) = self.pending.take() {
            return self.judge(pending, stats, budget, guardrails, env.now_unix_ms);
        }

        let context = Context {
            knobs: self.knobs,
            base_timeouts: Tier::ALL.map(|t| self.base.spreading.tier_timeouts_ms.get(t) / 1000.0),
            guardrails,
            pins: self.pins(),
            budget,
            threads: env.threads,
            nodes: env.nodes,
            task_overhead: env.task_overhead,
            nodes_per_batch_unit: env.nodes_per_batch_unit,
        };
        if model::pressure(&self.ewma, budget) {
            let mut candidates = model::recommend(&self.ewma, stats, &context);
            candidates.retain(|c| !self.rejected.iter().any(|(knobs, _)| *knobs == c.knobs));
            candidates.sort_by(|a, b| b.predicted.total_cmp(&a.predicted));
            let threshold = env.autotune.min_improvement;
            return match candidates.into_iter().next() {
                Some(best) if best.predicted > threshold => {
                    let before = objective_value(best.objective, stats);
                    let (knobs, reason) = (best.knobs, best.reason);
                    self.apply(
                        guardrails,
                        knobs,
                        "apply",
                        reason,
                        best.predicted,
                        best.objective,
                        before,
                        env.now_unix_ms,
                    )
                }
                Some(best) => (
                    Decision::NoChange(format!(
                        "under pressure, but the best change predicts {:.1} % (threshold {:.0} %): {}",
                        best.predicted * 100.0,
                        threshold * 100.0,
                        best.reason
                    )),
                    None,
                ),
                None => (
                    Decision::NoChange(
                        "under pressure, but no change applies: the knobs the measurements point at are at \
                         their guardrails (or no parallel pull ran for the batch size to matter)"
                            .into(),
                    ),
                    None,
                ),
            };
        }
        let target = model::guard(base_knobs(&self.base.spreading), guardrails, self.pins());
        let headroom =
            self.ewma.p95 < 0.5 * budget && self.walk_back_below.is_none_or(|limit| self.ewma.p95 < limit);
        match model::step_toward(self.knobs, target) {
            Some((knobs, what)) if headroom => {
                let reason = format!(
                    "pressure gone (p95 {:.1} ms, under half the {:.1} ms budget): walking back toward the operator's base, {what}",
                    self.ewma.p95 * 1e3,
                    budget * 1e3
                );
                self.apply(
                    guardrails,
                    knobs,
                    "walk_back",
                    reason,
                    0.0,
                    Objective::NoPressure,
                    stats.p95,
                    env.now_unix_ms,
                )
            }
            Some(_) => (
                Decision::NoChange("no pressure; not enough headroom to walk back toward base yet".into()),
                None,
            ),
            None => (Decision::NoChange("no pressure; running the operator's base config".into()), None),
        }
    }

    /// Judge the last change over this interval: keep it (recording what was observed) or undo it.
    fn judge(
        &mut self,
        pending: Pending,
        stats: &IntervalStats,
        budget: f64,
        guardrails: &crate::config::Guardrails,
        now: u64,
    ) -> (Decision, Option<SpreadingConfig>) {
        let after = objective_value(pending.objective, stats);
        let observed = if pending.before > 0.0 { (pending.before - after) / pending.before } else { 0.0 };
        let pressure_returned = stats.p95 > budget
            || stats.violation_rate > model::PRESSURE_RATE
            || stats.truncation_rate.iter().any(|&r| r > model::PRESSURE_RATE);
        let worse = match pending.objective {
            Objective::Latency => observed < -WORSE_TOLERANCE,
            Objective::Truncation(_) => observed < -WORSE_TOLERANCE || stats.p95 > budget,
            Objective::NoPressure => pressure_returned,
        };
        if let Some((_, entry)) = self.audit.iter_mut().find(|(sequence, _)| *sequence == pending.sequence) {
            entry.observed = Some(observed);
        }
        if !worse {
            self.backoff = 0;
            return (
                Decision::NoChange(format!(
                    "kept the last change: predicted {:.1} %, observed {:.1} %",
                    pending.predicted * 100.0,
                    observed * 100.0
                )),
                None,
            );
        }
        if pending.objective == Objective::NoPressure {
            self.walk_back_below = Some(stats.p95 * 0.5);
        }
        self.backoff += 1;
        let reason = format!(
            "rollback: the last change predicted {:.1} % but observed {:.1} %{}; backing off to every {} intervals",
            pending.predicted * 100.0,
            observed * 100.0,
            if pressure_returned { " and pressure returned" } else { "" },
            1u32 << self.backoff.min(16)
        );
        let old = self.knobs;
        self.rejected.push_back((old, self.steps));
        self.knobs = model::guard(pending.old, guardrails, self.pins());
        let entry = self.record("rollback", old, self.knobs, reason, pending.predicted, Some(observed), now);
        (Decision::RolledBack(entry), Some(self.config_for(self.knobs)))
    }

    /// Apply `knobs` (guarded: the tuner never writes outside the guardrails, nor a pinned knob).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        guardrails: &crate::config::Guardrails,
        knobs: Knobs,
        action: &'static str,
        reason: String,
        predicted: f64,
        objective: Objective,
        before: f64,
        now: u64,
    ) -> (Decision, Option<SpreadingConfig>) {
        let old = self.knobs;
        self.knobs = model::guard(knobs, guardrails, self.pins());
        let entry = self.record(action, old, self.knobs, reason, predicted, None, now);
        self.pending = Some(Pending { old, objective, before, predicted, sequence: self.sequence });
        (Decision::Applied(entry), Some(self.config_for(self.knobs)))
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        action: &'static str,
        old: Knobs,
        new: Knobs,
        reason: String,
        predicted: f64,
        observed: Option<f64>,
        at: u64,
    ) -> AuditEntry {
        let entry = AuditEntry {
            at,
            action,
            old: self.values(old),
            new: self.values(new),
            reason,
            predicted,
            observed,
        };
        self.sequence += 1;
        self.audit.push_back((self.sequence, entry.clone()));
        self.trim_audit();
        entry
    }

    /// Drop the oldest entries beyond `autotune.audit_capacity` (also after the operator lowers it).
    fn trim_audit(&mut self) {
        let capacity = self.base.autotune.audit_capacity.max(1);
        while self.audit.len() > capacity {
            self.audit.pop_front();
        }
    }

    fn values(&self, knobs: Knobs) -> KnobValues {
        let t = &self.config_for(knobs).tier_timeouts_ms;
        KnobValues {
            max_depth: knobs.max_depth,
            batch_size: knobs.batch_size,
            tier_timeouts_ms: TierValues { hot: t.hot, warm: t.warm, cold: t.cold },
        }
    }
}

/// The operator's knobs: the config's depth and batch, multipliers 1.
fn base_knobs(spreading: &SpreadingConfig) -> Knobs {
    Knobs { max_depth: spreading.max_depth, batch_size: spreading.batch_size, timeout_multiplier: [1.0; 3] }
}

/// The value of an objective in an interval (lower is better).
fn objective_value(objective: Objective, stats: &IntervalStats) -> f64 {
    match objective {
        Objective::Latency | Objective::NoPressure => stats.p95,
        Objective::Truncation(t) => stats.truncation_rate[t],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_the_interval_up_to_an_hour() {
        let config = crate::config::EngineConfig::default();
        let mut tuner = SpreadingAutoTuner::new(&config.spreading, &config.autotune);
        let five_minutes = Duration::from_secs(300);
        let expected = [300, 600, 1200, 2400, 3600, 3600];
        for (backoff, seconds) in expected.into_iter().enumerate() {
            tuner.backoff = backoff as u32;
            assert_eq!(tuner.interval(five_minutes), Duration::from_secs(seconds));
        }
        tuner.backoff = 40;
        assert_eq!(tuner.interval(five_minutes), MAX_INTERVAL);
    }
}

//! Routing and handlers of the HTTP surface. Health endpoints answer from the cached report (they
//! never run a probe); endpoints that lock or compute run on the blocking helpers.

use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use super::HttpOptions;
use crate::breaker::BreakerOverride;
use crate::chaos::ChaosConfig;
use crate::engine::Engine;
use crate::error::Error;
use crate::health::{HealthStatus, ProbeReport};

/// Schema of `GET /health/spreading`.
pub const SPREADING_HEALTH_SCHEMA: &str = "axonal.health.spreading.v1";

const HEALTH_SPREADING: &str = "/health/spreading";
const SYSTEM_HEALTH: &str = "/api/v1/system/health";
const SPREADING_METRICS: &str = "/api/v1/system/metrics/spreading";
const SPREADING_CONFIG: &str = "/api/v1/system/spreading/config";
const METRICS: &str = "/metrics";

type Reply = Response<Full<Bytes>>;

/// What every handler shares.
pub(super) struct State {
    engine: Weak<Engine>,
    admin_token: Option<String>,
    max_body_bytes: usize,
    request_timeout: Duration,
}

impl State {
    pub(super) fn new(engine: Weak<Engine>, options: &HttpOptions) -> State {
        State {
            engine,
            admin_token: options.admin_token.clone(),
            max_body_bytes: options.max_body_bytes,
            request_timeout: Duration::from_millis(options.request_timeout_ms),
        }
    }
}

/// Answer one request. Never fails: every problem becomes a JSON error response.
pub(super) async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Reply, Infallible> {
    // Reading the body has its own deadline (408); this one bounds the handler's work as well.
    let deadline = state.request_timeout * 2;
    Ok(tokio::time::timeout(deadline, route(state, request)).await.unwrap_or_else(|_| {
        error(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request did not complete within its deadline")
    }))
}

async fn route(state: Arc<State>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path();
    let allowed = match path {
        HEALTH_SPREADING | SYSTEM_HEALTH | SPREADING_METRICS | METRICS => "GET, HEAD",
        SPREADING_CONFIG => "GET, HEAD, PUT",
        _ => return error(StatusCode::NOT_FOUND, "not_found", &format!("no endpoint {path}")),
    };
    let method = request.method().clone();
    if !allowed.split(", ").any(|m| m == method.as_str()) {
        let mut reply = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{method} is not allowed on {path} (allowed: {allowed})"),
        );
        reply.headers_mut().insert(ALLOW, HeaderValue::from_static(allowed));
        return reply;
    }
    let Some(engine) = state.engine.upgrade() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "engine_closed", "the engine has been shut down");
    };
    // HEAD is answered as GET; hyper sends the headers without the body.
    let method = if method == Method::HEAD { Method::GET } else { method };
    match (method, path) {
        (Method::GET, HEALTH_SPREADING) => spreading_health(&engine),
        (Method::GET, SYSTEM_HEALTH) => json_reply(StatusCode::OK, &engine.health_report()),
        (Method::GET, SPREADING_METRICS) => {
            blocking(engine, |e| json_reply(StatusCode::OK, &e.spreading_section())).await
        }
        (Method::GET, METRICS) => blocking(engine, |e| prometheus_reply(e.prometheus_text())).await,
        (Method::GET, _) => blocking(engine, |e| json_reply(StatusCode::OK, &e.config_view())).await,
        _ => admin_write(&state, engine, request).await,
    }
}

/// The probes `GET /health/spreading` reports: the synthetic spread and the live recalls.
const SPREADING_PROBES: [&str; 2] = ["spreading", "spreading_live"];

/// `GET /health/spreading`'s body.
#[derive(Serialize)]
struct SpreadingHealth<'a> {
    schema: &'static str,
    /// The worse of the spreading probes.
    status: HealthStatus,
    checked_at: Option<u64>,
    latency_budget_ms: f64,
    /// The synthetic probe (schema v1's field).
    probe: &'a ProbeReport,
    probes: std::collections::BTreeMap<&'static str, &'a ProbeReport>,
}

/// `GET /health/spreading`: the spreading probes' cached state; 503 when either is unhealthy.
fn spreading_health(engine: &Engine) -> Reply {
    let report = engine.health_report();
    let Some(probe) = report.probes.get("spreading") else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no_probe", "the spreading probe is not registered");
    };
    let probes: std::collections::BTreeMap<_, _> =
        SPREADING_PROBES.iter().filter_map(|&name| report.probes.get(name).map(|p| (name, p))).collect();
    let status = probes.values().map(|p| p.status).max().unwrap_or(HealthStatus::Healthy);
    let code =
        if status == HealthStatus::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = SpreadingHealth {
        schema: SPREADING_HEALTH_SCHEMA,
        status,
        checked_at: report.checked_at,
        latency_budget_ms: probe.budget_ms,
        probe,
        probes,
    };
    json_reply(code, &body)
}

/// A validated admin write: everything is checked before anything applies.
struct AdminWrite {
    config: Option<Value>,
    breaker_override: Option<BreakerOverride>,
    autotune_enabled: Option<bool>,
    /// `Some(None)`: clear chaos.
    chaos: Option<Option<ChaosConfig>>,
}

/// `PUT /api/v1/system/spreading/config` with `{"config", "breaker_override", "autotune_enabled",
/// "chaos"}` (each optional; `"chaos": null` or `{}` clears).
async fn admin_write(state: &State, engine: Arc<Engine>, request: Request<Incoming>) -> Reply {
    if let Some(reply) = authorize(state, &request) {
        return reply;
    }
    if let Some(kind) = request.headers().get(CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("");
        if !kind.trim_start().to_ascii_lowercase().starts_with("application/json") {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &format!("content-type {kind:?}: send application/json"),
            );
        }
    }
    let read = tokio::time::timeout(
        state.request_timeout,
        Limited::new(request.into_body(), state.max_body_bytes).collect(),
    );
    let Ok(read) = read.await else {
        return error(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the body did not arrive in time");
    };
    let body = match read {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let message = format!("request body exceeds {} bytes", state.max_body_bytes);
            return error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message);
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &format!("reading the body: {e}")),
    };
    let write = match parse_admin_write(&engine, &body) {
        Ok(write) => write,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", &e.to_string()),
    };
    blocking(engine, move |e| match apply_admin_write(e, write) {
        Ok(applied) => json_reply(StatusCode::OK, &WriteAnswer { applied, current: e.config_view() }),
        Err(err) => error(StatusCode::BAD_REQUEST, "invalid", &err.to_string()),
    })
    .await
}

/// 403 unless the request carries the configured bearer token.
fn authorize(state: &State, request: &Request<Incoming>) -> Option<Reply> {
    let Some(expected) = &state.admin_token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "admin writes are disabled: the server was started without an admin token",
        ));
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")) // schemes are case-insensitive
        .map_or("", |(_, token)| token.trim());
    if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        None
    } else {
        Some(error(StatusCode::FORBIDDEN, "forbidden", "missing or wrong bearer token"))
    }
}

/// Compare without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_admin_write(engine: &Engine, body: &[u8]) -> Result<AdminWrite, Error> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::config("(body)", format!("malformed JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(Error::config("(body)", "expected a JSON object"));
    };
    if fields.is_empty() {
        return Err(Error::config(
            "(body)",
            "empty write: send one or more of config, breaker_override, autotune_enabled, chaos",
        ));
    }
    let mut write = AdminWrite { config: None, breaker_override: None, autotune_enabled: None, chaos: None };
    for (key, value) in fields {
        match key.as_str() {
            "config" => {
                crate::error::expect_object(&value, "config")?;
                engine.config().patched(&value)?; // validate now; apply later
                write.config = Some(value);
            }
            "breaker_override" => {
                let mode =
                    value.as_str().ok_or_else(|| Error::config("breaker_override", "expected a string"))?;
                write.breaker_override = Some(BreakerOverride::parse(mode)?);
            }
            "autotune_enabled" => {
                let enabled = value
                    .as_bool()
                    .ok_or_else(|| Error::config("autotune_enabled", "expected true or false"))?;
                write.autotune_enabled = Some(enabled);
            }
            "chaos" => {
                let chaos = if value.is_null() { None } else { Some(ChaosConfig::from_value(value)?) };
                write.chaos = Some(chaos.filter(ChaosConfig::is_active));
            }
            other => {
                return Err(Error::config(
                    other,
                    "unknown key (expected config, breaker_override, autotune_enabled, chaos)",
                ));
            }
        }
    }
    Ok(write)
}

/// What an admin write applied (each key present when the write named it).
#[derive(Debug, Default, Serialize)]
struct Applied {
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<crate::config::EngineConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    autotune_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    breaker_override: Option<BreakerOverride>,
    /// `Some(None)`: chaos cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    chaos: Option<Option<ChaosConfig>>,
}

/// The answer to an admin write.
#[derive(Serialize)]
struct WriteAnswer {
    applied: Applied,
    current: crate::engine::ConfigView,
}

fn apply_admin_write(engine: &Engine, write: AdminWrite) -> Result<Applied, Error> {
    let mut applied = Applied::default();
    if let Some(patch) = write.config {
        applied.config = Some(engine.update_config(&patch)?);
    }
    if let Some(enabled) = write.autotune_enabled {
        engine.set_autotune_enabled(enabled);
        applied.autotune_enabled = Some(enabled);
    }
    if let Some(mode) = write.breaker_override {
        engine.set_breaker_override(mode);
        applied.breaker_override = Some(mode);
    }
    if let Some(chaos) = write.chaos {
        match &chaos {
            Some(config) => engine.set_chaos(config.clone())?,
            None => engine.clear_chaos(),
        }
        applied.chaos = Some(chaos);
    }
    tracing::info!(applied = %serde_json::to_string(&applied).unwrap_or_default(), "http: admin write");
    Ok(applied)
}

/// Run `work` on a blocking helper thread (it may take a lock or a millisecond).
async fn blocking(engine: Arc<Engine>, work: impl FnOnce(&Engine) -> Reply + Send + 'static) -> Reply {
    tokio::task::spawn_blocking(move || work(&engine)).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "http: handler failed");
        error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the handler failed; see the log")
    })
}

fn json_reply(status: StatusCode, body: &impl Serialize) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut reply = Response::new(Full::new(Bytes::from(bytes)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

fn prometheus_reply(text: String) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(text)));
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    reply
}

/// A JSON error: `{"error": code, "message": detail}`.
fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    json_reply(status, &json!({"error": code, "message": message}))
}

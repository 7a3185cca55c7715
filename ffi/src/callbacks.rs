//! Host callbacks: health probes run by the engine's probe workers, and breaker transition
//! callbacks run by its dispatcher thread. Ownership of `userdata` passes to the library at
//! registration — also when registration fails — and `userdata_free` (if not NULL) runs exactly once:
//! after unregistration, at engine free, or before a failed registration returns.

use std::borrow::Cow;
use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use axonal_core::health::ProbeOptions;
use axonal_core::{HealthCheckResult, HealthProbe, HealthStatus};

use crate::engine::{axonal_engine, engine_ref};
use crate::error::*;

/// A probe callback: returns 0 healthy, 1 degraded, 2 unhealthy, and may write a NUL-terminated
/// reason into `reason_buf` (`reason_len` bytes). Runs on the probe's worker thread, one check at a
/// time, and may call back into the engine (but must not free it).
pub type axonal_probe_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, reason_buf: *mut c_char, reason_len: usize) -> u32>;

/// A breaker transition callback: receives the event JSON (docs/spec.md §15; NUL-terminated, `len` bytes
/// without the NUL, valid only during the call). Runs on the engine's dispatcher thread, in
/// transition order, one at a time, and may call back into the engine.
pub type axonal_transition_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event_json: *const c_char, len: usize)>;

/// `userdata_free`.
pub type axonal_userdata_free_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// Host userdata: freed exactly once, when the last owner drops it.
struct Userdata {
    ptr: *mut c_void,
    free: axonal_userdata_free_fn,
}

// The host promises (docs/c-api.md) that userdata may be used from the library's threads.
unsafe impl Send for Userdata {}
unsafe impl Sync for Userdata {}

impl Userdata {
    /// The pointer (a method, so closures capture the whole `Send` owner, not the raw field).
    fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for Userdata {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            unsafe { free(self.ptr) };
        }
    }
}

const REASON_CAPACITY: usize = 256;

struct CProbe {
    name: String,
    check: unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> u32,
    userdata: Userdata,
}

impl HealthProbe for CProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> HealthCheckResult {
        let mut reason = [0 as c_char; REASON_CAPACITY];
        let verdict = unsafe { (self.check)(self.userdata.ptr(), reason.as_mut_ptr(), REASON_CAPACITY) };
        reason[REASON_CAPACITY - 1] = 0;
        let text = unsafe { std::ffi::CStr::from_ptr(reason.as_ptr()) }.to_string_lossy().into_owned();
        match HealthStatus::from_index(verdict) {
            Some(HealthStatus::Healthy) => HealthCheckResult::healthy(),
            Some(status) => {
                let reason = if text.is_empty() { Cow::Borrowed(status.as_str()) } else { Cow::Owned(text) };
                HealthCheckResult::failed(status, reason)
            }
            None => HealthCheckResult::failed(
                HealthStatus::Unhealthy,
                format!("probe returned {verdict}, not 0 (healthy), 1 (degraded) or 2 (unhealthy)"),
            ),
        }
    }
}

/// Register a probe `name` (unique, UTF-8) run by the engine's health runner with options JSON
/// `{"interval_ms", "timeout_ms", "critical"}` (any subset; NULL: the configured interval and
/// timeout, critical). `*out_id` receives its id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_register_probe(
    e: *const axonal_engine,
    name: *const c_char,
    options_json: *const c_char,
    check: axonal_probe_fn,
    userdata: *mut c_void,
    userdata_free: axonal_userdata_free_fn,
    out_id: *mut u64,
) -> axonal_status {
    let userdata = Userdata { ptr: userdata, free: userdata_free };
    run(move || {
        let engine = engine_ref(e)?;
        let name = unsafe { str_arg(name, "name") }?.to_owned();
        let check = check.ok_or_else(|| FfiError::null("fn"))?;
        let out_id = out_arg(out_id, "out_id")?;
        let options = if options_json.is_null() {
            None
        } else {
            let text = unsafe { str_arg(options_json, "options_json") }?;
            serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
                FfiError::new(AXONAL_STATUS_INVALID_JSON, format!("options_json is malformed JSON: {e}"))
            })?;
            Some(ProbeOptions::from_json(ProbeOptions::from_config(&engine.config().health), text)?)
        };
        let probe = CProbe { name, check, userdata };
        *out_id = engine.register_probe(Arc::new(probe), options)?;
        Ok(())
    })
}

/// Unregister a probe: no check starts after this returns (one in progress finishes), and its
/// `userdata_free` runs once that check is done. `AXONAL_STATUS_NOT_FOUND` for an unknown id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_unregister_probe(e: *const axonal_engine, id: u64) -> axonal_status {
    run(|| removed(engine_ref(e)?.unregister_probe(id), "probe", id))
}

/// `AXONAL_STATUS_NOT_FOUND` naming `what` and `id` unless a registration was removed.
fn removed(removed: bool, what: &str, id: u64) -> FfiResult {
    if removed {
        Ok(())
    } else {
        Err(FfiError::new(AXONAL_STATUS_NOT_FOUND, format!("no {what} with id {id}")))
    }
}

/// Call `callback` for every breaker transition. `*out_id` receives its id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_on_breaker_transition(
    e: *const axonal_engine,
    callback: axonal_transition_fn,
    userdata: *mut c_void,
    userdata_free: axonal_userdata_free_fn,
    out_id: *mut u64,
) -> axonal_status {
    let userdata = Userdata { ptr: userdata, free: userdata_free };
    run(move || {
        let engine = engine_ref(e)?;
        let callback = callback.ok_or_else(|| FfiError::null("fn"))?;
        let out_id = out_arg(out_id, "out_id")?;
        *out_id = engine.on_breaker_transition(move |event| {
            let json = event.to_json();
            let len = json.len();
            if let Ok(json) = CString::new(json) {
                unsafe { callback(userdata.ptr(), json.as_ptr(), len) };
            }
        });
        Ok(())
    })
}

/// Stop calling a transition callback: no call starts after this returns (from inside the callback
/// itself, it is its last call), and its `userdata_free` runs once. `AXONAL_STATUS_NOT_FOUND` for an
/// unknown id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_remove_transition_callback(
    e: *const axonal_engine,
    id: u64,
) -> axonal_status {
    run(|| removed(engine_ref(e)?.remove_transition_callback(id), "transition callback", id))
}

/// Block until every transition event so far has been delivered to the callbacks (returns at once
/// when called from a transition callback).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_flush_transition_events(e: *const axonal_engine) -> axonal_status {
    run(|| {
        engine_ref(e)?.flush_transition_events();
        Ok(())
    })
}

//! HTTP server handle (docs/spec.md §12): serve the engine's health, metrics and admin endpoints.

use std::ffi::c_char;

use axonal_core::http::{HttpOptions, HttpServer};

use crate::engine::{axonal_engine, engine_host};
use crate::error::*;

/// A running HTTP server. Thread-safe. It holds its engine weakly, and `axonal_engine_free` stops
/// every server of that engine (its port then refuses connections); the handle itself stays valid
/// until `axonal_http_server_stop`, which must be its last call.
pub struct axonal_http_server {
    server: HttpServer,
}

/// Serve the HTTP surface of `e` on `addr` (`"host:port"`; NULL or `""`: `127.0.0.1:9464`; port 0
/// picks a free port, see `axonal_http_server_local_addr`). `options_json` (nullable, a JSON object):
/// `{"admin_token", "max_body_bytes", "header_timeout_ms", "request_timeout_ms", "max_connections"}`;
/// without `admin_token` the admin writes answer 403. At `max_connections` a new connection takes
/// the slot of the longest-idle one. With an `admin_token` on an address beyond loopback the library
/// logs a warning: the token travels in clear. Binds before returning: a taken or malformed address
/// fails here with `AXONAL_STATUS_CONFIG`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_serve_http(
    e: *const axonal_engine,
    addr: *const c_char,
    options_json: *const c_char,
    out: *mut *mut axonal_http_server,
) -> axonal_status {
    run(|| {
        let out = handle_out(out)?;
        let host = engine_host(e)?;
        let addr = if addr.is_null() { "" } else { unsafe { str_arg(addr, "addr") }? };
        let options = if options_json.is_null() {
            None
        } else {
            Some(unsafe { str_arg(options_json, "options_json") }?)
        };
        let options = HttpOptions::from_json(options)?;
        let server = host.serve_http(addr, options)?;
        *out = Box::into_raw(Box::new(axonal_http_server { server }));
        Ok(())
    })
}

/// The address the server listens on, `"host:port"` with the real port (free with
/// `axonal_string_free`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_http_server_local_addr(
    s: *const axonal_http_server,
    out_addr: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    run(|| {
        string_out(out_addr, out_len)?; // out-params are cleared before anything else can fail
        let server = unsafe { s.as_ref() }.ok_or_else(|| FfiError::null("server"))?;
        give_string(server.server.local_addr().to_string(), out_addr, out_len)
    })
}

/// A URL a client on this host can connect to, `"http://host:port"`: the loopback address stands in
/// for an unspecified one (`0.0.0.0`, `::`). Free with `axonal_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_http_server_url(
    s: *const axonal_http_server,
    out_url: *mut *mut c_char,
    out_len: *mut usize,
) -> axonal_status {
    run(|| {
        string_out(out_url, out_len)?;
        let server = unsafe { s.as_ref() }.ok_or_else(|| FfiError::null("server"))?;
        give_string(server.server.url(), out_url, out_len)
    })
}

/// Stop the server (close its listener and connections, join its thread) and free the handle (NULL
/// is ignored). Safe after `axonal_engine_free` of its engine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_http_server_stop(s: *mut axonal_http_server) {
    run_void(|| {
        if !s.is_null() {
            drop(unsafe { Box::from_raw(s) });
        }
    });
}

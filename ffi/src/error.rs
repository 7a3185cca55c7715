//! Status codes, the thread-local last error, the panic boundary and argument helpers.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use axonal_core::ErrorKind;

/// A status code. `AXONAL_STATUS_OK` is 0; codes are never renumbered and retired codes stay
/// reserved.
pub type axonal_status = u32;

/// Success.
pub const AXONAL_STATUS_OK: axonal_status = 0;
/// A required pointer argument was NULL.
pub const AXONAL_STATUS_NULL_ARGUMENT: axonal_status = 1;
/// An argument had a bad value (a zero length, an unknown enum value, …).
pub const AXONAL_STATUS_INVALID_ARGUMENT: axonal_status = 2;
/// A string argument was not valid UTF-8.
pub const AXONAL_STATUS_INVALID_UTF8: axonal_status = 3;
/// A JSON argument was malformed.
pub const AXONAL_STATUS_INVALID_JSON: axonal_status = 4;
/// A configuration value or key was rejected.
pub const AXONAL_STATUS_CONFIG: axonal_status = 5;
/// Building or loading a graph failed (bad node id, weight, embedding, TSV line).
pub const AXONAL_STATUS_GRAPH: axonal_status = 6;
/// A cue was rejected (bad seed, activation, embedding, k).
pub const AXONAL_STATUS_RECALL: axonal_status = 7;
/// A file could not be read.
pub const AXONAL_STATUS_IO: axonal_status = 8;
/// A named or numbered object (probe, callback id) does not exist.
pub const AXONAL_STATUS_NOT_FOUND: axonal_status = 9;
/// An output buffer was too small.
pub const AXONAL_STATUS_BUFFER_TOO_SMALL: axonal_status = 10;
/// A feature is not available in this build or on this machine.
pub const AXONAL_STATUS_UNAVAILABLE: axonal_status = 11;
/// The library caught a panic (a bug); the operation did not complete.
pub const AXONAL_STATUS_PANIC: axonal_status = 12;

/// A failed call: its status and message.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) status: axonal_status,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn new(status: axonal_status, message: impl Into<String>) -> Self {
        FfiError { status, message: message.into() }
    }

    pub(crate) fn null(argument: &str) -> Self {
        FfiError::new(AXONAL_STATUS_NULL_ARGUMENT, format!("{argument} must not be NULL"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        FfiError::new(AXONAL_STATUS_INVALID_ARGUMENT, message)
    }
}

impl From<axonal_core::Error> for FfiError {
    fn from(e: axonal_core::Error) -> Self {
        let status = match e.kind() {
            ErrorKind::Graph => AXONAL_STATUS_GRAPH,
            ErrorKind::Config => AXONAL_STATUS_CONFIG,
            ErrorKind::Recall => AXONAL_STATUS_RECALL,
            ErrorKind::Io => AXONAL_STATUS_IO,
            ErrorKind::Unavailable => AXONAL_STATUS_UNAVAILABLE,
            // A kind this library does not know yet: the most general failure short of a panic.
            _ => AXONAL_STATUS_INVALID_ARGUMENT,
        };
        FfiError::new(status, e.to_string())
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

/// Refuse a length of `T`s whose byte size passes `isize::MAX`: no real buffer has it, and a slice
/// over it is undefined behaviour (a debug build aborts the host). The error names the argument.
pub(crate) fn check_len<T>(len: usize, name: &str) -> FfiResult {
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(FfiError::invalid(format!("{name}: a length of {len} is larger than any buffer can be")));
    }
    Ok(())
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    // `try_with`: during thread teardown the slot may be gone; losing the message beats aborting.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = message);
}

/// Run a function body inside the panic boundary; on failure record the message for
/// `axonal_last_error_message` and return the status.
pub(crate) fn run(body: impl FnOnce() -> FfiResult) -> axonal_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => AXONAL_STATUS_OK,
        Ok(Err(e)) => {
            set_last_error(e.message);
            e.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(format!("internal error (panic caught at the C boundary): {what}"));
            AXONAL_STATUS_PANIC
        }
    }
}

/// Run a void function body inside the panic boundary (free functions).
pub(crate) fn run_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|e| {
        FfiError::new(
            AXONAL_STATUS_INVALID_UTF8,
            format!("{name} is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// A JSON argument.
pub(crate) unsafe fn json_arg(ptr: *const c_char, name: &str) -> FfiResult<serde_json::Value> {
    let text = unsafe { str_arg(ptr, name) }?;
    serde_json::from_str(text)
        .map_err(|e| FfiError::new(AXONAL_STATUS_INVALID_JSON, format!("{name} is malformed JSON: {e}")))
}

/// A required out-pointer.
pub(crate) fn out_arg<'a, T>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    unsafe { ptr.as_mut() }.ok_or_else(|| FfiError::null(name))
}

/// Check a handle out-parameter before any work is done, and set `*out` to NULL (it stays NULL on
/// failure).
pub(crate) fn handle_out<'a, T>(out: *mut *mut T) -> FfiResult<&'a mut *mut T> {
    let out = out_arg(out, "out")?;
    *out = std::ptr::null_mut();
    Ok(out)
}

/// Check a string out-parameter pair before any work is done, and set `*out` to NULL.
pub(crate) fn string_out<'a>(
    out: *mut *mut c_char,
    out_len: *mut usize,
) -> FfiResult<(&'a mut *mut c_char, &'a mut usize)> {
    let out = out_arg(out, "out")?;
    let out_len = out_arg(out_len, "out_len")?;
    *out = std::ptr::null_mut();
    *out_len = 0;
    Ok((out, out_len))
}

/// Hand a string to C (free with `axonal_string_free`); `out_len` receives its length without the NUL.
pub(crate) fn give_string(text: String, out: *mut *mut c_char, out_len: *mut usize) -> FfiResult {
    let (out, out_len) = string_out(out, out_len)?;
    let len = text.len();
    let text = CString::new(text).map_err(|_| FfiError::invalid("result contains a NUL byte"))?;
    *out = text.into_raw();
    *out_len = len;
    Ok(())
}

/// Copy the calling thread's last error message into `buf` (NUL-terminated, truncated to fit) and its
/// full length (without the NUL) into `written`. With `buf` NULL and `len` 0 it only reports the
/// length. Returns `AXONAL_STATUS_BUFFER_TOO_SMALL` when the message was truncated. Thread-safe: each
/// thread has its own last error, which later failures on that thread replace.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_last_error_message(
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> axonal_status {
    let message = LAST_ERROR.try_with(|last| last.borrow().clone()).unwrap_or_default();
    let mut status = AXONAL_STATUS_OK;
    if let Some(written) = unsafe { written.as_mut() } {
        *written = message.len();
    }
    if len == 0 {
        return if message.is_empty() { AXONAL_STATUS_OK } else { AXONAL_STATUS_BUFFER_TOO_SMALL };
    }
    if buf.is_null() {
        return AXONAL_STATUS_NULL_ARGUMENT;
    }
    let mut n = message.len().min(len - 1);
    if n < message.len() {
        status = AXONAL_STATUS_BUFFER_TOO_SMALL;
        while !message.is_char_boundary(n) {
            n -= 1;
        }
    }
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    status
}

/// A static description of `status` ("ok", "null argument", …); "unknown status" for codes this
/// library does not know. Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn axonal_status_str(status: axonal_status) -> *const c_char {
    let text: &'static CStr = match status {
        AXONAL_STATUS_OK => c"ok",
        AXONAL_STATUS_NULL_ARGUMENT => c"null argument",
        AXONAL_STATUS_INVALID_ARGUMENT => c"invalid argument",
        AXONAL_STATUS_INVALID_UTF8 => c"invalid UTF-8",
        AXONAL_STATUS_INVALID_JSON => c"invalid JSON",
        AXONAL_STATUS_CONFIG => c"invalid configuration",
        AXONAL_STATUS_GRAPH => c"invalid graph input",
        AXONAL_STATUS_RECALL => c"invalid cue",
        AXONAL_STATUS_IO => c"I/O error",
        AXONAL_STATUS_NOT_FOUND => c"not found",
        AXONAL_STATUS_BUFFER_TOO_SMALL => c"buffer too small",
        AXONAL_STATUS_UNAVAILABLE => c"unavailable",
        AXONAL_STATUS_PANIC => c"internal error",
        _ => c"unknown status",
    };
    text.as_ptr()
}

/// Free a string returned by this library (NULL is ignored).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_string_free(s: *mut c_char) {
    run_void(|| {
        if !s.is_null() {
            drop(unsafe { CString::from_raw(s) });
        }
    });
}

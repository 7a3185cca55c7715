//! The HTTP surface (docs/spec.md §12; cargo feature `http`): health, metrics and admin endpoints
//! served from an engine's live state, started explicitly with [`serve`] (or `crate::host::Host`,
//! which also stops its servers before the engine shuts down).
//!
//! One named thread (`axonal-http`) runs a single-threaded tokio runtime with hyper's HTTP/1 server;
//! endpoints that take a lock or do real work (metrics, config) run on at most two blocking helper
//! threads. Every connection has a header-read timeout, every request a body-size limit and a
//! deadline, and the number of open connections is capped, so a slow or hostile client costs a
//! socket, never a recall. At the cap, a new connection takes the slot of the connection that has
//! been idle longest (no request in progress), so one peer holding hundreds of idle or trickling
//! sockets cannot starve the others; only when every connection is busy is a new one refused. A
//! client that half-closes after its request still gets the response. The server holds only a weak reference to the engine: the engine never
//! depends on the server, and a server whose engine is gone answers 503.
//! docs/decisions/0011-http-stack.md records why hyper.

mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// The address `serve_http` binds when given none: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// Server options (JSON in the C ABI: `{"admin_token", "max_body_bytes", "header_timeout_ms",
/// "request_timeout_ms", "max_connections"}`, every key optional, unknown keys an error).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpOptions {
    /// Bearer token that admin writes (`PUT`) must carry; `None` disables writes (403).
    pub admin_token: Option<String>,
    /// Largest request body accepted (bytes) [64 KiB]; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers, also the keep-alive idle limit [5 s].
    pub header_timeout_ms: u64,
    /// Deadline for reading a body [10 s]; a handler gets twice that, and a client that stops reading
    /// our answer for that long is disconnected.
    pub request_timeout_ms: u64,
    /// Connections open at once [256]; further ones are closed at accept.
    pub max_connections: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            admin_token: None,
            max_body_bytes: 64 * 1024,
            header_timeout_ms: 5_000,
            request_timeout_ms: 10_000,
            max_connections: 256,
        }
    }
}

impl std::fmt::Debug for HttpOptions {
    /// Everything but the token's value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("header_timeout_ms", &self.header_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl HttpOptions {
    /// Parse the options JSON (`None` or `{}`: defaults) and validate it.
    pub fn from_json(text: Option<&str>) -> Result<HttpOptions> {
        let Some(text) = text else { return Ok(HttpOptions::default()) };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::config("http", format!("malformed JSON: {e}")))?;
        crate::error::expect_object(&value, "http")?;
        let options: HttpOptions = serde_path_to_error::deserialize(value).map_err(|e| {
            Error::config(crate::error::field_path("http", e.path()), e.into_inner().to_string())
        })?;
        options.validate()?;
        Ok(options)
    }

    /// Options with `admin_token` set (`None`: admin writes disabled).
    pub fn with_admin_token(mut self, token: Option<String>) -> HttpOptions {
        self.admin_token = token;
        self
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        // Visible ASCII only: anything else cannot travel in an `Authorization` header.
        if let Some(token) = &self.admin_token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(Error::config("http.admin_token", "must be non-empty visible ASCII (no spaces)"));
        }
        if !(1..=16 << 20).contains(&self.max_body_bytes) {
            return Err(Error::config("http.max_body_bytes", "must be in 1..=16777216"));
        }
        for (field, ms) in [
            ("http.header_timeout_ms", self.header_timeout_ms),
            ("http.request_timeout_ms", self.request_timeout_ms),
        ] {
            if !(1..=600_000).contains(&ms) {
                return Err(Error::config(field, format!("{ms} must be in 1..=600000")));
            }
        }
        if !(1..=65_536).contains(&self.max_connections) {
            return Err(Error::config("http.max_connections", "must be in 1..=65536"));
        }
        Ok(())
    }
}

/// A running HTTP server. `stop()` (or dropping it) closes the listener and every connection and
/// joins the server thread. Thread-safe.
pub struct HttpServer {
    local_addr: SocketAddr,
    token_in_clear: bool,
    control: Arc<Control>,
}

/// `addr` with the loopback address of its family in place of an unspecified one.
fn connectable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        addr.set_ip(loopback);
    }
    addr
}

impl HttpServer {
    /// The address the server listens on (the real port when it was asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A URL a client on this host can connect to: `http://<local_addr>`, with the loopback
    /// address in place of an unspecified one (`0.0.0.0`, `::`), which is not connectable.
    pub fn url(&self) -> String {
        format!("http://{}", connectable(self.local_addr))
    }

    /// Whether admin writes are enabled on an address beyond loopback: the bearer token then travels
    /// in clear over the network (a warning is logged at start; bindings repeat it to their users).
    pub fn token_in_clear(&self) -> bool {
        self.token_in_clear
    }

    /// Connections refused because `max_connections` were open and busy.
    pub fn connections_refused(&self) -> u64 {
        self.control.refused.load(Ordering::Relaxed)
    }

    /// Idle connections closed to make room for new ones at the `max_connections` cap.
    pub fn connections_evicted(&self) -> u64 {
        self.control.evicted.load(Ordering::Relaxed)
    }

    /// Stop serving and join the server thread (idempotent).
    pub fn stop(&self) {
        self.control.stop();
    }

    /// A weak handle that can stop this server later.
    pub fn stopper(&self) -> ServerStopper {
        ServerStopper(Arc::downgrade(&self.control))
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.control.stop();
    }
}

/// A weak handle that stops a server if it is still running (what a host keeps of the servers it
/// started, to stop them before its engine shuts down).
#[derive(Clone)]
pub struct ServerStopper(Weak<Control>);

impl ServerStopper {
    /// Stop the server and join its thread, unless it is gone already.
    pub fn stop(&self) {
        if let Some(control) = self.0.upgrade() {
            control.stop();
        }
    }

    /// Whether the server handle still exists.
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

/// Shutdown signal and thread of one server.
struct Control {
    shutdown: Notify,
    thread: Mutex<Option<JoinHandle<()>>>,
    refused: AtomicU64,
    evicted: AtomicU64,
}

impl Control {
    /// Signal the server and wait until it has stopped. The lock is held across the join, so a
    /// concurrent caller (say `HttpServer::stop` racing a host's close) also returns
    /// only once the thread, its helpers and every request they held the engine for are gone.
    fn stop(&self) {
        self.shutdown.notify_one();
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        // The helpers never stop a server, so this thread is never the server's own; check anyway.
        if thread.as_ref().is_some_and(|t| t.thread().id() != std::thread::current().id())
            && let Some(thread) = thread.take()
        {
            // The runtime is dropped at the end of the thread, which waits for the blocking helpers.
            let _ = thread.join();
        }
    }
}

/// Serve `engine`'s HTTP surface on `addr` (`host:port`; port 0 picks a free port; see
/// [`DEFAULT_ADDR`]). Binds before returning, so a taken port is an error here. The server holds the
/// engine weakly: it never keeps it alive, and answers 503 once it is gone.
pub fn serve(engine: &Arc<Engine>, addr: &str, options: HttpOptions) -> Result<HttpServer> {
    options.validate()?;
    let addr = if addr.is_empty() { DEFAULT_ADDR } else { addr };
    let bad_addr = |message: String| Error::config("http.addr", format!("{addr:?}: {message}"));
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| bad_addr(e.to_string()))?;
    std_listener.set_nonblocking(true).map_err(|e| bad_addr(e.to_string()))?;
    let local_addr = std_listener.local_addr().map_err(|e| bad_addr(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(2)
        .thread_name("axonal-http-work")
        .build()
        .map_err(|e| Error::Unavailable { feature: "http", message: e.to_string() })?;
    let control = Arc::new(Control {
        shutdown: Notify::new(),
        thread: Mutex::new(None),
        refused: AtomicU64::new(0),
        evicted: AtomicU64::new(0),
    });
    let state = Arc::new(routes::State::new(Arc::downgrade(engine), &options));
    let admin_writes = options.admin_token.is_some();
    let thread = {
        let control = Arc::clone(&control);
        std::thread::Builder::new()
            .name("axonal-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(std_listener) {
                        Ok(listener) => accept_loop(listener, state, &control, &options).await,
                        Err(e) => tracing::error!(error = %e, "http: listener setup failed"),
                    }
                });
                // Dropping the runtime here cancels every open connection.
            })
            .map_err(|e| Error::Unavailable { feature: "http", message: e.to_string() })?
    };
    *control.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
    let token_in_clear = admin_writes && !local_addr.ip().is_loopback();
    if token_in_clear {
        tracing::warn!(
            %local_addr,
            "http: admin writes are enabled beyond loopback; the bearer token travels in clear \
             (put a TLS-terminating proxy in front, or bind 127.0.0.1)"
        );
    }
    tracing::info!(%local_addr, url = %format!("http://{}", connectable(local_addr)), admin_writes, "http: serving");
    Ok(HttpServer { local_addr, token_in_clear, control })
}

/// Accept connections until the shutdown signal; each connection is its own task.
async fn accept_loop(
    listener: TcpListener,
    state: Arc<routes::State>,
    control: &Control,
    options: &HttpOptions,
) {
    let connections = Arc::new(Connections::new(options.max_connections));
    let header_timeout = Duration::from_millis(options.header_timeout_ms);
    let write_timeout = Duration::from_millis(options.request_timeout_ms);
    loop {
        let accepted = tokio::select! {
            _ = control.shutdown.notified() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "http: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(connection) = connections.admit(control) else {
            control.refused.fetch_add(1, Ordering::Relaxed);
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let stream = WriteDeadline::new(stream, write_timeout);
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let busy = Arc::clone(&connection);
            let service = service_fn(move |request| {
                let work = routes::handle(Arc::clone(&state), request);
                let busy = BusyGuard::enter(Arc::clone(&busy));
                async move {
                    let reply = work.await;
                    drop(busy);
                    reply
                }
            });
            let serving = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 * 1024)
                // A client that shuts down its write side after the request still gets the answer.
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = serving => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "http: connection ended with an error");
                    }
                }
                _ = connection.evict.notified() => tracing::debug!("http: idle connection closed for a new one"),
            }
            connections.remove(connection.id);
        });
    }
}

/// The open connections, for the cap and for choosing which idle one gives way.
struct Connections {
    max: usize,
    started: std::time::Instant,
    open: Mutex<(u64, std::collections::HashMap<u64, Arc<Connection>>)>,
}

/// One open connection.
struct Connection {
    id: u64,
    /// Requests in progress (0: idle — waiting for, or still receiving, a request's headers).
    busy: std::sync::atomic::AtomicU32,
    /// When it was last busy (or opened): milliseconds since `epoch`, the server's start.
    last_active_ms: AtomicU64,
    epoch: std::time::Instant,
    evict: Notify,
}

impl Connections {
    fn new(max: usize) -> Self {
        Connections { max, started: std::time::Instant::now(), open: Mutex::new((0, Default::default())) }
    }

    /// A slot for a new connection: a free one, or the one of the connection idle longest (which is
    /// told to close). `None` when every open connection is busy.
    fn admit(&self, control: &Control) -> Option<Arc<Connection>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.1.len() >= self.max {
            let victim = open
                .1
                .values()
                .filter(|c| c.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|c| (c.last_active_ms.load(Ordering::Relaxed), c.id))
                .map(|c| c.id)?;
            if let Some(victim) = open.1.remove(&victim) {
                victim.evict.notify_one();
                control.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        open.0 += 1;
        let connection = Arc::new(Connection {
            id: open.0,
            busy: Default::default(),
            last_active_ms: AtomicU64::new(self.started.elapsed().as_millis() as u64),
            epoch: self.started,
            evict: Notify::new(),
        });
        open.1.insert(connection.id, Arc::clone(&connection));
        Some(connection)
    }

    fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&id);
    }
}

/// Marks a connection busy while one of its requests is handled; on the way out (or if the
/// request is dropped) it is idle again, and the newest active.
struct BusyGuard(Arc<Connection>);

impl BusyGuard {
    fn enter(connection: Arc<Connection>) -> Self {
        connection.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(connection)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let c = &self.0;
        c.last_active_ms.store(c.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        c.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket whose writes fail once they have made no progress for `limit`: a client that stops
/// reading (say, pipelining requests it never reads the answers to) loses its connection and its
/// slot instead of holding them forever. Reads are bounded by hyper's header timeout.
struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    stalled_since: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline { inner, limit, stalled_since: None }
    }

    /// Turn a pending write into an error once the stall has lasted `limit`.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        let limit = self.limit;
        let timer = self.stalled_since.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<R>(
        &mut self,
        result: Poll<std::io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<R>> {
        match result {
            Poll::Ready(result) => {
                self.stalled_since = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

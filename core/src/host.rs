//! [`Host`]: an engine together with the HTTP servers started on it — the one owner of their
//! lifecycle. Closing a host stops its servers first, so no request is in flight while the engine
//! shuts down; the C and Python bindings hold engines through a `Host`. The engine itself knows
//! nothing of the servers.

use std::sync::Arc;
#[cfg(feature = "http")]
use std::sync::Mutex;

use crate::engine::Engine;
#[cfg(feature = "http")]
use crate::error::Result;

/// An engine and the servers started on it.
pub struct Host {
    engine: Arc<Engine>,
    #[cfg(feature = "http")]
    servers: Mutex<Vec<crate::http::ServerStopper>>,
}

impl Host {
    /// A host of `engine`.
    pub fn new(engine: Engine) -> Host {
        Host::from_arc(Arc::new(engine))
    }

    /// A host of a shared engine.
    pub fn from_arc(engine: Arc<Engine>) -> Host {
        Host {
            engine,
            #[cfg(feature = "http")]
            servers: Mutex::new(Vec::new()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Serve the engine's HTTP surface on `addr` (see `crate::http::serve`); the host stops the
    /// server when it closes.
    #[cfg(feature = "http")]
    pub fn serve_http(
        &self,
        addr: &str,
        options: crate::http::HttpOptions,
    ) -> Result<crate::http::HttpServer> {
        let server = crate::http::serve(&self.engine, addr, options)?;
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers.retain(crate::http::ServerStopper::is_alive);
        servers.push(server.stopper());
        Ok(server)
    }

    /// Stop every server started through this host and join their threads.
    pub fn stop_servers(&self) {
        #[cfg(feature = "http")]
        {
            let servers = std::mem::take(&mut *self.servers.lock().unwrap_or_else(|p| p.into_inner()));
            for server in servers {
                server.stop();
            }
        }
    }

    /// Stop the servers, then give up this host's reference to the engine: the engine itself when
    /// it was the last one (the caller decides where it drops — a binding drops it with its
    /// interpreter lock released), `None` while calls in flight still hold it.
    pub fn close(self) -> Option<Engine> {
        self.stop_servers();
        let engine = Arc::clone(&self.engine);
        drop(self);
        Arc::into_inner(engine)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_servers();
    }
}

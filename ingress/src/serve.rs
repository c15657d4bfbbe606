//! Serving HTTP/1.1 with the limits a public endpoint needs, which `axum::serve` does not set:
//!
//! - **Header timeout**: a client must send a request's complete headers within
//!   `header_timeout` (the request timeout); hyper closes the connection otherwise. The same
//!   timer runs while a keep-alive connection waits for its next request, so idle connections
//!   are closed too. Without it a slowloris client (headers never finished, or nothing sent at
//!   all) holds a connection, its task and its buffer forever, without any token.
//! - **Connection cap**: at most `max_connections` connections are open at once; further ones
//!   wait in the listen backlog until one closes. Together with the header timeout and the
//!   header buffer limit this bounds the memory strangers can make the ingress hold.
//! - **Header buffer**: at most [`MAX_HEADER_BUFFER`] bytes are buffered per connection while
//!   reading headers (hyper's default is about 400 kB).
//!
//! Request bodies are read by the handler, after authentication, with their own size limit and
//! time limit (`413`, `408`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Largest buffer per connection while reading a request's headers.
pub const MAX_HEADER_BUFFER: usize = 64 * 1024;

/// Connection limits of the ingress listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a request's headers (and that an idle connection stays open).
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets open
/// requests finish (idle connections are closed at once) and returns when all are done.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BUFFER);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // the semaphore is never closed
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Transient (e.g. out of file descriptors): back off briefly.
                    tracing::debug!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

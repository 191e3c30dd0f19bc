//! The accept loop of `tandem serve`: HTTP/1.1 (and HTTP/2 with prior knowledge) on each connection, deadlines for
//! slow clients, and graceful shutdown.
//!
//! `axum::serve` sets no read deadlines, so a client that sends its request head or body a byte now and then
//! (slowloris), or connects and sends nothing, holds a connection and its task for as long as it likes.
//! Here, with [`Timeouts`]:
//! - a connection must deliver its first request head within `header_read` of being accepted, and each later
//!   HTTP/1.1 head within `header_read` of the previous answer's end (so it is the keep-alive idle limit too);
//! - a request body must arrive whole within `body_read` of its head, or reading it fails and the handler answers
//!   400 in the client API's shape.
//!
//! Answers have no deadline while serving: a stream lasts as long as the upstream keeps talking and the client
//! keeps reading. An answer is pulled from its upstream only while the client connection's buffer has room, so a
//! client that reads slowly holds at most [`CONNECTION_BUFFER`] there. At shutdown, [`serve_with`] gives the
//! answers in flight a limit (the drain deadline).
//!
//! [`serve_with`] takes the router through a `watch` channel: a configuration reload replaces it, and each request
//! is served by the router current when its head arrived.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::workers::Workers;

/// The most a client connection buffers ahead, each way: of an answer its client has not read yet, and of a
/// request before the handler reads it (so it also bounds a request head). hyper's default is about 400 KiB.
/// A slow reader's upstream connection holds its own read buffer on top, which reqwest does not let us bound.
const CONNECTION_BUFFER: usize = 64 * 1024;

/// How long a client may take to send a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// From accepting a connection (or the end of the previous answer on it) to a complete request head.
    pub header_read: Duration,
    /// From a request head to the end of its body.
    pub body_read: Duration,
}

impl Timeouts {
    /// What `tandem serve` uses: 10 s for a request head and 60 s for a body (at the default 32 MiB limit, a client
    /// must send at least about 0.5 MB/s).
    pub const DEFAULT: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        body_read: Duration::from_secs(60),
    };
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets each connection finish its
/// current exchange, and returns once every connection has closed (as `axum::serve` with graceful shutdown does).
///
/// Accept errors are logged and retried (after a second unless the peer went away), so this never fails today;
/// the `io::Result` is that of `axum::serve`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (_router, routes) = watch::channel(router);
    serve_with(
        listener,
        routes,
        timeouts,
        async move {
            shutdown.await;
            None
        },
        None,
    )
    .await
}

/// As [`serve`], with a router that can be replaced while serving and a limit on draining.
///
/// Each request is served by the router `routes` holds when its head arrives, so a new router takes over new
/// connections and the next requests of open ones, while requests in flight finish on the router they started on.
///
/// When `shutdown` resolves, the listener is closed at once (new connections are refused) and each connection is
/// shut down gracefully: it finishes the exchange in flight, then closes. With `Some(limit)`, connections still open
/// `limit` later are closed, which drops their requests and answers.
///
/// With `workers`, each connection is served on one of them (in turn); without, on the current runtime.
pub async fn serve_with(
    listener: TcpListener,
    routes: watch::Receiver<Router>,
    timeouts: Timeouts,
    shutdown: impl Future<Output = Option<Duration>> + Send + 'static,
    workers: Option<&Workers>,
) -> std::io::Result<()> {
    // Dropping `stop_rx` tells every connection to shut down gracefully, and dropping `end_rx` to close at once;
    // each connection holds a `done_rx` clone, so `done_tx.closed()` resolves once they have all ended.
    let (stop_tx, stop_rx) = watch::channel(());
    let (end_tx, end_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read)
        .max_buf_size(CONNECTION_BUFFER);
    let builder = Arc::new(builder);
    let mut shutdown = pin!(shutdown);
    let limit = loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    accept_error(err).await;
                    continue;
                }
            },
            limit = &mut shutdown => break limit,
        };
        // Answers are written a frame at a time. With Nagle's algorithm on, a frame written while the previous
        // one is unacknowledged waits for the client's delayed ACK: up to 40 ms on Linux, on every stream.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "setting TCP_NODELAY failed");
        }
        let (builder, routes) = (Arc::clone(&builder), routes.clone());
        let ending = Ending {
            stop: stop_tx.clone(),
            end: end_tx.clone(),
        };
        let done = done_rx.clone();
        let serve = move |stream| connection(stream, builder, routes, timeouts, ending, done);
        match workers {
            Some(workers) => workers.serve(stream, serve),
            None => drop(tokio::spawn(serve(stream))),
        }
    };
    drop(listener);
    drop(stop_rx);
    drop(done_rx);
    tracing::info!(
        connections = done_tx.receiver_count(),
        drain_timeout_s = limit.map(|l| l.as_secs_f64()),
        "no longer accepting connections; draining those open"
    );
    if let Some(limit) = limit
        && tokio::time::timeout(limit, done_tx.closed()).await.is_err()
    {
        tracing::warn!(
            connections = done_tx.receiver_count(),
            "drain deadline passed; closing the connections still open"
        );
        drop(end_rx);
    }
    done_tx.closed().await;
    Ok(())
}

/// As `axum::serve` (after hyper 0.14): errors of one peer are skipped; others (such as running out of file
/// descriptors) are logged and the loop waits a second for some to be released.
async fn accept_error(err: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// How the server tells a connection to end: each resolves `closed()` once the server drops its receiver.
struct Ending {
    /// Finish the exchange in flight, then close.
    stop: watch::Sender<()>,
    /// Close now.
    end: watch::Sender<()>,
}

/// Serves one connection to its end.
async fn connection(
    stream: TcpStream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    routes: watch::Receiver<Router>,
    timeouts: Timeouts,
    ending: Ending,
    _done: watch::Receiver<()>,
) {
    let started = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&started);
    let service = service_fn(move |request: axum::http::Request<Incoming>| {
        seen.store(true, Ordering::Relaxed);
        let request = request.map(|body| Deadline::new(body, timeouts.body_read));
        let router = TowerToHyperService::new(routes.borrow().clone());
        hyper::service::Service::call(&router, request)
    });
    let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
    // hyper's own header timer starts only once the protocol is known, and telling HTTP/1.1 from HTTP/2 waits
    // for bytes without a limit, so the first head gets a deadline here too.
    let mut first_head = pin!(tokio::time::sleep(timeouts.header_read));
    let mut awaiting_first_head = true;
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = &mut first_head, if awaiting_first_head => {
                awaiting_first_head = false;
                if !started.load(Ordering::Relaxed) {
                    tracing::debug!("no request head in time; closing the connection");
                    return;
                }
            }
            () = ending.stop.closed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            // Returning drops the connection, and with it the exchange in flight.
            () = ending.end.closed() => return,
        }
    }
}

/// A request body that fails once its deadline has passed.
struct Deadline {
    inner: Incoming,
    deadline: Instant,
    limit: Duration,
    /// Armed at the first wait, so that bodies that are already complete cost no timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(inner: Incoming, limit: Duration) -> Deadline {
        Deadline {
            inner,
            deadline: Instant::now() + limit,
            limit,
            sleep: None,
        }
    }
}

impl Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                "the request body did not arrive within {:?}",
                this.limit
            )
            .into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};

    use axum::Router;
    use axum::routing::get;
    use tokio::net::TcpListener;
    use tokio::sync::{oneshot, watch};

    use super::{CONNECTION_BUFFER, Timeouts, serve_with};
    use crate::workers::Workers;

    /// Sends one HTTP/1.1 request on `stream` and reads its answer, failing after `patience`.
    fn exchange(stream: &mut std::net::TcpStream, patience: Duration) -> String {
        stream.set_read_timeout(Some(patience)).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: tandem\r\n\r\n")
            .unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"\r\n\r\npong") {
            assert!(started.elapsed() < patience, "no answer in {patience:?}");
            let read = stream.read(&mut buf).expect("the answer in time");
            assert!(read > 0, "the connection closed");
            answer.extend_from_slice(&buf[..read]);
        }
        String::from_utf8(answer).unwrap()
    }

    #[test]
    fn a_connection_on_a_worker_is_driven_by_the_worker_alone() {
        let workers = Workers::start(1).unwrap();
        let accepting = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = accepting
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (_routes_tx, routes) =
            watch::channel(Router::new().route("/", get(|| async { "pong" })));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (freeze_tx, freeze_rx) = oneshot::channel::<()>();
        let (frozen_tx, frozen_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let workers = &workers;
            let accepting = &accepting;
            scope.spawn(move || {
                accepting.block_on(async move {
                    // Once told, this blocks the accepting runtime's only thread, and with it its reactor.
                    drop(tokio::spawn(async move {
                        if freeze_rx.await.is_ok() {
                            frozen_tx.send(()).unwrap();
                            std::thread::sleep(Duration::from_secs(3));
                        }
                    }));
                    let shutdown = async move {
                        let _ = stop_rx.await;
                        Some(Duration::from_secs(1))
                    };
                    serve_with(listener, routes, Timeouts::DEFAULT, shutdown, Some(workers))
                        .await
                        .unwrap();
                });
            });
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            assert!(exchange(&mut stream, Duration::from_secs(10)).starts_with("HTTP/1.1 200"));
            freeze_tx.send(()).unwrap();
            frozen_rx.recv().unwrap();
            // The accepting runtime sleeps for 3 s: the answer on the open connection comes from the worker.
            let answer = exchange(&mut stream, Duration::from_secs(2));
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            drop(stream);
            stop_tx.send(()).unwrap();
        });
    }

    #[tokio::test]
    async fn a_connection_buffers_at_most_its_limit_so_a_larger_request_head_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_routes_tx, routes) =
            watch::channel(Router::new().route("/", get(|| async { "pong" })));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stop_rx.await;
            Some(Duration::from_secs(1))
        };
        let server = tokio::spawn(serve_with(
            listener,
            routes,
            Timeouts::DEFAULT,
            shutdown,
            None,
        ));
        let status = |header_bytes: usize| {
            tokio::task::spawn_blocking(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let head = format!(
                    "GET / HTTP/1.1\r\nhost: tandem\r\nx-filler: {}\r\n\r\n",
                    "a".repeat(header_bytes)
                );
                // The server may answer and close before it has read the whole head.
                let _ = stream.write_all(head.as_bytes());
                let mut answer = [0u8; 12];
                stream.read_exact(&mut answer).unwrap();
                String::from_utf8_lossy(&answer).into_owned()
            })
        };
        assert_eq!(status(CONNECTION_BUFFER / 2).await.unwrap(), "HTTP/1.1 200");
        // hyper's default limit (about 400 KiB) would take this head.
        assert_eq!(status(CONNECTION_BUFFER * 2).await.unwrap(), "HTTP/1.1 431");
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}

//! Connection workers: one thread per CPU, each running its own single-threaded tokio runtime, that serve the
//! connections [`crate::serve::serve_with`] accepts, each connection on one worker from its first byte to its last.
//!
//! On tokio's shared work-stealing runtime, one exchange hops between threads: a task woken on one worker makes
//! it wake a parked sibling (a futex wake and, on a VM, an interrupt to a halted virtual CPU) that may then steal
//! the task, and the upstream connection's task runs wherever the pool first made it. Each hop waits for a CPU,
//! and on a shared VM that wait is where the time-to-first-token tail comes from. On a worker, the client
//! connection, the handler, and the upstream connections it opens (`tandem-providers` keeps one pool per thread)
//! all run on one thread. This is what Pingora's no-steal runtimes do. The accept loop hands each connection over
//! as a plain socket that the worker registers with its own reactor: a socket left on the accepting runtime's
//! reactor would have that runtime's thread wake the worker for every byte that arrives.
//!
//! The price is that a task never moves: work that blocks its thread stalls every connection on that worker. In
//! `tandem serve` that happens only when the request path waits on PostgreSQL (key lookups, remote audit
//! appends), so those deployments keep the shared runtime ([`Workers::wanted`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long a stopping worker waits for the blocking tasks it started.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// The running workers; dropping this stops them (tasks still on them are dropped).
#[derive(Debug)]
pub struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

#[derive(Debug)]
struct Worker {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Workers {
    /// Whether `tandem serve` runs its connections on workers: not when the request path blocks its thread on a
    /// network round trip (`waits_on_network`, a PostgreSQL store or audit ledger); and one worker per CPU.
    pub fn wanted(waits_on_network: bool) -> Option<usize> {
        (!waits_on_network).then(|| std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Starts `count` workers (at least one), named `tandem-conn-N`.
    pub fn start(count: usize) -> std::io::Result<Workers> {
        let mut workers = Vec::with_capacity(count.max(1));
        for n in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("tandem-conn-{n}"))
                .spawn(move || {
                    // The runtime drives its tasks only while this thread is inside `block_on`.
                    let _ = runtime.block_on(stopped);
                    runtime.shutdown_timeout(STOP_WAIT);
                })?;
            workers.push(Worker {
                handle,
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(Workers {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// How many workers run.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether there are none (never, once started).
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Runs `task` on the next worker in turn.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len().max(1);
        if let Some(worker) = self.workers.get(n) {
            drop(worker.handle.spawn(task));
        }
    }

    /// Serves `stream` with `serve` on the next worker in turn. The accepted stream is registered with the
    /// accepting runtime's reactor, which would then have to wake the worker for every byte that arrives: it moves
    /// to the worker's own reactor instead.
    pub fn serve<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "taking a connection off the accept loop failed");
                return;
            }
        };
        self.spawn(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(err) => {
                    tracing::warn!(error = %err, "registering a connection on its worker failed")
                }
            }
        });
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            if let Some(stop) = worker.stop.take() {
                let _ = stop.send(());
            }
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take()
                && thread.join().is_err()
            {
                tracing::error!("a connection worker panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Workers;

    #[test]
    fn tasks_run_on_the_workers_in_turn_and_stop_with_them() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(workers.len(), 2);
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            workers.spawn(async move {
                let name = std::thread::current().name().unwrap_or("").to_owned();
                tx.send(name).unwrap();
            });
        }
        let mut names: Vec<String> = (0..4).map(|_| rx.recv().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "tandem-conn-0",
                "tandem-conn-0",
                "tandem-conn-1",
                "tandem-conn-1"
            ]
        );
        // A task still pending when the workers stop is dropped with them, not left running.
        let (held, never) = tokio::sync::oneshot::channel::<()>();
        let (alive, gone) = std::sync::mpsc::channel::<()>();
        workers.spawn(async move {
            let _alive = alive;
            let _ = never.await;
        });
        drop(workers);
        assert_eq!(
            gone.recv_timeout(std::time::Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
        drop(held);
    }

    #[test]
    fn the_request_path_waiting_on_the_network_keeps_the_shared_runtime() {
        assert_eq!(Workers::wanted(true), None);
        assert!(Workers::wanted(false).is_some_and(|n| n >= 1));
    }
}

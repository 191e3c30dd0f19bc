//! Running gate commands: the [`Runner`] trait, a plain [`PlainRunner`] for tests and trusted
//! setups, and a [`SandboxRunner`] that confines the command with `tandem-sandbox`.
//!
//! Both run `sh -c <command>` in their own process group with standard output and error merged
//! into one pipe, and kill the whole group when the timeout passes.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How much of a command's output is kept in memory (the tail).
const KEEP_BYTES: usize = 64 * 1024;

/// How long to wait for the output pipe to close once the command is over.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What a finished (or killed) command left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// The exit code; `None` when a signal ended it (as on timeout).
    pub status: Option<i32>,
    /// Whether it was killed for running past the timeout.
    pub timed_out: bool,
    /// The tail of standard output and standard error, interleaved as written.
    pub output: Vec<u8>,
    /// How long it ran.
    pub duration: Duration,
}

impl RunOutput {
    /// Whether the command exited with status 0 in time.
    pub fn success(&self) -> bool {
        self.status == Some(0) && !self.timed_out
    }
}

/// Runs a gate command. The agent plugs in its sandbox; tests use [`PlainRunner`].
pub trait Runner {
    /// Runs `command` with `sh -c` in `cwd`, killing it after `timeout`.
    fn run(&self, command: &str, cwd: &Path, timeout: Duration) -> Result<RunOutput>;
}

/// Runs commands as they are, unconfined.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainRunner;

impl Runner for PlainRunner {
    fn run(&self, command: &str, cwd: &Path, timeout: Duration) -> Result<RunOutput> {
        let mut process = Command::new("sh");
        process.arg("-c").arg(command).current_dir(cwd);
        run_command(process, command, timeout)
    }
}

/// Runs commands inside a [`tandem_sandbox::Sandbox`], in its workspace.
#[derive(Debug)]
pub struct SandboxRunner<'a> {
    sandbox: &'a tandem_sandbox::Sandbox,
}

impl<'a> SandboxRunner<'a> {
    /// A runner over `sandbox`.
    pub fn new(sandbox: &'a tandem_sandbox::Sandbox) -> SandboxRunner<'a> {
        SandboxRunner { sandbox }
    }
}

impl Runner for SandboxRunner<'_> {
    /// The sandbox always starts in its policy's workspace; `cwd` is ignored.
    fn run(&self, command: &str, _cwd: &Path, timeout: Duration) -> Result<RunOutput> {
        let process = self.sandbox.command("sh", ["-c", command])?;
        run_command(process, command, timeout)
    }
}

/// Spawns `process` in a new process group with merged output, waits up to `timeout`, and kills the
/// group past it.
pub(crate) fn run_command(
    mut process: Command,
    command: &str,
    timeout: Duration,
) -> Result<RunOutput> {
    use std::os::unix::process::CommandExt as _;

    let spawn_error = |source| Error::Spawn {
        command: command.to_owned(),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
    let writer_err = writer.try_clone().map_err(spawn_error)?;
    process
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_err)
        .process_group(0);
    let started = Instant::now();
    let mut child = process.spawn().map_err(spawn_error)?;
    // The parent's copies of the write end went with `process`: drop it so the pipe closes when
    // the command's group is done.
    drop(process);

    let tail = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let reader_tail = Arc::clone(&tail);
    std::thread::spawn(move || {
        drain(reader, &reader_tail);
        // The receiver may have given up waiting; nothing to do then.
        let _ = done_tx.send(());
    });

    let mut timed_out = false;
    let status = loop {
        match child.try_wait().map_err(spawn_error)? {
            Some(status) => break status,
            None if started.elapsed() >= timeout => {
                timed_out = true;
                kill_group(child.id());
                break child.wait().map_err(spawn_error)?;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let duration = started.elapsed();
    // Background processes of a finished command may hold the pipe open: kill what is left of the
    // group, then take what was read.
    if done_rx.recv_timeout(Duration::from_millis(200)).is_err() {
        kill_group(child.id());
        let _ = done_rx.recv_timeout(DRAIN_GRACE);
    }
    let output = std::mem::take(&mut *tail.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(RunOutput {
        status: status.code(),
        timed_out,
        output,
        duration,
    })
}

/// Reads the pipe to its end, keeping the last [`KEEP_BYTES`].
fn drain(mut reader: std::io::PipeReader, tail: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let mut kept = tail.lock().unwrap_or_else(PoisonError::into_inner);
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * KEEP_BYTES {
                    let cut = kept.len() - KEEP_BYTES;
                    kept.drain(..cut);
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Kills the process group led by `pid` (the command was spawned as its leader).
fn kill_group(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(err) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        tracing::debug!(%err, "killing a gate command's process group");
    }
}

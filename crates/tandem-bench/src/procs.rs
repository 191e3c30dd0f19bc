//! The processes under test: the testkit upstream, `tandem serve` and the LiteLLM proxy, each a child in its own
//! process group, killed (group and all) when its guard drops; plus RSS readings from `/proc` and the sampler of
//! the gateways' peak RSS.

use std::fs::File;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt as _;
use rustix::process::{Pid, Signal};

use crate::client::{Conn, Endpoint};

/// A child process; dropping it terminates its whole process group.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) name: &'static str,
    child: std::process::Child,
    pub(crate) log: PathBuf,
}

impl Child {
    /// Spawns `command` in a new process group with stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        log: PathBuf,
    ) -> anyhow::Result<Child> {
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log handle")?;
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Child { name, child, log })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the child's log, for error messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Polls `GET path` until it answers 200, the child exits, or `limit` passes.
    pub(crate) async fn wait_ready(
        &mut self,
        addr: SocketAddr,
        path: &str,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let endpoint = Endpoint::new(addr, None);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited during startup ({status}); last log lines:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            if started.elapsed() > limit {
                bail!(
                    "{} did not answer GET {path} within {limit:?}; last log lines:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            if probe(&endpoint, path).await {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the child is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM to the child itself (not its group), as an orchestrator stopping a replica would.
    pub(crate) fn terminate(&self) {
        if let Some(pid) = self.group() {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
    }

    /// Waits up to `limit` for the child to exit; `None` when it is still running.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn group(&self) -> Option<Pid> {
        i32::try_from(self.child.id()).ok().and_then(Pid::from_raw)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(group) = self.group() else { return };
        // SIGTERM first so the gateways can shut down cleanly, then SIGKILL whatever is left of the group.
        let _ = rustix::process::kill_process_group(group, Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = rustix::process::kill_process_group(group, Signal::KILL);
        let _ = self.child.wait();
    }
}

async fn probe(endpoint: &Arc<Endpoint>, path: &str) -> bool {
    let attempt = async {
        let mut conn = Conn::connect(Arc::clone(endpoint)).await.ok()?;
        let response = conn.send(Method::GET, path, Bytes::new()).await.ok()?;
        let ok = response.status().is_success();
        let _ = response.into_body().collect().await;
        Some(ok)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}

/// A free loopback port (bound, then released; the child binds it right after).
pub(crate) fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    listener.local_addr().context("reading the free port")
}

/// Memory of one process, in bytes, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Memory {
    pub(crate) rss: u64,
    pub(crate) hwm: u64,
}

pub(crate) fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
    };
    Some(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:").unwrap_or(0),
    })
}

/// Summed RSS of every process in the process group `pgid` (the child and all its workers), in bytes.
pub(crate) fn group_rss(pgid: u32) -> u64 {
    group_members(pgid)
        .filter_map(memory)
        .map(|memory| memory.rss)
        .sum()
}

/// Processes in the group `pgid`.
pub(crate) fn group_size(pgid: u32) -> usize {
    group_members(pgid).count()
}

/// The pids of the processes in the group `pgid`, from a scan of `/proc` (none when it cannot be read).
fn group_members(pgid: u32) -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(move |&pid| process_group(pid) == Some(pgid))
}

/// Fields of `/proc/PID/stat` after the command name (which is in parentheses and may contain spaces):
/// index 0 is the state, 1 ppid, 2 pgrp, 11 utime, 12 stime.
fn stat_field(pid: u32, index: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(index)?.parse().ok()
}

fn process_group(pid: u32) -> Option<u32> {
    stat_field(pid, 2).and_then(|g| u32::try_from(g).ok())
}

/// CPU time (user + system, all threads) of one process so far, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let ticks = stat_field(pid, 11)? + stat_field(pid, 12)?;
    Some(ticks as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// CPU time of every live process in the process group `pgid`, in seconds.
pub(crate) fn group_cpu_seconds(pgid: u32) -> f64 {
    group_members(pgid).filter_map(cpu_seconds).sum()
}

/// The `litellm` executable: `--litellm-bin`, else `$TANDEM_BENCH_CACHE` (or `~/.cache/tandem-bench`)
/// `/litellm-venv/bin/litellm`.
pub(crate) fn default_litellm_bin() -> PathBuf {
    cache_dir().join("litellm-venv").join("bin").join("litellm")
}

pub(crate) fn cache_dir() -> PathBuf {
    match std::env::var_os("TANDEM_BENCH_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
            home.join(".cache").join("tandem-bench")
        }
    }
}

/// The installed LiteLLM version, asked of the venv's Python next to `bin`, else of `litellm --version`.
pub(crate) fn litellm_version(bin: &Path) -> Option<String> {
    let python = bin.with_file_name("python3");
    let from_metadata = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty());
    from_metadata.or_else(|| {
        Command::new(bin)
            .arg("--version")
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .stderr(Stdio::null())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// How often [`PeakSampler`] reads the gateways' RSS.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// The highest RSS of tandem and of LiteLLM's process group, read every [`SAMPLE_EVERY`] for the whole run, except
/// while a [`Pause`] is held.
///
/// The sequential scenarios hold one. A sample of LiteLLM's group reads every process's `/proc/PID/stat` to find
/// the group's members, about a millisecond of CPU on a machine with two, and a millisecond in every fifty is the
/// order of the p99 those scenarios measure: the requests that overlapped a sample would time the sampler, and
/// tandem's, which take longer than direct's, more often. Pausing loses nothing: tandem's peak also takes its
/// `VmHWM`, which the kernel keeps, and LiteLLM's RSS grows with its load and peaks in the concurrent scenario.
pub(crate) struct PeakSampler {
    tandem: Arc<AtomicU64>,
    litellm: Arc<AtomicU64>,
    paused: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Holds a [`PeakSampler`] still until dropped.
pub(crate) struct Pause<'a>(&'a AtomicBool);

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl PeakSampler {
    /// Starts sampling tandem (`pid`, with its RSS so far) and LiteLLM's process group (`pgid`, likewise).
    pub(crate) fn start(tandem: (u32, u64), litellm: Option<(u32, u64)>) -> PeakSampler {
        let (tandem_pid, tandem_rss) = tandem;
        let peak_tandem = Arc::new(AtomicU64::new(tandem_rss));
        let peak_litellm = Arc::new(AtomicU64::new(litellm.map_or(0, |(_, rss)| rss)));
        let paused = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak_tandem, peak_litellm, paused) = (
                Arc::clone(&peak_tandem),
                Arc::clone(&peak_litellm),
                Arc::clone(&paused),
            );
            async move {
                loop {
                    if !paused.load(Ordering::Relaxed) {
                        if let Some(memory) = memory(tandem_pid) {
                            peak_tandem.fetch_max(memory.rss, Ordering::Relaxed);
                        }
                        if let Some((pgid, _)) = litellm {
                            let rss = tokio::task::spawn_blocking(move || group_rss(pgid))
                                .await
                                .unwrap_or(0);
                            peak_litellm.fetch_max(rss, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(SAMPLE_EVERY).await;
                }
            }
        });
        PeakSampler {
            tandem: peak_tandem,
            litellm: peak_litellm,
            paused,
            task,
        }
    }

    /// Stops sampling until the returned guard drops.
    pub(crate) fn pause(&self) -> Pause<'_> {
        self.paused.store(true, Ordering::Relaxed);
        Pause(&self.paused)
    }

    /// Stops sampling for good: the highest RSS sampled of tandem and of LiteLLM's group, in bytes.
    pub(crate) fn stop(self) -> (u64, u64) {
        self.task.abort();
        (
            self.tandem.load(Ordering::Relaxed),
            self.litellm.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_group_is_found_by_its_id_and_an_unknown_one_is_empty() {
        use std::os::unix::process::CommandExt as _;
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pgid = child.id();
        assert_eq!(group_size(pgid), 1);
        assert!(group_rss(pgid) > 0);
        assert!(group_cpu_seconds(pgid) >= 0.0);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(group_size(pgid), 0);
        assert_eq!(group_rss(pgid), 0);
        assert_eq!(group_size(u32::MAX), 0);
    }

    #[tokio::test]
    async fn the_peak_sampler_reads_nothing_while_paused_and_samples_again_after() {
        let me = std::process::id();
        let sampler = PeakSampler::start((me, 0), None);
        // On this single-threaded runtime the sampler's task has not run yet, so it has sampled nothing.
        let pause = sampler.pause();
        tokio::time::sleep(SAMPLE_EVERY * 4).await;
        assert_eq!(
            sampler.tandem.load(Ordering::Relaxed),
            0,
            "sampled while paused"
        );
        drop(pause);
        tokio::time::sleep(SAMPLE_EVERY * 4).await;
        let (peak, litellm) = sampler.stop();
        assert!(peak > 0, "no sample after the pause ended");
        assert_eq!(litellm, 0);
    }
}

//! Facts about the machine and the build that the report records next to the numbers.

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

#[cfg(test)]
mod tests;

/// Where and when the benchmark ran.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) date_utc: String,
    pub(crate) time_utc: String,
    pub(crate) nproc: usize,
    pub(crate) cpu_model: String,
    pub(crate) mem_total_gib: f64,
    pub(crate) kernel: String,
    /// `/proc/loadavg` when the run started: other work on the machine skews the numbers.
    pub(crate) loadavg_start: String,
    pub(crate) loadavg_end: String,
    pub(crate) git_commit: Option<String>,
    pub(crate) git_dirty: bool,
    pub(crate) build: &'static str,
    pub(crate) command: String,
}

impl Machine {
    pub(crate) fn gather() -> Machine {
        let (date_utc, time_utc) = utc_now();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let git_commit = git(&["rev-parse", "--short=12", "HEAD"]);
        let git_dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Machine {
            date_utc,
            time_utc,
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            mem_total_gib: mem_kb / 1024.0 / 1024.0,
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
            git_commit,
            git_dirty,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            command: command_line(),
        }
    }
}

/// The machine's CPU time so far, from the first line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// All CPU time: user, nice, system, idle, iowait, irq, softirq and steal (guest time is inside user).
    total: u64,
    /// Time the hypervisor ran other guests while this one had work for the CPU.
    steal: u64,
}

impl CpuTimes {
    /// The times now (zero where `/proc/stat` cannot be read).
    pub(crate) fn read() -> CpuTimes {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
    }

    fn parse(stat: &str) -> CpuTimes {
        let Some(fields) = stat.lines().find_map(|l| l.strip_prefix("cpu ")) else {
            return CpuTimes::default();
        };
        let ticks: Vec<u64> = fields
            .split_whitespace()
            .take(8)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        CpuTimes {
            total: ticks.iter().sum(),
            steal: ticks.get(7).copied().unwrap_or(0),
        }
    }

    /// The share of the machine's CPU time since `earlier` that was stolen, in percent; `None` over no time.
    pub(crate) fn steal_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|&t| t > 0)?;
        let steal = self.steal.saturating_sub(earlier.steal);
        Some(steal as f64 * 100.0 / total as f64)
    }
}

pub(crate) fn loadavg() -> String {
    let text = read_trim("/proc/loadavg");
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The command line as typed, shell-quoted where needed.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '\'', '"', '$']) {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Today's date and the time of day in UTC, as `YYYY-MM-DD` and `HH:MM:SS`.
pub(crate) fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian calendar).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

//! `cargo xtask ci fuzz`: runs every cargo-fuzz target in `fuzz/` for a bounded time.
//!
//! The targets are built once with `cargo fuzz build` (address sanitizer, coverage, debug
//! assertions) into `<cargo target dir>/fuzz`, so a second run on the same machine rebuilds only what
//! changed. cargo-fuzz passes `-Z` flags to rustc, which the stable toolchain accepts only with
//! `RUSTC_BOOTSTRAP=1`; it is set for the cargo-fuzz process alone, and the separate target directory
//! keeps it from touching the workspace's build cache.
//!
//! Each target then runs for `TANDEM_FUZZ_SECONDS` (default 30) seconds on its working corpus
//! (`<target dir>/fuzz/corpus/<target>`, kept between runs) seeded from the tracked
//! `fuzz/corpus/<target>`; new inputs go to the working corpus only, never into the clone, and past
//! `MAX_WORKING_CORPUS_FILES` it starts afresh. A crash, a failed assertion, an input slower than
//! `INPUT_TIMEOUT_S` or a run over `RSS_LIMIT_MB` fails the step, which names the saved input (in
//! `fuzz/artifacts/<target>/`), prints it as hex so that it survives a throwaway CI clone, and says
//! how to reproduce it.
//!
//! libFuzzer first runs every input of the working corpus once, within `-max_total_time` but
//! without stopping when it runs out, and the working corpus grows with every run. For the slow
//! targets (`policy` and `config` run tens of inputs a second) that replay would soon take all of the
//! time and then more, so a target whose replay (until libFuzzer's `INITED` line) took more than
//! `MAX_REPLAY_SHARE` of its time starts its working corpus afresh from the seeds next time.
//!
//! With seven targets (`scan`, `stream_redact`, `sse`, `translate_request`, `translate_stream`,
//! `policy`, `config`) the default of 30 s keeps the whole step at about four minutes once the build
//! is cached: 3.5 minutes of fuzzing, a few seconds to start each target, and a replay that stays
//! within each target's time. Scheduled or local runs that want more set `TANDEM_FUZZ_SECONDS`.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::setup::Tools;

/// How long each target fuzzes when `TANDEM_FUZZ_SECONDS` is not set: 30 s for each of the seven
/// targets keeps the CI step at about four minutes.
const DEFAULT_SECONDS: u64 = 30;
/// Overrides [`DEFAULT_SECONDS`].
const SECONDS_ENV: &str = "TANDEM_FUZZ_SECONDS";
/// libFuzzer's memory limit per target process.
const RSS_LIMIT_MB: u32 = 2048;
/// One input taking longer than this (seconds) is reported as a hang.
const INPUT_TIMEOUT_S: u32 = 30;
/// A working corpus with more files than this is started afresh from the seeds, so that repeated
/// runs on one machine cannot slow every start down without bound.
const MAX_WORKING_CORPUS_FILES: usize = 20_000;
/// The share of a target's time that replaying its working corpus may take before the working
/// corpus is started afresh.
const MAX_REPLAY_SHARE: f64 = 0.5;
/// Crash inputs up to this size are printed as hex.
const MAX_HEX_BYTES: u64 = 4096;

/// Builds and runs every fuzz target; `target_dir` is the workspace's cargo target directory.
pub(crate) fn run(root: &Path, target_dir: &Path) -> Result<()> {
    let tools = Tools::locate()?;
    if !tools.cargo_fuzz.exists() {
        bail!(
            "cargo-fuzz is missing at {}; run `cargo xtask setup` first",
            tools.cargo_fuzz.display()
        );
    }
    let seconds = seconds()?;
    let fuzz_dir = root.join("fuzz");
    let build_dir = target_dir.join("fuzz");
    let targets = list_targets(&tools.cargo_fuzz, &fuzz_dir)?;
    if targets.is_empty() {
        bail!(
            "`cargo fuzz list` found no fuzz targets in {}",
            fuzz_dir.display()
        );
    }
    eprintln!(
        "fuzz: {} target(s) ({}), {seconds}s each, built in {}",
        targets.len(),
        targets.join(" "),
        build_dir.display()
    );
    cmd::run(
        cargo_fuzz(&tools.cargo_fuzz, &fuzz_dir, "build")
            .arg("--target-dir")
            .arg(&build_dir),
    )?;
    for target in &targets {
        run_target(&tools.cargo_fuzz, &fuzz_dir, &build_dir, target, seconds)
            .with_context(|| format!("fuzz target `{target}` failed"))?;
    }
    Ok(())
}

/// `TANDEM_FUZZ_SECONDS` as a positive number of seconds, else [`DEFAULT_SECONDS`].
fn seconds() -> Result<u64> {
    let Some(value) = std::env::var_os(SECONDS_ENV).filter(|value| !value.is_empty()) else {
        return Ok(DEFAULT_SECONDS);
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(seconds),
        _ => bail!("{SECONDS_ENV} must be a positive number of seconds, got `{text}`"),
    }
}

/// A `cargo fuzz SUBCOMMAND` command for the project in `fuzz_dir`, able to pass `-Z` flags.
fn cargo_fuzz(cargo_fuzz: &Path, fuzz_dir: &Path, subcommand: &str) -> Command {
    // Invoked directly, a cargo subcommand binary expects its own name as the first argument.
    let mut command = cmd::new(cargo_fuzz, ["fuzz", subcommand, "--fuzz-dir"]);
    command.arg(fuzz_dir).env("RUSTC_BOOTSTRAP", "1");
    command
}

/// The target names that `cargo fuzz list` prints.
fn list_targets(cargo_fuzz_path: &Path, fuzz_dir: &Path) -> Result<Vec<String>> {
    let mut command = cargo_fuzz(cargo_fuzz_path, fuzz_dir, "list");
    let line = cmd::display(&command);
    let captured = cmd::capture(&mut command)?;
    if !captured.success {
        bail!("`{line}` failed:\n{}", captured.stderr.trim_end());
    }
    Ok(captured
        .stdout
        .lines()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect())
}

fn run_target(
    cargo_fuzz_path: &Path,
    fuzz_dir: &Path,
    build_dir: &Path,
    target: &str,
    seconds: u64,
) -> Result<()> {
    let working = build_dir.join("corpus").join(target);
    let kept = files_in(&working)?.len();
    if kept > MAX_WORKING_CORPUS_FILES {
        eprintln!(
            "fuzz: {target}: working corpus has {kept} files (over {MAX_WORKING_CORPUS_FILES}); starting it afresh"
        );
        fs::remove_dir_all(&working)
            .with_context(|| format!("cannot remove {}", working.display()))?;
    }
    fs::create_dir_all(&working).with_context(|| format!("cannot create {}", working.display()))?;
    let seeds = fuzz_dir.join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let before = files_in(&artifacts)?;
    let mut command = cargo_fuzz(cargo_fuzz_path, fuzz_dir, "run");
    command
        .arg("--target-dir")
        .arg(build_dir)
        .arg(target)
        // libFuzzer writes new inputs to the first corpus directory only.
        .arg(&working);
    if seeds.is_dir() {
        command.arg(&seeds);
    }
    command.arg("--").args([
        format!("-max_total_time={seconds}"),
        format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        format!("-timeout={INPUT_TIMEOUT_S}"),
        "-print_final_stats=1".to_owned(),
    ]);
    if let Some(dict) = dictionary(target).map(|name| fuzz_dir.join(name))
        && dict.is_file()
    {
        command.arg(format!("-dict={}", dict.display()));
    }
    eprintln!("==> fuzz {target} for {seconds}s");
    let err = match run_fuzzer(&mut command) {
        Ok(replay) => {
            if replay.is_none_or(|replay| {
                replay > Duration::from_secs(seconds).mul_f64(MAX_REPLAY_SHARE)
            }) {
                eprintln!(
                    "fuzz: {target}: replaying the working corpus took {} of the {seconds}s; \
                     it starts afresh from the seeds next time",
                    replay.map_or_else(|| "all".to_owned(), |r| format!("{}s", r.as_secs())),
                );
                fs::remove_dir_all(&working)
                    .with_context(|| format!("cannot remove {}", working.display()))?;
            }
            return Ok(());
        }
        Err(err) => err,
    };
    let found: Vec<PathBuf> = files_in(&artifacts)?.difference(&before).cloned().collect();
    if found.is_empty() {
        eprintln!(
            "fuzz: {target} failed and saved no new input in {}",
            artifacts.display()
        );
    }
    for input in &found {
        report_input(target, input);
    }
    Err(err)
}

/// What libFuzzer prints once it has run every input of its corpus.
const INITED: &[u8] = b"\tINITED ";

/// Runs `command` (`cargo fuzz run`), passing its stderr through, and fails unless it exits
/// successfully; returns how long it took until libFuzzer had replayed its corpus (its `INITED`
/// line), or `None` when that line never came.
fn run_fuzzer(command: &mut Command) -> Result<Option<Duration>> {
    let line = cmd::display(command);
    let started = Instant::now();
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let mut replay = None;
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut out = std::io::stderr().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("cannot read the output of `{line}`"))?;
            if read == 0 {
                break;
            }
            // Passing the output on is best effort; the exit status decides.
            let _ = out.write_all(&buf);
            // libFuzzer's status line: `#484\tINITED cov: …`.
            if replay.is_none() && buf.windows(INITED.len()).any(|w| w == INITED) {
                replay = Some(started.elapsed());
            }
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed with {status}");
    }
    Ok(replay)
}

/// The libFuzzer dictionary in `fuzz/` for `target`: the tokens its parser keys on.
fn dictionary(target: &str) -> Option<&'static str> {
    match target {
        "scan" | "stream_redact" => Some("dlp.dict"),
        "sse" | "translate_request" | "translate_stream" => Some("translate.dict"),
        "policy" => Some("policy.dict"),
        "config" => Some("config.dict"),
        _ => None,
    }
}

/// Prints where a failing input is, its bytes as hex when small, and how to reproduce it.
fn report_input(target: &str, input: &Path) {
    eprintln!("fuzz: {target}: failing input saved at {}", input.display());
    match fs::metadata(input) {
        Ok(meta) if meta.len() <= MAX_HEX_BYTES => match fs::read(input) {
            Ok(bytes) => eprintln!(
                "fuzz: {target}: input as hex ({} bytes; `xxd -r -p` restores it):\n{}",
                bytes.len(),
                hex(&bytes)
            ),
            Err(err) => eprintln!("fuzz: cannot read {}: {err}", input.display()),
        },
        Ok(meta) => eprintln!(
            "fuzz: {target}: input is {} bytes, too long to print",
            meta.len()
        ),
        Err(err) => eprintln!("fuzz: cannot stat {}: {err}", input.display()),
    }
    eprintln!(
        "fuzz: reproduce from the repository root with `RUSTC_BOOTSTRAP=1 cargo fuzz run {target} {}`",
        input.display()
    );
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex, 64 bytes a line.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + bytes.len() / 64);
    for (index, byte) in bytes.iter().enumerate() {
        if index > 0 && index % 64 == 0 {
            out.push('\n');
        }
        for nibble in [byte >> 4, byte & 0xf] {
            out.push(char::from(HEX_DIGITS[usize::from(nibble)]));
        }
    }
    out
}

/// The files directly in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    if !dir.exists() {
        return Ok(BTreeSet::new());
    }
    let mut files = BTreeSet::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry
            .file_type()
            .with_context(|| format!("cannot stat {}", entry.path().display()))?
            .is_file()
        {
            files.insert(entry.path());
        }
    }
    Ok(files)
}

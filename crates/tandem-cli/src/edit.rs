//! `tandem edit "<instruction>" FILES… [--yes]`: a live spot edit through a `tandem serve`. Without
//! a terminal UI it prints each edit's diff as the model streams it; `--yes` writes the result,
//! records it in the audit ledger and commits it on `tandem/<slug>` with provenance trailers.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use tandem_agent::edit::{EditOptions, Progress};
use tandem_agent::model::Endpoint;

/// Options of `tandem edit`.
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// What to change.
    pub instruction: String,
    /// The files to edit.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Apply, record and commit the edit without asking.
    #[arg(long)]
    pub yes: bool,
    /// The `tandem serve` to use.
    #[arg(long, env = "TANDEM_URL", default_value = "http://127.0.0.1:4000")]
    pub server: String,
    /// A Tandem API key or OIDC token for that server.
    #[arg(long, env = "TANDEM_API_KEY", hide_env_values = true)]
    pub token: Option<String>,
    /// The model or tier alias.
    #[arg(long, default_value = "tandem-live")]
    pub model: String,
    /// Read steers from standard input while the model streams: each paragraph (ended by an empty
    /// line) stops the current answer and redirects it.
    #[arg(long)]
    pub steer: bool,
    /// Hand this to the deep agent (`tandem task`) instead.
    #[arg(long)]
    pub deep: bool,
    /// Run the governed pipeline in this process (from `--config`, as `tandem serve` would)
    /// instead of calling a running `tandem serve`.
    #[arg(long)]
    pub in_process: bool,
    /// The configuration for `--in-process` (default: as for `tandem serve`).
    #[arg(long, requires = "in_process")]
    pub config: Option<PathBuf>,
    /// Never hand over to the deep agent, even when the pace router would.
    #[arg(long, conflicts_with = "deep")]
    pub no_escalate: bool,
}

/// Runs the edit; exit 1 when it fails.
pub async fn run(mut args: EditArgs) -> anyhow::Result<ExitCode> {
    if args.in_process {
        args.in_process = false;
        let config = args.config.take();
        return crate::inproc::InProcess::around(config.as_deref(), |server| {
            args.server = server;
            Box::pin(run(args))
        })
        .await;
    }
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let repo = git_root(&cwd)?;
    let mut files = Vec::new();
    for file in &args.files {
        let full = std::fs::canonicalize(cwd.join(file))
            .with_context(|| format!("{} does not exist", file.display()))?;
        let relative = full.strip_prefix(&repo).with_context(|| {
            format!(
                "{} is outside the repository {}",
                file.display(),
                repo.display()
            )
        })?;
        files.push(relative.to_string_lossy().into_owned());
    }
    let reason = if args.deep {
        Some("asked with --deep".to_owned())
    } else if args.no_escalate {
        None
    } else {
        tandem_agent::edit::escalation(&args.instruction, &files)
    };
    if let Some(reason) = reason {
        tracing::warn!("handing over to the deep agent: {reason}");
        let model = if args.model == "tandem-live" {
            "tandem-deep".to_owned()
        } else {
            args.model.clone()
        };
        return crate::task::run(crate::task::TaskArgs {
            in_process: false,
            config: None,
            goal: Some(format!(
                "{}\n\nFiles: {}",
                args.instruction,
                files.join(", ")
            )),
            resume: None,
            server: args.server,
            token: args.token,
            model,
            max_turns: 40,
            max_fix_rounds: 3,
        })
        .await;
    }
    let gates = gates(&repo, false)?;
    let options = EditOptions {
        gates: Some(gates),
        repo: repo.clone(),
        instruction: args.instruction.clone(),
        files,
        endpoint: Endpoint {
            base_url: args.server.clone(),
            token: args.token.clone(),
            model: args.model.clone(),
            session: None,
        },
        apply: args.yes,
    };
    // A person at a terminal gets the UI: the diff as it grows, Esc, steering, hunk review.
    if !args.yes && !args.steer && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return crate::tui::run(options).await;
    }
    let (steer_tx, mut steers) = tokio::sync::mpsc::unbounded_channel();
    if args.steer {
        std::thread::spawn(move || read_steers(&steer_tx));
    }
    let mut out = std::io::stdout().lock();
    let edit = tandem_agent::edit::run(&options, args.steer.then_some(&mut steers), |progress| {
        match progress {
            Progress::Text(_) => {}
            Progress::Edit { diff, .. } => {
                let _ = out.write_all(diff.as_bytes());
                let _ = out.flush();
            }
            Progress::Malformed(message) => {
                tracing::warn!("the model's edit block is malformed: {message}")
            }
            Progress::Rewriting(path) => {
                let _ = writeln!(
                    out,
                    "the edit did not apply; asking for the whole of {path}"
                );
            }
            Progress::Steered(steer) => {
                let first = steer.lines().next().unwrap_or_default();
                let _ = writeln!(out, "steered: {first}");
            }
        }
    });
    // Ctrl-C (or SIGINT from a script) stops the edit: dropping it closes the connection, and the
    // gateway cancels the upstream request at once. Nothing has been written yet.
    let outcome = tokio::select! {
        outcome = edit => outcome,
        _ = tokio::signal::ctrl_c() => {
            tracing::warn!("interrupted: the model request is cancelled and nothing was changed");
            return Ok(ExitCode::from(130));
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::error!("{err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match (&outcome.commit, outcome.ledger_index) {
        (Some((branch, commit)), Some(index)) => writeln!(
            out,
            "applied {} file(s); committed {} on {branch} (audit ledger entry {index})",
            outcome.changed.len(),
            &commit[..commit.len().min(12)]
        )?,
        _ => writeln!(
            out,
            "not applied: run again with --yes to write, record and commit it"
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The project's gates (`tandem.toml` at the repository root, else the defaults), with commands
/// run in a sandbox of the repository through `tandem __sandbox`; the command gates run when
/// `[gates] task` (for a task) or `[gates] live` (for an edit) says so.
pub(crate) fn gates(repo: &Path, task: bool) -> anyhow::Result<tandem_agent::edit::Gates> {
    let file = repo.join("tandem.toml");
    let project = tandem_config::load_project(file.exists().then_some(file.as_path()))
        .context("loading the project's tandem.toml")?;
    let me = std::env::current_exe().context("finding the tandem binary")?;
    let allowed = project.sandbox.allow_domains;
    let mut policy = tandem_sandbox::Policy::new(repo);
    if !allowed.is_empty() {
        policy.network = tandem_sandbox::Network::Allowlist { domains: allowed };
    }
    let sandbox = tandem_sandbox::Sandbox::new(policy, me)
        .context("preparing the sandbox for gate commands")?
        .with_helper_prefix(&["__sandbox"]);
    let settings = project.gates;
    Ok(tandem_agent::edit::Gates {
        commands: if task { settings.task } else { settings.live },
        config: settings.gates,
        sandbox: std::sync::Arc::new(sandbox),
    })
}

/// Sends each paragraph of standard input as a steer.
fn read_steers(tx: &tokio::sync::mpsc::UnboundedSender<String>) {
    let mut paragraph = String::new();
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            if !paragraph.trim().is_empty() && tx.send(std::mem::take(&mut paragraph)).is_err() {
                return;
            }
            paragraph.clear();
        } else {
            paragraph.push_str(&line);
            paragraph.push('\n');
        }
    }
    if !paragraph.trim().is_empty() {
        let _ = tx.send(paragraph);
    }
}

pub(crate) fn git_root(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!("{} is not in a git repository", dir.display());
    }
    let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    std::fs::canonicalize(&root).with_context(|| format!("resolving {root}"))
}

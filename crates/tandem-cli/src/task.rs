//! `tandem task "<goal>"`: the deep agent. Prints a progress line per model turn, tool and gate
//! run; ends with the summary and the commit. `--resume ID` continues a saved task.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use tandem_agent::model::Endpoint;
use tandem_agent::task::{TaskOptions, TaskProgress};

/// Options of `tandem task`.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// What to achieve.
    #[arg(required_unless_present = "resume")]
    pub goal: Option<String>,
    /// Continue the saved task with this id.
    #[arg(long)]
    pub resume: Option<String>,
    /// The `tandem serve` to use.
    #[arg(long, env = "TANDEM_URL", default_value = "http://127.0.0.1:4000")]
    pub server: String,
    /// A Tandem API key or OIDC token for that server.
    #[arg(long, env = "TANDEM_API_KEY", hide_env_values = true)]
    pub token: Option<String>,
    /// The model or tier alias.
    #[arg(long, default_value = "tandem-deep")]
    pub model: String,
    /// Most model calls.
    #[arg(long, default_value_t = 40)]
    pub max_turns: usize,
    /// Most times a failed gate goes back to the model.
    #[arg(long, default_value_t = 3)]
    pub max_fix_rounds: usize,
    /// Run the governed pipeline in this process instead of calling a running `tandem serve`.
    #[arg(long)]
    pub in_process: bool,
    /// The configuration for `--in-process` (default: as for `tandem serve`).
    #[arg(long, requires = "in_process")]
    pub config: Option<std::path::PathBuf>,
}

/// Runs the task; exit 1 when it fails, 130 when interrupted.
pub async fn run(mut args: TaskArgs) -> anyhow::Result<ExitCode> {
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
    let repo = crate::edit::git_root(&cwd)?;
    let gates = crate::edit::gates(&repo, true)?;
    let options = TaskOptions {
        repo,
        goal: args.goal.clone().unwrap_or_default(),
        endpoint: Endpoint {
            base_url: args.server.clone(),
            token: args.token.clone(),
            model: args.model.clone(),
            session: None,
        },
        gates,
        max_turns: args.max_turns,
        max_fix_rounds: args.max_fix_rounds,
        resume: args.resume.clone(),
    };
    // At a terminal an indicatif spinner shows the step in progress above the finished steps;
    // otherwise (CI, pipes) each step is one plain line.
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar.set_message("planning…");
        bar
    });
    let line = |text: String| match &bar {
        Some(bar) => bar.println(text),
        None => {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    };
    let task = tandem_agent::task::run(&options, |p| {
        let text = match p {
            TaskProgress::Say(text) => format!("· {}", text.lines().next().unwrap_or_default()),
            TaskProgress::Tool { name, args, result } => format!("→ {name} {args}  ⇒ {result}"),
            TaskProgress::Gates { passed: true, .. } => "✓ gates passed".to_owned(),
            TaskProgress::Gates { failures, .. } => {
                format!("✗ gates failed: {}", failures.join("; "))
            }
        };
        if let Some(bar) = &bar {
            bar.set_message(text.chars().take(60).collect::<String>());
        }
        line(text);
    });
    let outcome = tokio::select! {
        outcome = task => outcome,
        _ = tokio::signal::ctrl_c() => {
            tracing::warn!("interrupted: the model request is cancelled; resume with `tandem task --resume <id>` (see .git/tandem/tasks)");
            return Ok(ExitCode::from(130));
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match outcome {
        Ok(done) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", done.summary)?;
            if let (Some((branch, commit)), Some(index)) =
                (&done.change.commit, done.change.ledger_index)
            {
                writeln!(
                    out,
                    "committed {} on {branch} after {} turn(s) and {} fix round(s) (audit ledger entry {index})",
                    &commit[..commit.len().min(12)],
                    done.turns,
                    done.fix_rounds
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            tracing::error!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

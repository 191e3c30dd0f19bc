//! `tandem edit`: the live tier's spot edit. The instruction and the relevant regions go to the
//! model; its SEARCH/REPLACE (or diff, or `apply_patch`) blocks are applied as each one completes
//! in the stream; the result is written, recorded in the audit ledger and committed with trailers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tandem_audit::{ChangeEntry, FileChange};
use tandem_patch::{Event, Op, Parser, ParserConfig};

use crate::model::{Answer, Endpoint};
use crate::{Error, Result, git, model, prompt};

/// One live edit.
#[derive(Clone, Debug)]
pub struct EditOptions {
    /// The repository root; files are relative to it.
    pub repo: PathBuf,
    /// What to do.
    pub instruction: String,
    /// The files to edit (relative to `repo`).
    pub files: Vec<String>,
    /// The model, through a `tandem serve`.
    pub endpoint: Endpoint,
    /// Write, record and commit the result (`--yes`); otherwise only show it.
    pub apply: bool,
    /// The quality gates run before a change is kept; `None` runs none.
    pub gates: Option<Gates>,
}

/// The gates of an edit and where their commands run.
#[derive(Clone)]
pub struct Gates {
    /// The project's gates (`[gates]`); the DLP and dependency gates always run.
    pub config: tandem_gates::GatesConfig,
    /// Whether the command gates (test, lint, typecheck) run too (`[gates] live`).
    pub commands: bool,
    /// The sandbox the commands run in.
    pub sandbox: std::sync::Arc<tandem_sandbox::Sandbox>,
}

impl std::fmt::Debug for Gates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gates")
            .field("commands", &self.commands)
            .finish_non_exhaustive()
    }
}

/// Something to show while the edit streams.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// Model text as it arrives.
    Text(&'a str),
    /// One edit applied in memory, with its diff.
    Edit {
        /// The file.
        path: &'a str,
        /// Unified diff of this edit.
        diff: &'a str,
    },
    /// A block the parser could not read.
    Malformed(&'a str),
    /// The person redirected the edit; the current model call was stopped.
    Steered(&'a str),
    /// The edit blocks did not apply; the whole file is being asked for, with the original as
    /// the predicted output.
    Rewriting(&'a str),
}

/// A changed file.
#[derive(Clone, Debug)]
pub struct Changed {
    /// Path relative to the repository.
    pub path: String,
    /// Unified diff of the whole change to it.
    pub diff: String,
    /// The content before.
    pub original: String,
    /// The new content.
    pub content: String,
}

/// What an edit did.
#[derive(Clone, Debug)]
pub struct EditOutcome {
    /// The task id (the `Tandem-Task` trailer).
    pub task: String,
    /// Changed files.
    pub changed: Vec<Changed>,
    /// The model's answer and where it came from.
    pub answer: Answer,
    /// The audit ledger index of the change record, when applied.
    pub ledger_index: Option<u64>,
    /// The branch and commit, when applied.
    pub commit: Option<(String, String)>,
    /// The gates that ran and their results.
    pub checks: Vec<tandem_gates::GateResult>,
    /// The command that made it (`tandem edit`, `tandem task`), for the commit message.
    pub via: &'static str,
}

/// Applies edit blocks to the files in memory as they complete in the stream.
struct Applier<'a> {
    files: &'a [String],
    current: BTreeMap<String, String>,
    parser: Parser,
    failure: Option<Error>,
    /// Whether a bare fenced block is the whole new file (after asking for a rewrite).
    rewrite: bool,
}

impl Applier<'_> {
    fn parser(files: &[String], rewrite: bool) -> Parser {
        Parser::new(ParserConfig {
            default_path: (files.len() == 1).then(|| files[0].clone()),
            bare_fence_is_rewrite: rewrite,
        })
    }

    fn push(&mut self, text: &str, progress: &mut dyn FnMut(Progress<'_>)) {
        let events = self.parser.push(text);
        self.apply(events, progress);
    }

    /// The end of an answer: the last block, if complete.
    fn finish(&mut self, progress: &mut dyn FnMut(Progress<'_>)) {
        let parser = std::mem::replace(&mut self.parser, Applier::parser(self.files, self.rewrite));
        self.apply(parser.finish(), progress);
    }

    /// A steer cut the answer short: its unfinished block is dropped.
    fn restart(&mut self) {
        self.parser = Applier::parser(self.files, self.rewrite);
    }

    fn apply(&mut self, events: Vec<Event>, progress: &mut dyn FnMut(Progress<'_>)) {
        for event in events {
            match event {
                Event::Malformed { message, .. } => progress(Progress::Malformed(&message)),
                Event::Edit(edit) => {
                    if self.failure.is_some() {
                        continue;
                    }
                    let Some(path) = resolve(&edit.path, self.files) else {
                        self.failure = Some(Error::Model(format!(
                            "the model edited `{}`, which it was not given",
                            edit.path.as_deref().unwrap_or("?")
                        )));
                        continue;
                    };
                    if !matches!(edit.op, Op::Replace(_) | Op::Rewrite { .. }) {
                        self.failure = Some(Error::Model(format!(
                            "a live edit changes files in place; the model asked to create, delete or move `{path}`"
                        )));
                        continue;
                    }
                    let before = self.current.get(&path).cloned().unwrap_or_default();
                    match tandem_patch::apply(&before, &edit) {
                        Ok(applied) => {
                            let diff = tandem_patch::unified_diff(&path, &before, &applied.text);
                            progress(Progress::Edit {
                                path: &path,
                                diff: &diff,
                            });
                            self.current.insert(path, applied.text);
                        }
                        Err(err) => self.failure = Some(err.into()),
                    }
                }
            }
        }
    }
}

/// How a model call ended.
enum Call {
    Done(Result<Answer>),
    Steered(String),
}

/// Runs one live edit. Each message received on `steers` while the model streams stops the
/// current call at once and starts the next with what was generated so far and the new
/// instruction; edits already complete stay applied.
pub async fn run(
    options: &EditOptions,
    mut steers: Option<&mut tokio::sync::mpsc::UnboundedReceiver<String>>,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<EditOutcome> {
    let task = uuid::Uuid::now_v7().simple().to_string();
    let endpoint = Endpoint {
        session: Some(task.clone()),
        ..options.endpoint.clone()
    };
    let mut originals: BTreeMap<String, String> = BTreeMap::new();
    for path in &options.files {
        let full = options.repo.join(path);
        let text = std::fs::read_to_string(&full).map_err(|source| Error::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        originals.insert(path.clone(), text);
    }
    let files: Vec<(String, String)> = originals
        .iter()
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    let mut messages = prompt::messages(&options.instruction, &files);
    let mut applier = Applier {
        files: &options.files,
        current: originals.clone(),
        parser: Applier::parser(&options.files, false),
        failure: None,
        rewrite: false,
    };
    let answer = loop {
        let mut partial = String::new();
        let call = model::stream(&endpoint, messages.clone(), |text| {
            progress(Progress::Text(text));
            partial.push_str(text);
            applier.push(text, &mut progress);
        });
        let ended = match steers.as_deref_mut() {
            Some(rx) => tokio::select! {
                answer = call => Call::Done(answer),
                Some(steer) = rx.recv() => Call::Steered(steer),
            },
            None => Call::Done(call.await),
        };
        match ended {
            Call::Done(answer) => {
                let answer = answer?;
                applier.finish(&mut progress);
                break answer;
            }
            Call::Steered(steer) => {
                progress(Progress::Steered(&steer));
                applier.restart();
                messages.extend(prompt::steer(&partial, &steer));
            }
        }
    };
    // Fallback: edit blocks that do not apply become a whole-file rewrite, with the original
    // file as the predicted output (upstream, speculative decoding turns most of it into
    // verification rather than generation).
    let answer = match (applier.failure.take(), options.files.as_slice()) {
        (Some(Error::Apply(err)), [path]) => {
            progress(Progress::Rewriting(path));
            let original = originals[path].clone();
            messages.extend(prompt::rewrite(&answer.text, path, &err.to_string()));
            applier.current = originals.clone();
            applier.rewrite = true;
            applier.restart();
            let on_text = |text: &str| {
                progress(Progress::Text(text));
                applier.push(text, &mut progress);
            };
            let answer =
                model::stream_predicted(&endpoint, messages, Some(&original), on_text).await?;
            applier.finish(&mut progress);
            if let Some(err) = applier.failure.take() {
                return Err(err);
            }
            answer
        }
        (Some(err), _) => return Err(err),
        (None, _) => answer,
    };
    let current = applier.current;
    let changed: Vec<Changed> = current
        .iter()
        .filter(|(path, text)| originals.get(*path) != Some(*text))
        .map(|(path, text)| Changed {
            path: path.clone(),
            diff: tandem_patch::unified_diff(path, &originals[path], text),
            original: originals[path].clone(),
            content: text.clone(),
        })
        .collect();
    if changed.is_empty() {
        return Err(Error::NoEdit);
    }
    let outcome = EditOutcome {
        task,
        changed,
        answer,
        ledger_index: None,
        commit: None,
        checks: Vec::new(),
        via: "tandem edit",
    };
    if options.apply {
        return accept(options, outcome).await;
    }
    Ok(outcome)
}

/// Writes an edit's changed files, records the change in the audit ledger and commits it on
/// `tandem/<slug>` with provenance trailers. `outcome.changed` may have been narrowed to the hunks
/// the person accepted (see [`select`]).
pub async fn accept(options: &EditOptions, mut outcome: EditOutcome) -> Result<EditOutcome> {
    outcome.changed.retain(|c| c.content != c.original);
    if outcome.changed.is_empty() {
        return Err(Error::NoEdit);
    }
    {
        for file in &outcome.changed {
            std::fs::write(options.repo.join(&file.path), &file.content).map_err(|source| {
                Error::Io {
                    action: "writing",
                    path: file.path.clone(),
                    source,
                }
            })?;
        }
        // A task has run its gates already, on the same files.
        if outcome.checks.is_empty() {
            outcome.checks = run_gates(options, &outcome);
        }
        if !tandem_gates::passed(&outcome.checks) {
            // Put the files back: a change that fails its gates is not kept.
            for file in &outcome.changed {
                let _ = std::fs::write(options.repo.join(&file.path), &file.original);
            }
            let failed: Vec<String> = outcome
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| {
                    let why = c.findings.first().cloned().unwrap_or_else(|| {
                        c.output_tail.lines().last().unwrap_or_default().to_owned()
                    });
                    format!("{} ({why})", c.name)
                })
                .collect();
            return Err(Error::Gates(failed.join("; ")));
        }
        let index = record(options, &outcome).await?;
        outcome.ledger_index = Some(index);
        let message = commit_message(options, &outcome, index);
        let paths: Vec<String> = outcome.changed.iter().map(|c| c.path.clone()).collect();
        outcome.commit = Some(git::commit_on_branch(
            &options.repo,
            &git::slug(&options.instruction),
            &paths,
            &message,
        )?);
    }
    Ok(outcome)
}

/// Keeps only the accepted hunks of a changed file (one flag per hunk of
/// `tandem_patch::hunks(&changed.original, &changed.content)`).
pub fn select(changed: &Changed, accepted: &[bool]) -> Changed {
    let hunks = tandem_patch::hunks(&changed.original, &changed.content);
    let content = tandem_patch::apply_selected(&changed.original, &hunks, accepted);
    Changed {
        path: changed.path.clone(),
        diff: tandem_patch::unified_diff(&changed.path, &changed.original, &content),
        original: changed.original.clone(),
        content,
    }
}

/// Runs the configured gates on the written change.
pub(crate) fn run_gates(
    options: &EditOptions,
    outcome: &EditOutcome,
) -> Vec<tandem_gates::GateResult> {
    let Some(gates) = &options.gates else {
        return Vec::new();
    };
    let mut config = gates.config.clone();
    if !gates.commands {
        config.test = None;
        config.lint = None;
        config.typecheck = None;
    }
    const MANIFESTS: [&str; 4] = ["Cargo.toml", "package.json", "pyproject.toml", "go.mod"];
    let change = tandem_gates::Change {
        workspace: options.repo.clone(),
        diff: outcome.changed.iter().map(|c| c.diff.as_str()).collect(),
        manifests: outcome
            .changed
            .iter()
            .filter(|c| {
                MANIFESTS
                    .iter()
                    .any(|m| c.path.rsplit('/').next() == Some(*m))
            })
            .map(|c| tandem_gates::ManifestChange {
                path: c.path.clone(),
                old: Some(c.original.clone()),
                new: Some(c.content.clone()),
            })
            .collect(),
    };
    let runner = tandem_gates::SandboxRunner::new(&gates.sandbox);
    let env = |name: &str| std::env::var(name).ok();
    let licenses = tandem_gates::LocalLicenses::for_workspace(&options.repo, &env);
    tandem_gates::run_all(&config, &change, &runner, &licenses)
}

/// Whether the pace router sends this instruction to the deep tier (its reason when it does):
/// the instruction and the file names are routed as `model: auto` would be, with the gateway's
/// default rules (several files named, deep verbs, refactors and migrations…).
pub fn escalation(instruction: &str, files: &[String]) -> Option<String> {
    use tandem_protocol::{ChatRequest, Message, Role};
    let router =
        tandem_router::Router::new(tandem_router::RouterConfig::new("live", "deep")).ok()?;
    let text = format!("{instruction}\n\nFiles: {}", files.join(", "));
    let request = ChatRequest::new("auto", vec![Message::text(Role::User, text)]);
    let decision = router.route(&tandem_router::extract(
        &request,
        &tandem_router::SessionFacts::default(),
    ));
    (decision.tier == "deep").then_some(decision.reason)
}

/// The task class of an instruction (`rename`, `fix`, `test`, …), as the pace router classifies it;
/// recorded with the change so `tandem report` can group changes by class.
pub fn classify(instruction: &str, files: &[String]) -> &'static str {
    use tandem_protocol::{ChatRequest, Message, Role};
    let text = format!("{instruction}\n\nFiles: {}", files.join(", "));
    let request = ChatRequest::new("auto", vec![Message::text(Role::User, text)]);
    tandem_router::extract(&request, &tandem_router::SessionFacts::default())
        .task_class
        .as_str()
}

/// The path an edit names, among the files given; the only file when it names none.
fn resolve(path: &Option<String>, files: &[String]) -> Option<String> {
    match path {
        Some(p) => {
            let p = p.trim_start_matches("./");
            files.iter().find(|f| f.as_str() == p).cloned()
        }
        None if files.len() == 1 => files.first().cloned(),
        None => None,
    }
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Lines added and removed in a unified diff.
fn counts(diff: &str) -> (u64, u64) {
    let mut added = 0;
    let mut removed = 0;
    for line in diff.lines() {
        if line.starts_with('+') && !line.starts_with("+++") {
            added += 1;
        } else if line.starts_with('-') && !line.starts_with("---") {
            removed += 1;
        }
    }
    (added, removed)
}

fn tier(outcome: &EditOutcome) -> String {
    outcome
        .answer
        .tier
        .clone()
        .unwrap_or_else(|| "live".to_owned())
}

fn decided_by(repo: &Path) -> String {
    git::user_name(repo)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Records the change in the server's audit ledger; returns its index.
async fn record(options: &EditOptions, outcome: &EditOutcome) -> Result<u64> {
    let diff: String = outcome.changed.iter().map(|c| c.diff.as_str()).collect();
    let entry = ChangeEntry {
        task: outcome.task.clone(),
        tier: Some(tier(outcome)),
        class: Some(classify(&options.instruction, &options.files).to_owned()),
        requests: outcome.answer.request_id.iter().cloned().collect(),
        repository: Some(options.repo.display().to_string()),
        files: outcome
            .changed
            .iter()
            .map(|c| {
                let (added, removed) = counts(&c.diff);
                FileChange {
                    path: c.path.clone(),
                    sha256: Some(sha256(&c.content)),
                    added,
                    removed,
                }
            })
            .collect(),
        diff_sha256: sha256(&diff),
        checks: outcome
            .checks
            .iter()
            .map(|c| tandem_audit::CheckRun {
                name: c.name.clone(),
                command: c.command.clone(),
                passed: c.passed,
                duration_ms: c.duration_ms,
            })
            .collect(),
        accepted: true,
        decided_by: Some(decided_by(&options.repo)),
        reason: Some("accepted by the person; every gate that ran passed".to_owned()),
        ..ChangeEntry::default()
    };
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/v1/tandem/changes",
            options.endpoint.base_url.trim_end_matches('/')
        ))
        .json(&entry);
    if let Some(token) = &options.endpoint.token {
        request = request.bearer_auth(token);
    }
    let resp = request
        .send()
        .await
        .map_err(|e| Error::Record(e.to_string()))?;
    let status = resp.status();
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| Error::Record(e.to_string()))?;
    if !status.is_success() {
        return Err(Error::Record(format!("{status}: {body}")));
    }
    body["index"]
        .as_u64()
        .ok_or_else(|| Error::Record(format!("no index in {body}")))
}

/// The commit message: the instruction, who initiated it, the files, the gates, why it was
/// accepted, and the provenance trailers.
fn commit_message(options: &EditOptions, outcome: &EditOutcome, index: u64) -> String {
    let mut subject: String = options
        .instruction
        .lines()
        .next()
        .unwrap_or("edit")
        .chars()
        .take(72)
        .collect();
    if subject.is_empty() {
        subject = "edit".to_owned();
    }
    let mut body = format!(
        "{subject}\n\nInitiated by {} with `{}`.\n\nFiles:\n",
        decided_by(&options.repo),
        outcome.via
    );
    for c in &outcome.changed {
        let (added, removed) = counts(&c.diff);
        body.push_str(&format!("- {} (+{added} -{removed})\n", c.path));
    }
    if outcome.checks.is_empty() {
        body.push_str("\nGates: none run.\n");
    } else {
        body.push_str("\nGates:\n");
        for c in &outcome.checks {
            let verdict = if c.passed { "passed" } else { "FAILED" };
            body.push_str(&format!(
                "- {}: {verdict} in {} ms\n",
                c.name, c.duration_ms
            ));
        }
    }
    body.push_str("Accepted: applied with --yes.\n\n");
    let model = outcome
        .answer
        .target
        .clone()
        .unwrap_or_else(|| options.endpoint.model.clone());
    body.push_str(&format!(
        "Assisted-by: tandem:{}/{model}\nTandem-Task: {}\nTandem-Ledger: {index}\n",
        tier(outcome),
        outcome.task
    ));
    body
}

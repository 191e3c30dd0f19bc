//! `tandem task`: the deep tier's agent. It plans, then works in a tool loop (read, list, search,
//! apply a patch, run a command in the sandbox, finish), through a `tandem serve` like every model
//! call. When it finishes, the gates run (commands included); a failure goes back to the model to
//! fix, a pass is recorded in the audit ledger and committed with provenance. Each turn is saved,
//! so an interrupted task can be resumed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::edit::{Changed, EditOptions, EditOutcome, Gates};
use crate::model::{Answer, Endpoint};
use crate::{Error, Result};

/// Most bytes of a tool's output sent back to the model.
const MAX_TOOL_OUTPUT: usize = 16 * 1024;
/// How long one `run` may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

const SYSTEM: &str = "You are Tandem's deep agent, working in a git repository. First state a short \
plan, then use the tools: read_file, list_files, search, apply_patch (Codex apply_patch format or \
SEARCH/REPLACE blocks), run (a shell command in a sandbox with no network), and finish with a summary \
when the goal is met. After you finish, the project's gates run; if one fails you will be told why \
and must fix it.";

/// One deep task.
#[derive(Clone, Debug)]
pub struct TaskOptions {
    /// The repository root.
    pub repo: PathBuf,
    /// What to achieve.
    pub goal: String,
    /// The model, through a `tandem serve`.
    pub endpoint: Endpoint,
    /// The gates (commands included) and the sandbox that commands run in.
    pub gates: Gates,
    /// Most model calls.
    pub max_turns: usize,
    /// Most times a failed gate goes back to the model.
    pub max_fix_rounds: usize,
    /// Resume this saved task instead of starting one.
    pub resume: Option<String>,
}

/// Progress to show.
#[derive(Clone, Copy, Debug)]
pub enum TaskProgress<'a> {
    /// The model said something (a plan, a note).
    Say(&'a str),
    /// A tool ran: its name, its argument summary and the first line of its result.
    Tool {
        /// The tool.
        name: &'a str,
        /// What it was asked.
        args: &'a str,
        /// The first line of what it answered.
        result: &'a str,
    },
    /// The gates ran.
    Gates {
        /// Whether all passed.
        passed: bool,
        /// `name: why` of each failure.
        failures: &'a [String],
    },
}

/// A saved task, resumable.
#[derive(serde::Serialize, serde::Deserialize)]
struct Session {
    id: String,
    goal: String,
    messages: Vec<Value>,
    requests: Vec<String>,
    fix_rounds: usize,
}

/// What a task did.
#[derive(Clone, Debug)]
pub struct TaskOutcome {
    /// The change, committed.
    pub change: EditOutcome,
    /// The model's final summary.
    pub summary: String,
    /// Model calls made in this run.
    pub turns: usize,
    /// Times a failed gate went back to the model.
    pub fix_rounds: usize,
}

fn tools() -> Value {
    let tool = |name: &str, description: &str, params: Value| json!({"type": "function", "function": {"name": name, "description": description, "parameters": params}});
    let path =
        json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]});
    json!([
        tool("read_file", "Read a file of the repository.", path),
        tool(
            "list_files",
            "List files under a directory (default: the repository).",
            json!({"type": "object", "properties": {"path": {"type": "string"}}})
        ),
        tool(
            "search",
            "Search files for a regular expression; answers path:line: text.",
            json!({"type": "object", "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}}, "required": ["pattern"]})
        ),
        tool(
            "apply_patch",
            "Apply a patch (apply_patch format or SEARCH/REPLACE blocks).",
            json!({"type": "object", "properties": {"patch": {"type": "string"}}, "required": ["patch"]})
        ),
        tool(
            "run",
            "Run a shell command in the repository, sandboxed, without network.",
            json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})
        ),
        tool(
            "finish",
            "Say the goal is met, with a summary of what changed and why.",
            json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]})
        ),
    ])
}

/// Where tasks are saved: inside the git directory, out of the work tree.
fn session_path(repo: &Path, id: &str) -> Result<PathBuf> {
    let git_dir = crate::git::git_dir(repo)?;
    Ok(git_dir
        .join("tandem")
        .join("tasks")
        .join(format!("{id}.json")))
}

fn save(repo: &Path, session: &Session) -> Result<()> {
    let path = session_path(repo, &session.id)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "creating",
            path: dir.display().to_string(),
            source,
        })?;
    }
    let text = serde_json::to_vec_pretty(session).map_err(|e| Error::Record(e.to_string()))?;
    std::fs::write(&path, text).map_err(|source| Error::Io {
        action: "saving the task to",
        path: path.display().to_string(),
        source,
    })
}

/// Runs (or resumes) a task to a committed change.
pub async fn run(
    options: &TaskOptions,
    mut progress: impl FnMut(TaskProgress<'_>),
) -> Result<TaskOutcome> {
    let mut session = match &options.resume {
        Some(id) => {
            let path = session_path(&options.repo, id)?;
            let text = std::fs::read(&path).map_err(|source| Error::Io {
                action: "reading the saved task",
                path: path.display().to_string(),
                source,
            })?;
            serde_json::from_slice(&text)
                .map_err(|e| Error::Record(format!("saved task {id}: {e}")))?
        }
        None => Session {
            id: uuid::Uuid::now_v7().simple().to_string(),
            goal: options.goal.clone(),
            messages: vec![
                json!({"role": "system", "content": SYSTEM}),
                json!({"role": "user", "content": options.goal}),
            ],
            requests: Vec::new(),
            fix_rounds: 0,
        },
    };
    let endpoint = crate::model::Endpoint {
        session: Some(session.id.clone()),
        ..options.endpoint.clone()
    };
    for turn in 1..=options.max_turns {
        save(&options.repo, &session)?;
        let (message, answer) =
            crate::model::complete(&endpoint, &session.messages, &tools()).await?;
        session.requests.extend(answer.request_id.clone());
        session.messages.push(message.clone());
        if let Some(text) = message["content"].as_str().filter(|t| !t.trim().is_empty()) {
            progress(TaskProgress::Say(text));
        }
        let calls = message["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut finished: Option<String> = None;
        if calls.is_empty() {
            finished = Some(message["content"].as_str().unwrap_or_default().to_owned());
        }
        for call in &calls {
            let id = call["id"].as_str().unwrap_or_default();
            let name = call["function"]["name"].as_str().unwrap_or_default();
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("{}"))
                    .unwrap_or(Value::Null);
            let result = if name == "finish" {
                finished = Some(args["summary"].as_str().unwrap_or_default().to_owned());
                "finished; the gates run now".to_owned()
            } else {
                tool(options, name, &args).await
            };
            let shown = args.to_string();
            progress(TaskProgress::Tool {
                name,
                args: &shown[..shown.len().min(120)],
                result: result.lines().next().unwrap_or_default(),
            });
            session
                .messages
                .push(json!({"role": "tool", "tool_call_id": id, "content": result}));
        }
        let Some(summary) = finished else { continue };
        let mut change = changes(options, &session, &answer)?;
        if change.changed.is_empty() {
            return Err(Error::NoEdit);
        }
        // A resumed task has no goal on the command line: the saved one names the branch.
        let edit_options = edit_options(options, &session.goal);
        change.checks = crate::edit::run_gates(&edit_options, &change);
        let failures: Vec<String> = change
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| {
                let why = c.findings.first().cloned().unwrap_or_else(|| {
                    c.output_tail
                        .trim()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .to_owned()
                });
                format!("{}: {why}", c.name)
            })
            .collect();
        progress(TaskProgress::Gates {
            passed: failures.is_empty(),
            failures: &failures,
        });
        if failures.is_empty() {
            let change = crate::edit::accept(&edit_options, change).await?;
            save(&options.repo, &session)?;
            return Ok(TaskOutcome {
                change,
                summary,
                turns: turn,
                fix_rounds: session.fix_rounds,
            });
        }
        if session.fix_rounds >= options.max_fix_rounds {
            return Err(Error::Gates(failures.join("; ")));
        }
        session.fix_rounds += 1;
        let tails: String = change
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| {
                format!(
                    "## {}\n{}\n{}\n",
                    c.name,
                    c.findings.join("\n"),
                    c.output_tail
                )
            })
            .collect();
        session.messages.push(json!({
            "role": "user",
            "content": format!("The gates failed:\n{tails}\nFix the problems, then call finish again."),
        }));
    }
    save(&options.repo, &session)?;
    Err(Error::Model(format!(
        "no finished change after {} model calls; resume with `tandem task --resume {}`",
        options.max_turns, session.id
    )))
}

fn edit_options(options: &TaskOptions, goal: &str) -> EditOptions {
    EditOptions {
        repo: options.repo.clone(),
        instruction: goal.to_owned(),
        files: Vec::new(),
        endpoint: options.endpoint.clone(),
        apply: true,
        gates: Some(options.gates.clone()),
    }
}

/// The files the task changed (against `HEAD`), as an edit outcome.
fn changes(options: &TaskOptions, session: &Session, answer: &Answer) -> Result<EditOutcome> {
    let mut changed = Vec::new();
    for path in crate::git::changed_paths(&options.repo)? {
        let original = crate::git::head_content(&options.repo, &path).unwrap_or_default();
        let content = std::fs::read_to_string(options.repo.join(&path)).unwrap_or_default();
        changed.push(Changed {
            diff: tandem_patch::unified_diff(&path, &original, &content),
            path,
            original,
            content,
        });
    }
    Ok(EditOutcome {
        task: session.id.clone(),
        changed,
        answer: Answer {
            request_id: session.requests.last().cloned(),
            ..answer.clone()
        },
        ledger_index: None,
        commit: None,
        checks: Vec::new(),
        via: "tandem task",
    })
}

/// Runs one tool; its answer (or error) as text for the model.
async fn tool(options: &TaskOptions, name: &str, args: &Value) -> String {
    let text = |key: &str| args[key].as_str().unwrap_or_default().to_owned();
    let result = match name {
        "read_file" => inside(&options.repo, &text("path")).and_then(|p| {
            std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", text("path")))
        }),
        "list_files" => list(&options.repo, &text("path")),
        "search" => search(&options.repo, &text("pattern"), &text("path")),
        "apply_patch" => patch(&options.repo, &text("patch")),
        "run" => run_command(&options.gates.sandbox, &text("command")).await,
        other => Err(format!("unknown tool `{other}`")),
    };
    let mut out = result.unwrap_or_else(|e| format!("error: {e}"));
    if out.len() > MAX_TOOL_OUTPUT {
        let mut cut = MAX_TOOL_OUTPUT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n… (cut)");
    }
    out
}

/// A path inside the repository (no escaping through `..` or symlinks).
fn inside(repo: &Path, path: &str) -> std::result::Result<PathBuf, String> {
    let full = repo.join(path.trim_start_matches('/'));
    let resolved = full.canonicalize().map_err(|e| format!("{path}: {e}"))?;
    if resolved.starts_with(repo) {
        Ok(resolved)
    } else {
        Err(format!("{path} is outside the repository"))
    }
}

fn walk(repo: &Path, under: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let root = if under.is_empty() {
        repo.to_path_buf()
    } else {
        inside(repo, under)?
    };
    let mut files = Vec::new();
    for entry in ignore::WalkBuilder::new(&root)
        .hidden(true)
        .build()
        .flatten()
    {
        if entry.file_type().is_some_and(|t| t.is_file()) {
            files.push(entry.into_path());
        }
    }
    files.sort();
    Ok(files)
}

fn relative(repo: &Path, path: &Path) -> String {
    path.strip_prefix(repo)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn list(repo: &Path, under: &str) -> std::result::Result<String, String> {
    let files = walk(repo, under)?;
    Ok(files
        .iter()
        .take(500)
        .map(|p| relative(repo, p))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn search(repo: &Path, pattern: &str, under: &str) -> std::result::Result<String, String> {
    let re = regex::Regex::new(pattern).map_err(|e| format!("bad pattern: {e}"))?;
    let mut hits = Vec::new();
    for file in walk(repo, under)? {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if re.is_match(line) {
                hits.push(format!(
                    "{}:{}: {}",
                    relative(repo, &file),
                    n + 1,
                    line.trim()
                ));
                if hits.len() >= 200 {
                    return Ok(hits.join("\n"));
                }
            }
        }
    }
    Ok(if hits.is_empty() {
        "no matches".to_owned()
    } else {
        hits.join("\n")
    })
}

fn patch(repo: &Path, text: &str) -> std::result::Result<String, String> {
    let events = tandem_patch::parse(
        text,
        tandem_patch::ParserConfig {
            default_path: None,
            bare_fence_is_rewrite: false,
        },
    );
    let mut applied = 0;
    for event in events {
        let edit = match event {
            tandem_patch::Event::Edit(edit) => edit,
            tandem_patch::Event::Malformed { message, .. } => {
                return Err(format!("malformed patch: {message}"));
            }
        };
        let path = edit.path.clone().ok_or("an edit names no file")?;
        let full = repo.join(path.trim_start_matches('/'));
        let parent_ok = full
            .parent()
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|p| p.starts_with(repo));
        if !parent_ok {
            return Err(format!("{path} is outside the repository"));
        }
        let before = std::fs::read_to_string(&full).unwrap_or_default();
        match &edit.op {
            tandem_patch::Op::Delete => {
                std::fs::remove_file(&full).map_err(|e| format!("deleting {path}: {e}"))?;
            }
            tandem_patch::Op::Move { to } => {
                std::fs::rename(&full, repo.join(to)).map_err(|e| format!("moving {path}: {e}"))?;
            }
            _ => {
                let after = tandem_patch::apply(&before, &edit).map_err(|e| e.to_string())?;
                std::fs::write(&full, after.text).map_err(|e| format!("writing {path}: {e}"))?;
            }
        }
        applied += 1;
    }
    Ok(format!("applied {applied} edit(s)"))
}

async fn run_command(
    sandbox: &Arc<tandem_sandbox::Sandbox>,
    command: &str,
) -> std::result::Result<String, String> {
    let mut cmd = sandbox
        .command("sh", ["-c", command])
        .map_err(|e| e.to_string())?;
    cmd.stdin(std::process::Stdio::null());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("timed out after {} s", RUN_TIMEOUT.as_secs()))?
        .map_err(|e| format!("running: {e}"))?;
    let mut text = format!("exit {}\n", out.status.code().unwrap_or(-1));
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

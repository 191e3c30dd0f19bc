//! Request features: everything the router looks at, each one cheap and explainable.
//!
//! [`extract`] makes one pass over the canonical request. Text is scanned with automata built once
//! ([`FeatureExtractor`], shared through a `LazyLock`), so no pattern is compiled per call.
//!
//! Definitions (also in the crate README):
//! - *token estimate*: `ceil(chars / 4)` of message text (text parts, tool-call names and arguments,
//!   tool results, readable reasoning); tool declarations are not counted.
//! - *synthetic user text*: user text parts that clients inject rather than the person types. A part is
//!   synthetic when, after leading whitespace, it starts with one of [`SYNTHETIC_PREFIXES`]
//!   (`<environment_context>`, `<turn_aborted>`, `<system-reminder>`, `# AGENTS.md instructions`, ...).
//! - *real user message*: a user message with at least one non-synthetic text part; `turns` counts them and
//!   the *last user message* is the last of them (its non-synthetic parts only).
//! - *task class and verbs*: the [`KEYWORDS`] table, matched case-insensitively on word starts in the last
//!   user message, allowing the suffixes `s`, `es`, `ed`, `d`, `ing`, `ings` (so `fail` matches `failing`
//!   but `port` does not match `portable`); a word inside a path (`tests/`, `README.md`, `src/config.rs`)
//!   is not counted. Each hit adds its weight to its class; the class with the
//!   highest total wins, ties going to the earlier class in [`CLASS_PRIORITY`]; no hit gives `other`.
//!   Hits marked deep-leaning count in `deep_verbs`, live-leaning ones in `live_verbs`. Each named file
//!   also votes with weight 1 for the class its kind suggests ([`file_class`]).
//! - *files named*: distinct path-like tokens in the last user message (see [`is_path_like`]).
//! - *task text*: class, verbs and files come from the last real user message, unless it has no keyword
//!   hit and names no file (a bare steer such as "no, the other one"): then from the real user message
//!   before it. `last_user_tokens` always measures the last one.
//! - *tool errors*: tool results that report failure (see [`FeatureExtractor::output_failed`]).
//! - *interrupts*: user parts starting with `<turn_aborted>` (Codex's interrupt marker) plus
//!   [`SessionFacts::interrupts`].
//! - *steers*: real user messages that directly follow a tool result (input added while the agent was
//!   working, as Codex and Claude Code send it) plus [`SessionFacts::steers`].

use std::fmt;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize, Serializer};
use tandem_protocol::{ChatRequest, Part, ReasoningEffort, Role};

#[cfg(test)]
mod tests;

/// The router's task classes (also used by reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskClass {
    /// Mechanical spot edits: rename, typo, format, version bump.
    Rename,
    /// Bug fixes, failing builds or tests.
    Fix,
    /// Writing or changing tests.
    Test,
    /// Restructuring code without changing behaviour.
    Refactor,
    /// Migrations, upgrades, ports.
    Migration,
    /// Documentation, READMEs, comments.
    Docs,
    /// Configuration, CI, build files.
    Config,
    /// Anything else, including design and investigation questions (which count as deep verbs).
    Other,
}

impl TaskClass {
    /// Every class, in declaration order (the order of one-hot features and report rows).
    pub const ALL: [TaskClass; 8] = [
        TaskClass::Rename,
        TaskClass::Fix,
        TaskClass::Test,
        TaskClass::Refactor,
        TaskClass::Migration,
        TaskClass::Docs,
        TaskClass::Config,
        TaskClass::Other,
    ];

    /// The lowercase name used in configs, traces and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskClass::Rename => "rename",
            TaskClass::Fix => "fix",
            TaskClass::Test => "test",
            TaskClass::Refactor => "refactor",
            TaskClass::Migration => "migration",
            TaskClass::Docs => "docs",
            TaskClass::Config => "config",
            TaskClass::Other => "other",
        }
    }

    /// Parse the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        TaskClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Position in [`TaskClass::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for TaskClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts the gateway knows about the session, beyond the request itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionFacts {
    /// Failure signals recorded on this session (failed verifications, rejected patches, ...).
    pub prior_failures: u32,
    /// How often the same task was re-sent.
    pub retries: u32,
    /// Interrupts the gateway saw (client dropped the stream) that the history does not show.
    pub interrupts: u32,
    /// Steers the gateway saw that the history does not show.
    pub steers: u32,
    /// The session was already escalated to the deep tier.
    pub escalated: bool,
}

/// What the router looks at; every field is explainable.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Features {
    /// Estimated prompt tokens: `ceil(chars / 4)` of all message text.
    pub prompt_tokens: u64,
    /// Estimated tokens of the last real user message.
    pub last_user_tokens: u64,
    /// Real user messages.
    pub turns: u32,
    /// All messages, system and tool messages included.
    pub messages: u32,
    /// Declared tools.
    pub tools: u32,
    /// Requested reasoning effort.
    #[serde(serialize_with = "serialize_effort")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Distinct path-like tokens in the last user message.
    pub files_named: u32,
    /// Task class from the keyword table.
    pub task_class: TaskClass,
    /// Deep-leaning keyword hits in the last user message.
    pub deep_verbs: u32,
    /// Live-leaning keyword hits in the last user message.
    pub live_verbs: u32,
    /// Tool results in the history that report failure.
    pub tool_errors: u32,
    /// The latest tool result reports failure.
    pub trailing_tool_error: bool,
    /// `<turn_aborted>` markers in the history plus session interrupts.
    pub interrupts: u32,
    /// Steers in the history plus session steers.
    pub steers: u32,
    /// From [`SessionFacts::prior_failures`].
    pub prior_failures: u32,
    /// From [`SessionFacts::retries`].
    pub retries: u32,
    /// From [`SessionFacts::escalated`].
    pub escalated: bool,
}

fn serialize_effort<S: Serializer>(
    effort: &Option<ReasoningEffort>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match effort {
        Some(effort) => serializer.serialize_some(effort.as_str()),
        None => serializer.serialize_none(),
    }
}

impl Features {
    /// Every feature as `(name, value)` text, in declaration order (for explanations).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("prompt_tokens", self.prompt_tokens.to_string()),
            ("last_user_tokens", self.last_user_tokens.to_string()),
            ("turns", self.turns.to_string()),
            ("messages", self.messages.to_string()),
            ("tools", self.tools.to_string()),
            (
                "reasoning_effort",
                self.reasoning_effort
                    .map_or("none", ReasoningEffort::as_str)
                    .to_owned(),
            ),
            ("files_named", self.files_named.to_string()),
            ("task_class", self.task_class.as_str().to_owned()),
            ("deep_verbs", self.deep_verbs.to_string()),
            ("live_verbs", self.live_verbs.to_string()),
            ("tool_errors", self.tool_errors.to_string()),
            ("trailing_tool_error", self.trailing_tool_error.to_string()),
            ("interrupts", self.interrupts.to_string()),
            ("steers", self.steers.to_string()),
            ("prior_failures", self.prior_failures.to_string()),
            ("retries", self.retries.to_string()),
            ("escalated", self.escalated.to_string()),
        ]
    }
}

/// Which tier a keyword leans towards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lean {
    /// Counts in `deep_verbs`.
    Deep,
    /// Counts in `live_verbs`.
    Live,
    /// Only votes for a class.
    Neutral,
}

/// One entry of the keyword table.
#[derive(Clone, Copy, Debug)]
pub struct Keyword {
    /// The word or phrase (ASCII, lowercase; matched case-insensitively at a word start).
    pub word: &'static str,
    /// The class it votes for, if any.
    pub class: Option<TaskClass>,
    /// The vote's weight: 3 for a defining verb, 2 for a strong word, 1 for a hint.
    pub weight: u32,
    /// The tier it leans towards.
    pub lean: Lean,
}

const fn kw(word: &'static str, class: Option<TaskClass>, weight: u32, lean: Lean) -> Keyword {
    Keyword {
        word,
        class,
        weight,
        lean,
    }
}

use Lean::{Deep, Live, Neutral};
use TaskClass as C;

/// The keyword table behind `task_class`, `deep_verbs` and `live_verbs`.
pub const KEYWORDS: &[Keyword] = &[
    // Rename: mechanical spot edits.
    kw("rename", Some(C::Rename), 3, Live),
    kw("typo", Some(C::Rename), 3, Live),
    kw("spelling", Some(C::Rename), 2, Live),
    kw("misspell", Some(C::Rename), 2, Live),
    kw("format", Some(C::Rename), 2, Live),
    kw("formatting", Some(C::Rename), 2, Live),
    kw("reformat", Some(C::Rename), 2, Live),
    kw("rustfmt", Some(C::Rename), 2, Live),
    kw("prettier", Some(C::Rename), 2, Live),
    kw("bump", Some(C::Rename), 3, Live),
    kw("reword", Some(C::Rename), 2, Live),
    kw("capitalize", Some(C::Rename), 2, Live),
    kw("sort the imports", Some(C::Rename), 2, Live),
    // Fix.
    kw("fix", Some(C::Fix), 2, Neutral),
    kw("bug", Some(C::Fix), 2, Neutral),
    kw("error", Some(C::Fix), 1, Neutral),
    kw("fail", Some(C::Fix), 2, Neutral),
    kw("failure", Some(C::Fix), 2, Neutral),
    kw("broken", Some(C::Fix), 2, Neutral),
    kw("crash", Some(C::Fix), 2, Neutral),
    kw("panic", Some(C::Fix), 2, Neutral),
    kw("regression", Some(C::Fix), 2, Neutral),
    kw("exception", Some(C::Fix), 1, Neutral),
    kw("debug", Some(C::Fix), 1, Deep),
    kw("debugging", Some(C::Fix), 1, Deep),
    kw("doesn't work", Some(C::Fix), 1, Neutral),
    kw("does not work", Some(C::Fix), 1, Neutral),
    // Test.
    kw("test", Some(C::Test), 2, Neutral),
    kw("unit test", Some(C::Test), 3, Neutral),
    kw("coverage", Some(C::Test), 2, Neutral),
    kw("assert", Some(C::Test), 1, Neutral),
    kw("fixture", Some(C::Test), 1, Neutral),
    // Refactor.
    kw("refactor", Some(C::Refactor), 3, Deep),
    kw("restructure", Some(C::Refactor), 3, Deep),
    kw("reorganize", Some(C::Refactor), 3, Deep),
    kw("rewrite", Some(C::Refactor), 3, Deep),
    kw("decouple", Some(C::Refactor), 3, Deep),
    kw("extract", Some(C::Refactor), 2, Neutral),
    kw("simplify", Some(C::Refactor), 2, Neutral),
    kw("deduplicate", Some(C::Refactor), 2, Neutral),
    kw("clean up", Some(C::Refactor), 2, Neutral),
    kw("cleanup", Some(C::Refactor), 2, Neutral),
    kw("split", Some(C::Refactor), 1, Neutral),
    kw("splitting", Some(C::Refactor), 1, Neutral),
    kw("generalize", Some(C::Refactor), 2, Neutral),
    kw("replace", Some(C::Refactor), 1, Neutral),
    // Migration.
    kw("migrate", Some(C::Migration), 3, Deep),
    kw("migration", Some(C::Migration), 3, Deep),
    kw("upgrade", Some(C::Migration), 3, Deep),
    kw("port", Some(C::Migration), 2, Deep),
    kw("deprecate", Some(C::Migration), 2, Neutral),
    kw("breaking change", Some(C::Migration), 2, Deep),
    // Docs.
    kw("docs", Some(C::Docs), 2, Neutral),
    kw("doc comment", Some(C::Docs), 3, Live),
    kw("documentation", Some(C::Docs), 3, Neutral),
    kw("document", Some(C::Docs), 2, Neutral),
    kw("readme", Some(C::Docs), 3, Neutral),
    kw("comment", Some(C::Docs), 2, Live),
    kw("docstring", Some(C::Docs), 3, Live),
    kw("changelog", Some(C::Docs), 3, Neutral),
    // Config.
    kw("config", Some(C::Config), 1, Neutral),
    kw("configuration", Some(C::Config), 1, Neutral),
    kw("ci", Some(C::Config), 2, Neutral),
    kw("github actions", Some(C::Config), 2, Neutral),
    kw("workflow", Some(C::Config), 1, Neutral),
    kw("yaml", Some(C::Config), 1, Neutral),
    kw("yml", Some(C::Config), 1, Neutral),
    kw("toml", Some(C::Config), 1, Neutral),
    kw("dockerfile", Some(C::Config), 2, Neutral),
    kw("env var", Some(C::Config), 1, Neutral),
    kw("feature flag", Some(C::Config), 2, Neutral),
    kw("lint", Some(C::Config), 1, Neutral),
    // Other, deep-leaning: design and investigation.
    kw("design", Some(C::Other), 2, Deep),
    kw("architecture", Some(C::Other), 2, Deep),
    kw("investigate", Some(C::Other), 2, Deep),
    kw("why", Some(C::Other), 2, Deep),
    kw("root cause", Some(C::Other), 2, Deep),
    kw("figure out", Some(C::Other), 1, Deep),
    kw("analyze", Some(C::Other), 1, Deep),
    kw("plan", Some(C::Other), 1, Deep),
    kw("planning", Some(C::Other), 1, Deep),
    kw("trade-off", Some(C::Other), 1, Deep),
    kw("tradeoff", Some(C::Other), 1, Deep),
    // Deep-leaning signals without a class.
    kw("race", None, 0, Deep),
    kw("deadlock", None, 0, Deep),
    kw("flaky", None, 0, Deep),
    kw("intermittent", None, 0, Deep),
    kw("concurrency", None, 0, Deep),
    kw("concurrent", None, 0, Deep),
    kw("memory leak", None, 0, Deep),
    kw("performance", None, 0, Deep),
    kw("across", None, 0, Deep),
    kw("everywhere", None, 0, Deep),
    kw("entire", None, 0, Deep),
    kw("codebase", None, 0, Deep),
    kw("all callers", None, 0, Deep),
    kw("security", None, 0, Deep),
    kw("end-to-end", None, 0, Deep),
    kw("from scratch", None, 0, Deep),
    kw("think hard", None, 0, Deep),
    // Live-leaning signals without a class.
    kw("quick", None, 0, Live),
    kw("small", None, 0, Live),
    kw("simple", None, 0, Live),
    kw("tiny", None, 0, Live),
    kw("one-line", None, 0, Live),
    kw("one line", None, 0, Live),
    kw("tweak", None, 0, Live),
    kw("minor", None, 0, Live),
];

/// Tie-break order for the task class vote: more specific classes first.
pub const CLASS_PRIORITY: [TaskClass; 8] = [
    TaskClass::Rename,
    TaskClass::Migration,
    TaskClass::Refactor,
    TaskClass::Test,
    TaskClass::Fix,
    TaskClass::Docs,
    TaskClass::Config,
    TaskClass::Other,
];

/// Suffixes a keyword may carry and still match (`fail` → `failing`).
const SUFFIXES: &[&str] = &["", "s", "es", "ed", "d", "ing", "ings"];

/// Prefixes of user text parts that clients inject (after leading whitespace).
pub const SYNTHETIC_PREFIXES: &[&str] = &[
    "<environment_context>",
    "<user_instructions>",
    "<turn_aborted>",
    "<system-reminder>",
    "<user_shell_command>",
    "<INSTRUCTIONS>",
    "# AGENTS.md instructions",
    "<command-name>",
    "<local-command-stdout>",
];

/// Codex's interrupt marker.
const TURN_ABORTED: &str = "<turn_aborted>";

/// Tool-output exit-status markers; each is followed by the status.
///
/// A tool result fails when the tool flagged it (`is_error`), or else when the first marker in its text
/// (exit status or failure marker, scanning from the start) is a non-zero exit status or a failure
/// marker. Codex prints `Exit code: N` first, so its status decides without reading the output, and a
/// compiler warning that says `error:` after `Exit code: 0` does not count.
pub const TOOL_EXIT_MARKERS: &[&str] = &[
    "exit code ",
    "exit code: ",
    "Exit code: ",
    "Exit code ",
    "exited with code ",
    "exit status ",
];

/// Tool-output failure markers (case-sensitive), see [`TOOL_EXIT_MARKERS`].
pub const TOOL_FAILURE_MARKERS: &[&str] = &[
    "error:",
    "error[E",
    "Error:",
    "ERROR",
    "FAILED",
    "FAIL:",
    "failures:",
    "Traceback (most recent call last)",
    "panicked at",
    "npm ERR!",
    "fatal:",
    "command not found",
    "No such file or directory",
    "Segmentation fault",
];

/// File extensions that make a token path-like.
const EXTENSIONS: &[&str] = &[
    "rs", "py", "pyi", "ts", "tsx", "js", "jsx", "mjs", "cjs", "go", "java", "kt", "kts", "scala",
    "c", "h", "cc", "cpp", "hpp", "cxx", "m", "mm", "rb", "php", "cs", "fs", "swift", "dart", "ex",
    "exs", "erl", "hs", "ml", "lua", "r", "jl", "zig", "nim", "sql", "sh", "bash", "zsh", "ps1",
    "md", "rst", "txt", "adoc", "toml", "yaml", "yml", "json", "jsonc", "lock", "xml", "ini",
    "cfg", "conf", "env", "html", "htm", "css", "scss", "sass", "less", "vue", "svelte", "proto",
    "graphql", "gradle", "tf", "hcl", "nix", "cmake", "mk", "ipynb", "csv", "sol", "wasm",
];

/// File names without an extension that are path-like on their own.
const BARE_FILES: &[&str] = &[
    "Makefile",
    "Dockerfile",
    "Justfile",
    "justfile",
    "Rakefile",
    "Gemfile",
    "Procfile",
    "CODEOWNERS",
    ".gitignore",
    ".dockerignore",
    ".env",
    ".editorconfig",
];

/// Framework names that look like files.
const NOT_FILES: &[&str] = &[
    "node.js",
    "next.js",
    "vue.js",
    "nuxt.js",
    "express.js",
    "three.js",
    "d3.js",
    "chart.js",
    "react.js",
    "nest.js",
];

/// Holds the automata that [`extract`] uses; build once and share.
#[derive(Debug)]
pub struct FeatureExtractor {
    keywords: AhoCorasick,
    /// [`TOOL_EXIT_MARKERS`] then [`TOOL_FAILURE_MARKERS`], one automaton.
    tool_markers: AhoCorasick,
}

static EXTRACTOR: LazyLock<Option<FeatureExtractor>> = LazyLock::new(FeatureExtractor::build);

/// Extract the features of a request, using the shared [`FeatureExtractor`].
pub fn extract(req: &ChatRequest, session: &SessionFacts) -> Features {
    match &*EXTRACTOR {
        Some(extractor) => extractor.extract(req, session),
        // Unreachable in practice: the fixed patterns always build. Degrade to size-only features.
        None => FeatureExtractor::extract_without_text(req, session),
    }
}

impl FeatureExtractor {
    /// Build the automata for the fixed tables; `None` only if the automaton library refuses them.
    pub fn build() -> Option<Self> {
        let keywords = AhoCorasickBuilder::new()
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(KEYWORDS.iter().map(|k| k.word))
            .ok()?;
        let tool_markers = AhoCorasickBuilder::new()
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::LeftmostLongest)
            .build(TOOL_EXIT_MARKERS.iter().chain(TOOL_FAILURE_MARKERS))
            .ok()?;
        Some(FeatureExtractor {
            keywords,
            tool_markers,
        })
    }

    /// Extract the features of a request.
    pub fn extract(&self, req: &ChatRequest, session: &SessionFacts) -> Features {
        let mut f = Self::extract_without_text(req, session);
        let mut history = History::default();
        for (index, message) in req.messages.iter().enumerate() {
            self.scan_message(index, message.role, &message.parts, &mut history);
        }
        f.tool_errors = history.tool_errors;
        f.trailing_tool_error = history.last_tool_failed;
        f.interrupts = f.interrupts.saturating_add(history.aborted);
        f.steers = f.steers.saturating_add(history.steers);
        f.turns = history.turns;
        if let Some(last) = history.last_user.and_then(|i| req.messages.get(i)) {
            let chars: usize = real_texts(&last.parts).map(|t| t.chars().count()).sum();
            f.last_user_tokens = tokens(chars);
            let task = self.scan_task(&last.parts);
            // A bare steer ("no, the other one") says nothing about the task: use the ask before it.
            let task = match history.previous_user.and_then(|i| req.messages.get(i)) {
                Some(previous) if task.is_bare() => self.scan_task(&previous.parts),
                _ => task,
            };
            f.task_class = pick_class(&task.votes);
            f.files_named = task.files;
            f.deep_verbs = task.deep_verbs;
            f.live_verbs = task.live_verbs;
        }
        f
    }

    /// Keyword votes, verbs and files of one user message's real text.
    fn scan_task(&self, parts: &[Part]) -> TaskScan {
        let mut scan = TaskScan::default();
        let mut files: Vec<&str> = Vec::new();
        for text in real_texts(parts) {
            self.scan_keywords(text, &mut scan);
            collect_files(text, &mut files);
        }
        for file in &files {
            if let Some(class) = file_class(file) {
                scan.votes[class.index()] += 1;
                scan.hits += 1;
            }
        }
        scan.files = u32::try_from(files.len()).unwrap_or(u32::MAX);
        scan
    }

    /// Size and session features only (no text scanning).
    fn extract_without_text(req: &ChatRequest, session: &SessionFacts) -> Features {
        let mut chars = 0usize;
        for message in &req.messages {
            for part in &message.parts {
                chars += match part {
                    Part::Text(text) => text.chars().count(),
                    Part::Image { .. } => 0,
                    Part::ToolCall {
                        name, arguments, ..
                    } => name.chars().count() + arguments.chars().count(),
                    Part::ToolResult { content, .. } => content.chars().count(),
                    Part::Reasoning { text, .. } => text.chars().count(),
                };
            }
        }
        Features {
            prompt_tokens: tokens(chars),
            last_user_tokens: 0,
            turns: 0,
            messages: u32::try_from(req.messages.len()).unwrap_or(u32::MAX),
            tools: u32::try_from(req.tools.len()).unwrap_or(u32::MAX),
            reasoning_effort: req.reasoning_effort,
            files_named: 0,
            task_class: TaskClass::Other,
            deep_verbs: 0,
            live_verbs: 0,
            tool_errors: 0,
            trailing_tool_error: false,
            interrupts: session.interrupts,
            steers: session.steers,
            prior_failures: session.prior_failures,
            retries: session.retries,
            escalated: session.escalated,
        }
    }

    fn scan_message(&self, index: usize, role: Role, parts: &[Part], h: &mut History) {
        let mut real_user = false;
        for part in parts {
            match part {
                Part::Text(text) if role == Role::User => {
                    let trimmed = text.trim_start();
                    if trimmed.starts_with(TURN_ABORTED) {
                        h.aborted += 1;
                    } else if !is_synthetic(trimmed) {
                        real_user = true;
                    }
                }
                Part::ToolResult {
                    content, is_error, ..
                } => {
                    let failed = *is_error || self.output_failed(content);
                    h.tool_errors += u32::from(failed);
                    h.last_tool_failed = failed;
                }
                _ => {}
            }
        }
        if real_user {
            h.turns += 1;
            h.previous_user = h.last_user;
            h.last_user = Some(index);
            if h.previous == Some(Role::Tool) {
                h.steers += 1;
            }
        }
        h.previous = Some(role);
    }

    /// Whether a tool output reports failure; see [`TOOL_EXIT_MARKERS`].
    pub fn output_failed(&self, content: &str) -> bool {
        let bytes = content.as_bytes();
        for m in self.tool_markers.find_iter(content) {
            if m.pattern().as_usize() >= TOOL_EXIT_MARKERS.len() {
                return true;
            }
            match bytes.get(m.end()) {
                Some(b'1'..=b'9') => return true,
                Some(b'0') if !bytes.get(m.end() + 1).is_some_and(u8::is_ascii_digit) => {
                    return false;
                }
                _ => {}
            }
        }
        false
    }

    fn scan_keywords(&self, text: &str, scan: &mut TaskScan) {
        let bytes = text.as_bytes();
        for m in self.keywords.find_iter(text) {
            if m.start() > 0 && bytes.get(m.start() - 1).is_some_and(is_word_byte) {
                continue;
            }
            let rest = bytes.get(m.end()..).unwrap_or_default();
            let suffix_len = rest.iter().take_while(|b| is_word_byte(b)).count();
            let suffix = rest.get(..suffix_len).unwrap_or_default();
            if !SUFFIXES
                .iter()
                .any(|s| s.as_bytes().eq_ignore_ascii_case(suffix))
            {
                continue;
            }
            // A word inside a path (`tests/parser.rs`, `README.md`, `src/config.rs`) is not a verb;
            // the file votes through its kind instead.
            let after = rest.get(suffix_len).copied();
            let dotted = after == Some(b'.')
                && rest
                    .get(suffix_len + 1)
                    .is_some_and(u8::is_ascii_alphanumeric);
            let before = m.start().checked_sub(1).and_then(|i| bytes.get(i)).copied();
            if matches!(after, Some(b'/' | b'\\'))
                || dotted
                || matches!(before, Some(b'/' | b'\\' | b'.'))
            {
                continue;
            }
            let Some(keyword) = KEYWORDS.get(m.pattern().as_usize()) else {
                continue;
            };
            scan.hits += 1;
            if let Some(class) = keyword.class {
                scan.votes[class.index()] += keyword.weight;
            }
            match keyword.lean {
                Lean::Deep => scan.deep_verbs += 1,
                Lean::Live => scan.live_verbs += 1,
                Lean::Neutral => {}
            }
        }
    }
}

#[derive(Default)]
struct TaskScan {
    votes: [u32; 8],
    hits: u32,
    deep_verbs: u32,
    live_verbs: u32,
    files: u32,
}

impl TaskScan {
    /// No keyword and no file: a steer or an acknowledgement rather than a task.
    fn is_bare(&self) -> bool {
        self.hits == 0 && self.files == 0
    }
}

#[derive(Default)]
struct History {
    turns: u32,
    last_user: Option<usize>,
    previous_user: Option<usize>,
    previous: Option<Role>,
    tool_errors: u32,
    last_tool_failed: bool,
    aborted: u32,
    steers: u32,
}

fn tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}

fn is_word_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'_'
}

fn is_synthetic(trimmed: &str) -> bool {
    SYNTHETIC_PREFIXES.iter().any(|p| trimmed.starts_with(p))
}

/// The non-synthetic text parts of a user message.
fn real_texts(parts: &[Part]) -> impl Iterator<Item = &str> {
    parts.iter().filter_map(|part| match part {
        Part::Text(text) if !is_synthetic(text.trim_start()) => Some(text.as_str()),
        _ => None,
    })
}

fn pick_class(votes: &[u32; 8]) -> TaskClass {
    let mut best = TaskClass::Other;
    let mut best_votes = 0;
    for class in CLASS_PRIORITY {
        let v = votes[class.index()];
        if v > best_votes {
            best = class;
            best_votes = v;
        }
    }
    best
}

fn collect_files<'a>(text: &'a str, files: &mut Vec<&'a str>) {
    let tokens = text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '`' | '"' | '\'' | ',' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '|'
            )
    });
    for token in tokens {
        let Some(path) = is_path_like(token) else {
            continue;
        };
        if !files.contains(&path) {
            files.push(path);
        }
    }
}

/// The class a named file votes for (weight 1), see [`file_class`].
const CONFIG_EXTENSIONS: &[&str] = &["toml", "yaml", "yml", "ini", "cfg", "conf", "env", "lock"];

/// The class a named file votes for, with weight 1: test files (a `test`/`tests`/`spec` directory,
/// `test_*`, `*_test.*`, `*.test.*`, `*.spec.*`) vote `test`; config and build files (`.toml`, `.yaml`,
/// `.ini`, ..., `Dockerfile`, `Makefile`, dotfiles, `*config.json`, `package.json`, anything under
/// `.github/`) vote `config`; documentation (`.md`, `.rst`, `.adoc`, `.txt`) votes `docs`.
pub fn file_class(path: &str) -> Option<TaskClass> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let lower_dirs = path.len() - name.len();
    let dirs = path.get(..lower_dirs).unwrap_or_default();
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let is_test = dirs
        .split(['/', '\\'])
        .any(|d| matches!(d, "test" | "tests" | "spec" | "__tests__"))
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains(".spec.");
    if is_test {
        return Some(TaskClass::Test);
    }
    if CONFIG_EXTENSIONS
        .iter()
        .any(|e| e.eq_ignore_ascii_case(ext))
        || BARE_FILES.contains(&name)
        || name.ends_with("config.json")
        || name.ends_with("config.js")
        || name.ends_with("config.ts")
        || matches!(name, "package.json" | "requirements.txt" | "CMakeLists.txt")
        || dirs.starts_with(".github/")
    {
        return Some(TaskClass::Config);
    }
    if ["md", "rst", "adoc", "txt"]
        .iter()
        .any(|e| e.eq_ignore_ascii_case(ext))
    {
        return Some(TaskClass::Docs);
    }
    None
}

/// The normalised path if `token` looks like a file path, else `None`.
///
/// Trailing `.`, `:`, `;`, `!`, `?` and a `:line[:col]` suffix are dropped, and a leading `./` or `@`.
/// URLs (`://`) are not paths. A token is path-like when its last segment has a known source, doc or
/// config extension (`lib.rs`, `Cargo.toml`, `ci.yml`) and is not a framework name (`Node.js`), or is a
/// known bare file name (`Makefile`, `.gitignore`), or it starts with `./`, `../` or `~/`.
pub fn is_path_like(token: &str) -> Option<&str> {
    if token.contains("://") {
        return None;
    }
    let mut t = token.trim_end_matches(['.', ':', ';', '!', '?']);
    // Drop `:12` or `:12:5` line suffixes.
    for _ in 0..2 {
        if let Some((head, tail)) = t.rsplit_once(':')
            && !tail.is_empty()
            && tail.bytes().all(|b| b.is_ascii_digit())
        {
            t = head;
        }
    }
    let t = t.strip_prefix('@').unwrap_or(t);
    let relative = t.starts_with("./") || t.starts_with("../") || t.starts_with("~/");
    let t = t.strip_prefix("./").unwrap_or(t);
    let name = t.rsplit(['/', '\\']).next().unwrap_or(t);
    if name.is_empty() {
        return None;
    }
    if BARE_FILES.contains(&name) {
        return Some(t);
    }
    if let Some((stem, ext)) = name.rsplit_once('.')
        && !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
        && !NOT_FILES.iter().any(|n| n.eq_ignore_ascii_case(name))
    {
        return Some(t);
    }
    if relative && t.len() > 3 {
        return Some(t);
    }
    None
}

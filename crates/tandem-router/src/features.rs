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
//!   but `port` does not match `portable`); a word followed by `/` is a directory, not a verb. Each hit adds its weight to its class; the class with the
//!   highest total wins, ties going to the earlier class in [`CLASS_PRIORITY`]; no hit gives `other`.
//!   Hits marked deep-leaning count in `deep_verbs`, live-leaning ones in `live_verbs`.
//! - *files named*: distinct path-like tokens in the last user message (see [`is_path_like`]).
//! - *tool errors*: tool results that report failure (see [`tool_result_failed`]).
//! - *interrupts*: user parts starting with `<turn_aborted>` (Codex's interrupt marker) plus
//!   [`SessionFacts::interrupts`].
//! - *steers*: real user messages that directly follow a tool result (input added while the agent was
//!   working, as Codex and Claude Code send it) plus [`SessionFacts::steers`].

use std::fmt;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
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

/// Tool-output markers. Exit-status markers are followed by the status; the others mean failure.
///
/// A result fails when the tool flagged it (`is_error`), or when it shows a non-zero exit status, or
/// when it shows a failure marker and no exit status 0 (an explicit zero status wins over text such as
/// `error:` in compiler warnings).
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
    exit_markers: AhoCorasick,
    failure_markers: AhoCorasick,
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
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(KEYWORDS.iter().map(|k| k.word))
            .ok()?;
        let exit_markers = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(TOOL_EXIT_MARKERS)
            .ok()?;
        let failure_markers = AhoCorasick::new(TOOL_FAILURE_MARKERS).ok()?;
        Some(FeatureExtractor {
            keywords,
            exit_markers,
            failure_markers,
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
            let mut votes = [0u32; 8];
            let mut files: Vec<&str> = Vec::new();
            let mut chars = 0usize;
            for text in real_texts(&last.parts) {
                chars += text.chars().count();
                self.scan_keywords(text, &mut votes, &mut f);
                collect_files(text, &mut files);
            }
            f.last_user_tokens = tokens(chars);
            f.files_named = u32::try_from(files.len()).unwrap_or(u32::MAX);
            f.task_class = pick_class(&votes);
        }
        f
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
        let mut zero = false;
        for m in self.exit_markers.find_iter(content) {
            match bytes.get(m.end()) {
                Some(b'1'..=b'9') => return true,
                Some(b'0') if !bytes.get(m.end() + 1).is_some_and(u8::is_ascii_digit) => {
                    zero = true
                }
                _ => {}
            }
        }
        !zero && self.failure_markers.is_match(content)
    }

    fn scan_keywords(&self, text: &str, votes: &mut [u32; 8], f: &mut Features) {
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
            // A directory name inside a path (`tests/parser.rs`) is not a verb.
            if matches!(rest.get(suffix_len), Some(b'/' | b'\\')) {
                continue;
            }
            let Some(keyword) = KEYWORDS.get(m.pattern().as_usize()) else {
                continue;
            };
            if let Some(class) = keyword.class {
                votes[class.index()] += keyword.weight;
            }
            match keyword.lean {
                Lean::Deep => f.deep_verbs += 1,
                Lean::Live => f.live_verbs += 1,
                Lean::Neutral => {}
            }
        }
    }
}

#[derive(Default)]
struct History {
    turns: u32,
    last_user: Option<usize>,
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

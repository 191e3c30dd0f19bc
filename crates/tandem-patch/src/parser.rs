//! The streaming edit parser.
//!
//! Input is cut into lines, and each complete line drives one deterministic state machine; a partial line waits for
//! its newline (or [`Parser::finish`]).
//! Invariant: the events depend only on the sequence of lines, so they do not depend on how the text was split
//! into pieces (property-tested at every split).

use crate::edit::{Edit, Format, Op, Replace};

/// What the parser reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete edit.
    Edit(Edit),
    /// Text that started an edit but could not be read as one; the parser carries on after it.
    Malformed {
        /// The 1-based line of the model's output.
        line: usize,
        /// What was wrong.
        message: Box<str>,
    },
}

/// How the parser reads what the model did not spell out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParserConfig {
    /// The path for edits that name no file (the one file in context), if any.
    pub default_path: Option<String>,
    /// Whether a fenced code block that names no file is a whole-file rewrite of `default_path`; set it when the
    /// model was asked for the whole file, since otherwise such blocks are usually examples.
    pub bare_fence_is_rewrite: bool,
}

/// Parses a streamed model answer into edits.
#[derive(Debug, Clone)]
pub struct Parser {
    config: ParserConfig,
    /// The incomplete last line.
    pending: String,
    /// The number of complete lines seen.
    line: usize,
    state: State,
    /// A line that looked like a path, since the last block, for the next block.
    path_hint: Option<String>,
    /// The path of the previous edit, for blocks that do not repeat it.
    last_path: Option<String>,
    /// Inside a code fence that wraps edits (its closing line ends it).
    in_fence: bool,
}

#[derive(Debug, Clone)]
enum State {
    Prose,
    Search {
        path: Option<String>,
        start: usize,
        search: Vec<String>,
    },
    Replace {
        path: Option<String>,
        start: usize,
        search: Vec<String>,
        replace: Vec<String>,
    },
    Fence {
        marker: String,
        path: Option<String>,
        start: usize,
        lines: Vec<String>,
    },
    Unified(Unified),
    Patch(Patch),
}

/// A unified diff file section.
#[derive(Debug, Clone)]
struct Unified {
    path: Option<String>,
    deleted: bool,
    hunk: Option<UnifiedHunk>,
}

#[derive(Debug, Clone)]
struct UnifiedHunk {
    start: usize,
    hint: Option<usize>,
    /// Old and new line counts still expected, when the header had them.
    remaining: Option<(usize, usize)>,
    search: Vec<String>,
    replace: Vec<String>,
    /// How many trailing lines were bare empty lines (kept only if the hunk goes on).
    bare_tail: usize,
}

/// An `apply_patch` envelope.
#[derive(Debug, Clone)]
struct Patch {
    section: Section,
}

#[derive(Debug, Clone)]
enum Section {
    None,
    Add {
        path: String,
        start: usize,
        lines: Vec<String>,
    },
    Update {
        path: String,
        chunk: Chunk,
    },
}

#[derive(Debug, Clone, Default)]
struct Chunk {
    start: usize,
    anchors: Vec<String>,
    search: Vec<String>,
    replace: Vec<String>,
    has_body: bool,
    end_of_file: bool,
}

/// Parses a whole answer at once: `push(text)` then `finish()`.
pub fn parse(text: &str, config: ParserConfig) -> Vec<Event> {
    let mut parser = Parser::new(config);
    let mut events = parser.push(text);
    events.extend(parser.finish());
    events
}

impl Parser {
    /// A parser for one model answer.
    pub fn new(config: ParserConfig) -> Self {
        Parser {
            config,
            pending: String::new(),
            line: 0,
            state: State::Prose,
            path_hint: None,
            last_path: None,
            in_fence: false,
        }
    }

    /// Feeds the next piece of the answer; returns the events its complete lines finished.
    pub fn push(&mut self, piece: &str) -> Vec<Event> {
        let mut events = Vec::new();
        let mut rest = piece;
        while let Some(at) = rest.find('\n') {
            self.pending.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            let line = std::mem::take(&mut self.pending);
            self.feed(&line, &mut events);
        }
        self.pending.push_str(rest);
        events
    }

    /// Ends the answer: reads the last line and closes whatever is open.
    pub fn finish(mut self) -> Vec<Event> {
        let mut events = Vec::new();
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.feed(&line, &mut events);
        }
        let state = std::mem::replace(&mut self.state, State::Prose);
        match state {
            State::Prose => {}
            State::Search { start, .. } | State::Replace { start, .. } => {
                events.push(Event::Malformed {
                    line: start,
                    message: "search/replace block not terminated".into(),
                })
            }
            State::Fence { start, .. } => events.push(Event::Malformed {
                line: start,
                message: "code block not terminated".into(),
            }),
            State::Unified(mut unified) => self.close_hunk(&mut unified, &mut events),
            State::Patch(mut patch) => self.close_section(&mut patch, &mut events),
        }
        events
    }

    fn feed(&mut self, raw: &str, events: &mut Vec<Event>) {
        self.line += 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let state = std::mem::replace(&mut self.state, State::Prose);
        self.state = match state {
            State::Prose => {
                self.prose(line, events);
                return;
            }
            State::Search {
                path,
                start,
                mut search,
            } => {
                if is_divider(line) {
                    State::Replace {
                        path,
                        start,
                        search,
                        replace: Vec::new(),
                    }
                } else if is_replace_end(line) {
                    events.push(Event::Malformed {
                        line: self.line,
                        message: "`>>>>>>> REPLACE` before `=======`".into(),
                    });
                    State::Prose
                } else {
                    search.push(line.to_owned());
                    State::Search {
                        path,
                        start,
                        search,
                    }
                }
            }
            State::Replace {
                path,
                start,
                search,
                mut replace,
            } => {
                if is_replace_end(line) {
                    self.emit(
                        path,
                        Op::Replace(Replace {
                            search,
                            replace,
                            ..Replace::default()
                        }),
                        Format::SearchReplace,
                        start,
                        events,
                    );
                    State::Prose
                } else {
                    replace.push(line.to_owned());
                    State::Replace {
                        path,
                        start,
                        search,
                        replace,
                    }
                }
            }
            State::Fence {
                marker,
                path,
                start,
                mut lines,
            } => {
                if line.trim_end() == marker {
                    self.close_fence(path, start, lines, events);
                    State::Prose
                } else if starts_edit(line, lines.last().map(String::as_str)) {
                    // The fence wraps edits: read what it held so far as ordinary lines.
                    self.in_fence = true;
                    self.path_hint = path;
                    self.line = start;
                    for held in &lines {
                        self.feed(held, events);
                    }
                    self.feed(line, events);
                    return;
                } else {
                    lines.push(line.to_owned());
                    State::Fence {
                        marker,
                        path,
                        start,
                        lines,
                    }
                }
            }
            State::Unified(unified) => {
                self.unified(unified, line, events);
                return;
            }
            State::Patch(patch) => {
                self.patch(patch, line, events);
                return;
            }
        };
    }

    fn prose(&mut self, line: &str, events: &mut Vec<Event>) {
        let trimmed = line.trim();
        if is_search_start(line) {
            let path = self.take_path();
            self.state = State::Search {
                path,
                start: self.line,
                search: Vec::new(),
            };
        } else if trimmed == "*** Begin Patch" {
            self.state = State::Patch(Patch {
                section: Section::None,
            });
        } else if let Some(rest) = line.strip_prefix("diff --git ") {
            self.path_hint = rest
                .split_whitespace()
                .last()
                .map(|p| strip_ab(p).to_owned());
        } else if let Some(rest) = line.strip_prefix("--- ") {
            // Remembered until the `+++` line; `/dev/null` means a new file.
            self.path_hint = diff_path(rest).or_else(|| self.path_hint.take());
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            let (path, deleted) = match diff_path(rest) {
                Some(path) => (Some(path), false),
                None => (self.path_hint.take(), true),
            };
            self.path_hint = None;
            if deleted {
                self.emit(path.clone(), Op::Delete, Format::Unified, self.line, events);
            }
            self.state = State::Unified(Unified {
                path,
                deleted,
                hunk: None,
            });
        } else if line.starts_with("@@") {
            let path = self.take_path();
            let mut unified = Unified {
                path,
                deleted: false,
                hunk: None,
            };
            self.open_hunk(&mut unified, line);
            self.state = State::Unified(unified);
        } else if let Some(marker) = fence_marker(line) {
            if self.in_fence {
                self.in_fence = false;
                return;
            }
            let info = line.trim()[marker.len()..].trim();
            let named = info.split_whitespace().find_map(path_like);
            let path = named.or_else(|| self.path_hint.take());
            if matches!(info, "diff" | "patch") {
                self.in_fence = true;
                self.path_hint = path;
                return;
            }
            self.state = State::Fence {
                marker: marker.to_owned(),
                path,
                start: self.line,
                lines: Vec::new(),
            };
        } else if let Some(path) = path_like(trimmed) {
            self.path_hint = Some(path);
        } else if !trimmed.is_empty() {
            self.path_hint = None;
        }
    }

    fn close_fence(
        &mut self,
        path: Option<String>,
        start: usize,
        lines: Vec<String>,
        events: &mut Vec<Event>,
    ) {
        let path = match path {
            Some(path) => Some(path),
            None if self.config.bare_fence_is_rewrite => self.config.default_path.clone(),
            None => return,
        };
        let mut content = lines.join("\n");
        if !lines.is_empty() {
            content.push('\n');
        }
        self.emit(
            path,
            Op::Rewrite { content },
            Format::WholeFile,
            start,
            events,
        );
    }

    fn unified(&mut self, mut unified: Unified, line: &str, events: &mut Vec<Event>) {
        if let Some(hunk) = unified.hunk.as_mut() {
            if hunk_line(hunk, line) {
                self.state = State::Unified(unified);
                return;
            }
            self.close_hunk(&mut unified, events);
        }
        if line.starts_with("@@") {
            self.open_hunk(&mut unified, line);
            self.state = State::Unified(unified);
            return;
        }
        // The section is over: the line is prose (or the next file's header).
        self.last_path = unified.path;
        self.prose(line, events);
    }

    fn open_hunk(&mut self, unified: &mut Unified, header: &str) {
        let (hint, remaining) = parse_hunk_header(header);
        unified.hunk = Some(UnifiedHunk {
            start: self.line,
            hint,
            remaining,
            search: Vec::new(),
            replace: Vec::new(),
            bare_tail: 0,
        });
    }

    fn close_hunk(&mut self, unified: &mut Unified, events: &mut Vec<Event>) {
        let Some(mut hunk) = unified.hunk.take() else {
            return;
        };
        for _ in 0..hunk.bare_tail {
            hunk.search.pop();
            hunk.replace.pop();
        }
        if unified.deleted || (hunk.search.is_empty() && hunk.replace.is_empty()) {
            return;
        }
        // With no search lines (`@@ -l,0 +m,n @@`), the hint is where to insert: after old line `l`.
        let hint = hunk.hint;
        self.emit(
            unified.path.clone(),
            Op::Replace(Replace {
                search: hunk.search,
                replace: hunk.replace,
                hint_line: hint,
                ..Replace::default()
            }),
            Format::Unified,
            hunk.start,
            events,
        );
    }

    fn patch(&mut self, mut patch: Patch, line: &str, events: &mut Vec<Event>) {
        let trimmed = line.trim_end();
        if trimmed == "*** End Patch" {
            self.close_section(&mut patch, events);
            return;
        }
        if self.in_fence && fence_marker(line).is_some() {
            // The fence that wrapped the patch closed before `*** End Patch`: end both.
            self.close_section(&mut patch, events);
            self.in_fence = false;
            return;
        }
        if let Some(path) = trimmed.strip_prefix("*** Add File: ") {
            self.close_section(&mut patch, events);
            patch.section = Section::Add {
                path: path.trim().to_owned(),
                start: self.line,
                lines: Vec::new(),
            };
        } else if let Some(path) = trimmed.strip_prefix("*** Delete File: ") {
            self.close_section(&mut patch, events);
            self.emit(
                Some(path.trim().to_owned()),
                Op::Delete,
                Format::ApplyPatch,
                self.line,
                events,
            );
        } else if let Some(path) = trimmed.strip_prefix("*** Update File: ") {
            self.close_section(&mut patch, events);
            patch.section = Section::Update {
                path: path.trim().to_owned(),
                chunk: Chunk {
                    start: self.line,
                    ..Chunk::default()
                },
            };
        } else {
            self.section_line(&mut patch, line, trimmed, events);
        }
        self.state = State::Patch(patch);
    }

    fn section_line(
        &mut self,
        patch: &mut Patch,
        line: &str,
        trimmed: &str,
        events: &mut Vec<Event>,
    ) {
        let at = self.line;
        match &mut patch.section {
            Section::Add { lines, .. } => match line.strip_prefix('+') {
                Some(rest) => lines.push(rest.to_owned()),
                None if line.is_empty() => lines.push(String::new()),
                None => events.push(malformed(at, "`*** Add File` lines must start with `+`")),
            },
            Section::Update { path, chunk } => {
                if let Some(to) = trimmed.strip_prefix("*** Move to: ") {
                    let from = std::mem::replace(path, to.trim().to_owned());
                    let to = path.clone();
                    self.emit(Some(from), Op::Move { to }, Format::ApplyPatch, at, events);
                } else if trimmed == "*** End of File" {
                    chunk.end_of_file = true;
                    let path = path.clone();
                    let done = std::mem::take(chunk);
                    chunk.start = at + 1;
                    self.emit_chunk(path, done, events);
                } else if let Some(anchor) = line.strip_prefix("@@") {
                    if chunk.has_body {
                        let path = path.clone();
                        let done = std::mem::take(chunk);
                        self.emit_chunk(path, done, events);
                    }
                    if !chunk.has_body && chunk.anchors.is_empty() {
                        chunk.start = at;
                    }
                    let anchor = anchor.trim();
                    if !anchor.is_empty() {
                        chunk.anchors.push(anchor.to_owned());
                    }
                } else if let Some(rest) = line.strip_prefix(' ') {
                    chunk.push(Some(rest), Some(rest));
                } else if let Some(rest) = line.strip_prefix('-') {
                    chunk.push(Some(rest), None);
                } else if let Some(rest) = line.strip_prefix('+') {
                    chunk.push(None, Some(rest));
                } else if line.is_empty() {
                    chunk.push(Some(""), Some(""));
                } else {
                    events.push(malformed(
                        at,
                        "patch lines must start with ` `, `-`, `+` or `@@`",
                    ));
                }
            }
            Section::None => {
                if !trimmed.is_empty() {
                    events.push(malformed(
                        at,
                        "expected `*** Add File`, `*** Update File` or `*** Delete File`",
                    ));
                }
            }
        }
    }

    fn close_section(&mut self, patch: &mut Patch, events: &mut Vec<Event>) {
        match std::mem::replace(&mut patch.section, Section::None) {
            Section::None => {}
            Section::Add { path, start, lines } => {
                let mut content = lines.join("\n");
                if !lines.is_empty() {
                    content.push('\n');
                }
                self.emit(
                    Some(path),
                    Op::Create { content },
                    Format::ApplyPatch,
                    start,
                    events,
                );
            }
            Section::Update { path, chunk } => self.emit_chunk(path, chunk, events),
        }
    }

    fn emit_chunk(&mut self, path: String, chunk: Chunk, events: &mut Vec<Event>) {
        if !chunk.has_body {
            return;
        }
        self.emit(
            Some(path),
            Op::Replace(Replace {
                search: chunk.search,
                replace: chunk.replace,
                anchors: chunk.anchors,
                hint_line: None,
                end_of_file: chunk.end_of_file,
            }),
            Format::ApplyPatch,
            chunk.start,
            events,
        );
    }

    fn emit(
        &mut self,
        path: Option<String>,
        op: Op,
        format: Format,
        line: usize,
        events: &mut Vec<Event>,
    ) {
        let path = path.or_else(|| self.config.default_path.clone());
        self.last_path.clone_from(&path);
        if let Op::Move { to } = &op {
            self.last_path = Some(to.clone());
        }
        events.push(Event::Edit(Edit {
            path,
            op,
            format,
            line,
        }));
    }

    /// The path for a block: a path line just before it, else the previous edit's.
    fn take_path(&mut self) -> Option<String> {
        self.path_hint.take().or_else(|| self.last_path.clone())
    }
}

impl Chunk {
    fn push(&mut self, old: Option<&str>, new: Option<&str>) {
        self.has_body = true;
        if let Some(old) = old {
            self.search.push(old.to_owned());
        }
        if let Some(new) = new {
            self.replace.push(new.to_owned());
        }
    }
}

fn malformed(line: usize, message: &str) -> Event {
    Event::Malformed {
        line,
        message: message.into(),
    }
}

/// Adds `line` to the hunk if it is a hunk body line.
fn hunk_line(hunk: &mut UnifiedHunk, line: &str) -> bool {
    let counts_done = hunk.remaining.is_none_or(|(old, new)| old == 0 && new == 0);
    if counts_done && (line.starts_with("--- ") || line.starts_with("+++ ")) {
        return false;
    }
    let (old, new, bare) = if let Some(rest) = line.strip_prefix(' ') {
        (Some(rest), Some(rest), false)
    } else if let Some(rest) = line.strip_prefix('-') {
        (Some(rest), None, false)
    } else if let Some(rest) = line.strip_prefix('+') {
        (None, Some(rest), false)
    } else if line.starts_with('\\') {
        // `\ No newline at end of file`: the applier keeps the file's own final newline.
        return true;
    } else if line.is_empty() {
        (Some(""), Some(""), true)
    } else {
        return false;
    };
    if let Some((o, n)) = hunk.remaining.as_mut() {
        if old.is_some() {
            *o = o.saturating_sub(1);
        }
        if new.is_some() {
            *n = n.saturating_sub(1);
        }
    }
    hunk.bare_tail = if bare { hunk.bare_tail + 1 } else { 0 };
    if let Some(old) = old {
        hunk.search.push(old.to_owned());
    }
    if let Some(new) = new {
        hunk.replace.push(new.to_owned());
    }
    true
}

/// `@@ -l,n +l,n @@`: the old start line and, when both counts parse, the old and new counts.
fn parse_hunk_header(header: &str) -> (Option<usize>, Option<(usize, usize)>) {
    let mut parts = header.trim_start_matches('@').split_whitespace();
    let old = parts.next().and_then(|p| p.strip_prefix('-'));
    let new = parts.next().and_then(|p| p.strip_prefix('+'));
    let range = |r: &str| -> Option<(usize, usize)> {
        match r.split_once(',') {
            Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let old = old.and_then(range);
    let new = new.and_then(range);
    let hint = old.map(|(start, _)| start);
    let counts = match (old, new) {
        (Some((_, o)), Some((_, n))) => Some((o, n)),
        _ => None,
    };
    (hint, counts)
}

/// A diff header path: strips `a/`/`b/` and a trailing timestamp; `None` for `/dev/null`.
fn diff_path(rest: &str) -> Option<String> {
    let path = rest.split('\t').next().unwrap_or(rest).trim();
    if path == "/dev/null" || path.is_empty() {
        return None;
    }
    Some(strip_ab(path).to_owned())
}

fn strip_ab(path: &str) -> &str {
    path.strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path)
}

/// Whether a line starts an edit (so a fence holding it wraps edits rather than a whole file).
fn starts_edit(line: &str, previous: Option<&str>) -> bool {
    is_search_start(line)
        || line.trim() == "*** Begin Patch"
        || line.starts_with("diff --git ")
        || line.starts_with("@@ -")
        || (line.starts_with("+++ ") && previous.is_some_and(|p| p.starts_with("--- ")))
}

fn is_search_start(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("<<<<<") && t.trim_start_matches('<').trim() == "SEARCH"
}

fn is_divider(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 5 && t.bytes().all(|b| b == b'=')
}

fn is_replace_end(line: &str) -> bool {
    let t = line.trim();
    t.starts_with(">>>>>") && t.trim_start_matches('>').trim() == "REPLACE"
}

/// The fence a line opens or closes (three or more backticks or tildes), if it is one.
fn fence_marker(line: &str) -> Option<&str> {
    let t = line.trim_start();
    for c in ['`', '~'] {
        let n = t.len() - t.trim_start_matches(c).len();
        if n >= 3 {
            return Some(&t[..n]);
        }
    }
    None
}

/// A line that names a file: one word, without Markdown decoration, containing a `.` or `/`.
fn path_like(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_start_matches('#')
        .trim()
        .trim_matches(|c| c == '*' || c == '`')
        .trim_end_matches(':')
        .trim_matches(|c| c == '*' || c == '`');
    let t = t.strip_prefix("path=").unwrap_or(t);
    let plausible = !t.is_empty()
        && !t.chars().any(char::is_whitespace)
        && (t.contains('.') || t.contains('/'))
        && !t.ends_with('.')
        && t.len() <= 256;
    plausible.then(|| t.to_owned())
}

#[cfg(test)]
mod tests;

//! The added lines of a unified diff (`git diff` or `diff -u` output), by file and new line number.

/// One added line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedLine {
    /// The file's new path (without git's `b/` prefix).
    pub file: String,
    /// The line's number in the new file, from 1.
    pub line: usize,
    /// The line's text, without the leading `+` and the newline.
    pub text: String,
}

/// The lines a unified diff adds, in order. Hunk line counts decide what is content, so an added
/// line that starts with `++` is not mistaken for a file header.
pub fn added_lines(diff: &str) -> Vec<AddedLine> {
    parse(diff).1
}

/// The paths of the files a unified diff touches (new paths; old ones for deletions).
pub fn changed_files(diff: &str) -> Vec<String> {
    parse(diff).0
}

/// The files a diff touches and the lines it adds.
fn parse(diff: &str) -> (Vec<String>, Vec<AddedLine>) {
    let mut files: Vec<String> = Vec::new();
    let mut added = Vec::new();
    let (mut old_file, mut file) = (String::new(), String::new());
    let (mut old_left, mut new_left, mut new_line) = (0usize, 0usize, 0usize);
    for raw in diff.lines() {
        if old_left > 0 || new_left > 0 {
            match raw.as_bytes().first() {
                Some(b'+') => {
                    added.push(AddedLine {
                        file: file.clone(),
                        line: new_line,
                        text: raw[1..].to_owned(),
                    });
                    new_line += 1;
                    new_left = new_left.saturating_sub(1);
                }
                Some(b'-') => old_left = old_left.saturating_sub(1),
                Some(b'\\') => {}
                // A context line (an empty one when the tool trimmed its leading space).
                _ => {
                    new_line += 1;
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                }
            }
            continue;
        }
        if let Some(path) = raw.strip_prefix("--- ") {
            old_file = header_path(path);
        } else if let Some(path) = raw.strip_prefix("+++ ") {
            file = header_path(path);
            let name = if file.is_empty() { &old_file } else { &file };
            if !name.is_empty() && !files.contains(name) {
                files.push(name.clone());
            }
        } else if let Some((old, new)) = raw.strip_prefix("@@ ").and_then(hunk_counts) {
            (old_left, new_left, new_line) = (old.1, new.1, new.0);
        }
    }
    (files, added)
}

/// `b/src/main.rs\t2024-…` → `src/main.rs`; `/dev/null` → empty.
fn header_path(text: &str) -> String {
    let path = text.split('\t').next().unwrap_or_default().trim_end();
    if path == "/dev/null" {
        return String::new();
    }
    let path = path
        .strip_prefix("b/")
        .or_else(|| path.strip_prefix("a/"))
        .unwrap_or(path);
    path.to_owned()
}

/// `-12,3 +14,5 @@ fn x` → ((12, 3), (14, 5)); a missing count is 1.
fn hunk_counts(text: &str) -> Option<((usize, usize), (usize, usize))> {
    let mut parts = text.split_whitespace();
    let old = range(parts.next()?.strip_prefix('-')?)?;
    let new = range(parts.next()?.strip_prefix('+')?)?;
    Some((old, new))
}

fn range(text: &str) -> Option<(usize, usize)> {
    match text.split_once(',') {
        Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
        None => Some((text.parse().ok()?, 1)),
    }
}

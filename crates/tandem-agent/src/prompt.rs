//! What the live editor sends: a short system prompt asking for SEARCH/REPLACE blocks, and only the
//! relevant regions of large files.

use serde_json::{Value, json};

/// Files up to this many lines are sent whole.
const WHOLE_FILE_LINES: usize = 400;
/// Lines of context around each relevant line of a larger file.
const CONTEXT: usize = 40;

const SYSTEM: &str = "You are Tandem's live editor. Make the smallest change that does what the \
instruction asks. Answer only with SEARCH/REPLACE blocks, one per change, each preceded by the \
file's path on its own line:\n\npath/to/file\n<<<<<<< SEARCH\nexact lines from the file\n=======\n\
the lines that replace them\n>>>>>>> REPLACE\n\nThe SEARCH part must match the file exactly and \
only once; include enough lines to make it unique. No explanations.";

/// The chat messages for an instruction over `files` (path and content).
pub fn messages(instruction: &str, files: &[(String, String)]) -> Vec<Value> {
    let mut user = String::new();
    for (path, content) in files {
        user.push_str(&format!(
            "{path}\n```\n{}```\n\n",
            region(instruction, content)
        ));
    }
    user.push_str(&format!("Instruction: {instruction}\n"));
    vec![
        json!({"role": "system", "content": SYSTEM}),
        json!({"role": "user", "content": user}),
    ]
}

/// The messages that redirect an answer cut short: what the model had written so far, then the
/// person's new instruction.
pub fn steer(partial: &str, instruction: &str) -> Vec<Value> {
    let mut out = Vec::new();
    if !partial.is_empty() {
        out.push(json!({"role": "assistant", "content": partial}));
    }
    out.push(json!({
        "role": "user",
        "content": format!(
            "{instruction}\n\n(I stopped your answer to redirect it. Edits you completed are applied; continue from there with SEARCH/REPLACE blocks against the files as they are now.)"
        ),
    }));
    out
}

/// The messages that ask for the whole file after edit blocks failed to apply.
pub fn rewrite(answer: &str, path: &str, error: &str) -> Vec<Value> {
    vec![
        json!({"role": "assistant", "content": answer}),
        json!({
            "role": "user",
            "content": format!(
                "Those edits did not apply ({error}). Answer instead with the complete new content of {path} in one fenced code block, and nothing else."
            ),
        }),
    ]
}

/// The whole file when small; otherwise the lines around those that mention a word of the
/// instruction (with `…` between regions), or the file's start when nothing matches.
pub fn region(instruction: &str, content: &str) -> String {
    let lines: Vec<&str> = content.lines().collect();
    if lines.len() <= WHOLE_FILE_LINES {
        let mut whole = content.to_owned();
        if !whole.ends_with('\n') {
            whole.push('\n');
        }
        return whole;
    }
    let words: Vec<String> = instruction
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 4)
        .map(str::to_lowercase)
        .collect();
    let mut keep = vec![false; lines.len()];
    let mut any = false;
    for (i, line) in lines.iter().enumerate() {
        let lower = line.to_lowercase();
        if words.iter().any(|w| lower.contains(w.as_str())) {
            any = true;
            let (start, end) = (
                i.saturating_sub(CONTEXT),
                (i + CONTEXT + 1).min(lines.len()),
            );
            keep[start..end].iter_mut().for_each(|k| *k = true);
        }
    }
    if !any {
        keep[..WHOLE_FILE_LINES].iter_mut().for_each(|k| *k = true);
    }
    let mut out = String::new();
    let mut gap = false;
    for (line, kept) in lines.iter().zip(keep) {
        if kept {
            out.push_str(line);
            out.push('\n');
            gap = false;
        } else if !gap {
            out.push_str("…\n");
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::region;

    #[test]
    fn large_files_send_only_the_regions_the_instruction_names() {
        let mut file = String::new();
        for i in 0..1000 {
            file.push_str(&format!("line {i}\n"));
        }
        file = file.replace("line 500\n", "fn parse_config() {}\n");
        let sent = region("make parse_config return a Result", &file);
        assert!(sent.contains("fn parse_config() {}"));
        assert!(sent.contains("line 460") && !sent.contains("line 459\n"));
        assert!(sent.starts_with("…\n") && sent.ends_with("…\n"));
        assert_eq!(region("x", "a\nb"), "a\nb\n");
    }
}

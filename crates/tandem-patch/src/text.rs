//! File text as lines that keep their line endings, so CRLF files and files without a final newline come back
//! byte for byte where an edit did not touch them.

/// The line ending a file mostly uses: `"\r\n"` when most of its lines end that way, else `"\n"`.
pub(crate) fn eol(text: &str) -> &'static str {
    let lf = text.matches('\n').count();
    let crlf = text.matches("\r\n").count();
    if crlf * 2 > lf { "\r\n" } else { "\n" }
}

/// Lines including their endings; the last one may have none.
pub(crate) fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// A line without its ending.
pub(crate) fn content(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// `text` with every line ending replaced by `eol`.
pub(crate) fn with_eol(text: &str, eol: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in lines(text) {
        out.push_str(content(line));
        if line.ends_with('\n') {
            out.push_str(eol);
        }
    }
    out
}

//! Integration tests for tandem-patch: parsing each edit format, streaming at every split, applying to realistic
//! files, and per-hunk selection.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[cfg(test)] modules"
)]

#[cfg(test)]
mod apply;
#[cfg(test)]
mod diff;
#[cfg(test)]
mod formats;
#[cfg(test)]
mod stream;

use tandem_patch::{Edit, Event, ParserConfig, parse};

/// A parser configuration with no default path.
pub fn no_default() -> ParserConfig {
    ParserConfig {
        default_path: None,
        bare_fence_is_rewrite: false,
    }
}

/// The edits in `text`; fails the test on a malformed event.
pub fn edits(text: &str, config: ParserConfig) -> Vec<Edit> {
    parse(text, config)
        .into_iter()
        .map(|event| match event {
            Event::Edit(edit) => edit,
            Event::Malformed { line, message } => panic!("line {line}: {message}"),
        })
        .collect()
}

/// Applies the edits for `path` in order to `original`.
pub fn apply_to(original: &str, path: &str, edits: &[Edit]) -> String {
    let mine: Vec<&Edit> = edits
        .iter()
        .filter(|e| e.path.as_deref() == Some(path))
        .collect();
    tandem_patch::apply_all(original, mine).unwrap().text
}

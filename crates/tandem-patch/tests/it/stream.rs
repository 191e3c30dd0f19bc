//! The parser's events do not depend on how its input is split.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use tandem_patch::{Event, Parser, ParserConfig, parse};

fn config() -> ParserConfig {
    ParserConfig {
        default_path: Some("main.rs".to_owned()),
        bare_fence_is_rewrite: false,
    }
}

fn stream(pieces: &[&str]) -> Vec<Event> {
    let mut parser = Parser::new(config());
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(parser.push(piece));
    }
    events.extend(parser.finish());
    events
}

/// One answer mixing every format, with CRLF lines, unicode, and no final newline.
const MIXED: &str = "Plan: two edits.\r\n\r\nsrc/lib.rs\r\n```rust\r\n<<<<<<< SEARCH\r\nfn a() {}\r\n=======\r\nfn ä() {}\r\n>>>>>>> REPLACE\r\n```\r\n\n```diff\n--- a/x.py\n+++ b/x.py\n@@ -3,2 +3,2 @@\n a\n-b\n+β\n```\n*** Begin Patch\n*** Add File: n.txt\n+new\n*** Update File: m.txt\n@@ ctx\n-x\n+y\n*** Delete File: d.txt\n*** End Patch\nREADME.md\n```markdown\n# Title 🦀\n```\ntrailing <<<<<<< SEARCH";

#[test]
fn events_arrive_as_each_block_completes() {
    let text = "f.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n";
    let mut parser = Parser::new(config());
    let mut counts = Vec::new();
    for line in text.split_inclusive('\n') {
        counts.push(parser.push(line).len());
    }
    assert_eq!(counts, [0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn every_two_way_split_and_char_by_char() {
    let whole = parse(MIXED, config());
    assert_eq!(
        whole.iter().filter(|e| matches!(e, Event::Edit(_))).count(),
        6
    );
    for i in (0..=MIXED.len()).filter(|&i| MIXED.is_char_boundary(i)) {
        assert_eq!(stream(&[&MIXED[..i], &MIXED[i..]]), whole, "split at {i}");
    }
    let chars: Vec<String> = MIXED.chars().map(String::from).collect();
    let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(stream(&pieces), whole);
}

/// Splits `text` at the given byte offsets (moved to char boundaries).
fn split<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| {
            let mut c = c % (text.len() + 1);
            while !text.is_char_boundary(c) {
                c -= 1;
            }
            c
        })
        .collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts {
        out.push(&text[at..c]);
        at = c;
    }
    out.push(&text[at..]);
    out
}

fn answer() -> impl Strategy<Value = String> {
    let lines = prop::sample::select(vec![
        "<<<<<<< SEARCH\n",
        "=======\n",
        ">>>>>>> REPLACE\n",
        "src/a.rs\n",
        "```\n",
        "```rust\n",
        "--- a/x\n",
        "+++ b/x\n",
        "@@ -1,2 +1,2 @@\n",
        "@@\n",
        " ctx\n",
        "-old\n",
        "+new\n",
        "\n",
        "\r\n",
        "*** Begin Patch\n",
        "*** Update File: u\n",
        "*** Add File: n\n",
        "*** Move to: m\n",
        "*** End of File\n",
        "*** End Patch\n",
        "some prose é\n",
        "no newline",
    ]);
    prop::collection::vec(lines, 0..40).prop_map(|l| l.concat())
}

proptest! {
    #[test]
    fn random_chunking_matches_whole(text in answer(), cuts in prop::collection::vec(0usize..2048, 0..12)) {
        prop_assert_eq!(stream(&split(&text, &cuts)), parse(&text, config()));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}", cuts in prop::collection::vec(0usize..512, 0..6)) {
        prop_assert_eq!(stream(&split(&text, &cuts)), parse(&text, config()));
    }
}

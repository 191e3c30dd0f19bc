//! Fuzz target: `Scanner::scan` on arbitrary bytes must not panic, and every finding's ranges
//! must lie within the input with the secret inside the whole match.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tandem_dlp::{PiiConfig, Rules, Scanner};

/// Built once: compiling the rule set takes far longer than one scan.
static SCANNER: LazyLock<Scanner> = LazyLock::new(|| {
    let rules = Rules::builtin().unwrap_or_else(|err| panic!("builtin rules: {err}"));
    Scanner::new(&rules, &PiiConfig::all()).unwrap_or_else(|err| panic!("scanner: {err}"))
});

fuzz_target!(|data: &[u8]| {
    for finding in SCANNER.scan(data) {
        let (span, matched) = (&finding.span, &finding.matched);
        assert!(
            span.start <= span.end && span.end <= data.len(),
            "span {span:?} out of bounds for {} bytes: {finding:?}",
            data.len()
        );
        assert!(
            matched.start <= matched.end && matched.end <= data.len(),
            "matched {matched:?} out of bounds for {} bytes: {finding:?}",
            data.len()
        );
        assert!(
            matched.start <= span.start && span.end <= matched.end,
            "span {span:?} outside matched {matched:?}: {finding:?}"
        );
    }
});

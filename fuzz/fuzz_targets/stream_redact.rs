//! Fuzz target: redacting a text split into pieces (`Redactor::stream`) gives exactly what
//! redacting the whole text (`Redactor::redact`) gives, whenever both succeed.
//!
//! Input layout: byte 0 is a header. If its high bit is set the text is pushed one char at a time;
//! otherwise its low six bits are a count `n`, and the next `n` bytes are piece lengths in bytes
//! (each rounded up to the next char boundary; 0 pushes an empty piece). The rest of the input, as
//! lossy UTF-8, is the text; whatever the lengths leave over is the last piece.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use tandem_dlp::{Actions, PiiConfig, Redactor, Rules, Scanner};

/// Built once: compiling the rule set takes far longer than one redaction.
static REDACTOR: LazyLock<Redactor> = LazyLock::new(|| {
    let rules = Rules::builtin().unwrap_or_else(|err| panic!("builtin rules: {err}"));
    let scanner =
        Scanner::new(&rules, &PiiConfig::all()).unwrap_or_else(|err| panic!("scanner: {err}"));
    Redactor::new(Arc::new(scanner), Actions::redact_all(), [7u8; 32])
});

/// Splits `text` at char boundaries as the header asks.
fn pieces<'a>(header: u8, lengths: &[u8], text: &'a str) -> Vec<&'a str> {
    if header & 0x80 != 0 {
        return text
            .char_indices()
            .map(|(at, c)| &text[at..at + c.len_utf8()])
            .collect();
    }
    let mut out = Vec::with_capacity(lengths.len() + 1);
    let mut at = 0;
    for &length in lengths {
        let mut end = (at + usize::from(length)).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[at..end]);
        at = end;
    }
    out.push(&text[at..]);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&header, rest)) = data.split_first() else {
        return;
    };
    let count = if header & 0x80 != 0 {
        0
    } else {
        usize::from(header & 0x3f).min(rest.len())
    };
    let (lengths, text) = rest.split_at(count);
    let text = String::from_utf8_lossy(text);

    let Ok(whole) = REDACTOR.redact(&text) else {
        return;
    };
    let mut stream = REDACTOR.stream();
    let mut out = String::with_capacity(whole.text.len());
    // With every action `redact` and inputs far below the hold limit, a stream error would be a
    // bug: the whole text redacted fine.
    for piece in pieces(header, lengths, &text) {
        match stream.push(piece) {
            Ok(released) => out.push_str(&released),
            Err(err) => panic!("stream failed where the whole text did not: {err} for {text:?}"),
        }
    }
    match stream.finish() {
        Ok(released) => out.push_str(&released),
        Err(err) => panic!("stream finish failed where the whole text did not: {err} for {text:?}"),
    }
    assert_eq!(
        out,
        whole.text,
        "stream and whole redaction differ for {text:?} split {:?}",
        pieces(header, lengths, &text)
    );
});

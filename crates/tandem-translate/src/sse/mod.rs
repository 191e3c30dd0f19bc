//! An incremental, sans-IO parser and writer for Server-Sent Events as LLM APIs use them.
//!
//! Written here rather than taken from `eventsource-stream` because the gateway needs a parser that is
//! independent of any async runtime (so it can be fuzzed and property-tested on plain byte slices) and that
//! bounds the memory one event may take, so a hostile upstream cannot make the gateway buffer without end.
//! Invariant: the events produced do not depend on how the input bytes are split into chunks.

use crate::{Error, Result};

/// One dispatched event: the `event:` name (if any) and the joined `data:` lines.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field, when present.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental SSE parser. Feed bytes as they arrive; complete events come out.
#[derive(Debug)]
pub struct Parser {
    /// Bytes of the current, incomplete line.
    line: Vec<u8>,
    /// Fields of the event being built.
    event: Option<String>,
    data: String,
    has_data: bool,
    /// Bytes held for the current event, bounded by `max_event_bytes`.
    held: usize,
    max_event_bytes: usize,
    /// Whether the previous byte was a `\r` (so a following `\n` is part of the same line ending).
    after_cr: bool,
}

impl Parser {
    /// A parser that refuses any single event larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Parser {
            line: Vec::new(),
            event: None,
            data: String::new(),
            has_data: false,
            held: 0,
            max_event_bytes,
            after_cr: false,
        }
    }

    /// Feed the next chunk of bytes; appends each completed event to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<()> {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(pos) => {
                    self.push_line_bytes(&rest[..pos])?;
                    self.after_cr = rest[pos] == b'\r';
                    rest = &rest[pos + 1..];
                    self.end_line(out)?;
                }
                None => {
                    self.push_line_bytes(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    /// Signal the end of input: an event not yet closed by a blank line is dropped, as the SSE spec says.
    /// Returns whether such an incomplete event was pending (a truncated stream).
    pub fn finish(&mut self) -> bool {
        let pending = self.has_data || !self.line.is_empty();
        self.line.clear();
        self.reset_event();
        pending
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.held += bytes.len();
        if self.held > self.max_event_bytes {
            return Err(Error::Upstream(format!(
                "server-sent event larger than {} bytes",
                self.max_event_bytes
            )));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Event>) -> Result<()> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.reset_event();
            return Ok(());
        }
        let line = String::from_utf8(line)
            .map_err(|_| Error::Upstream("server-sent event is not UTF-8".to_owned()))?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn reset_event(&mut self) {
        self.event = None;
        self.data.clear();
        self.has_data = false;
        self.held = 0;
    }
}

/// Write one SSE event with an optional `event:` line. `data` must not contain line breaks (JSON never does).
pub fn frame(event: Option<&str>, data: &str) -> String {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

#[cfg(test)]
mod tests;

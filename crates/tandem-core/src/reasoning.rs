//! Opaque reasoning blobs (Anthropic thinking signatures, OpenAI `encrypted_content`) are only valid for the
//! backend that produced them. Tandem tags each blob it hands a client with that backend, and on the way back
//! unwraps blobs for their own backend and drops all others, so a session that changes backend never sends one
//! backend's reasoning to another.
//!
//! Tag format: `tdm1:{len}:{backend}:{blob}` where `backend` is `provider/model` and `len` its length in bytes.

use std::borrow::Cow;

use tandem_protocol::{ChatRequest, ChatResponse, Part, StreamEvent};

const PREFIX: &str = "tdm1:";

/// Tag `blob` as produced by `backend`.
pub fn tag(backend: &str, blob: &str) -> String {
    format!("{PREFIX}{}:{backend}:{blob}", backend.len())
}

/// Split a tagged blob into `(backend, blob)`; `None` if it is not tagged.
pub fn untag(tagged: &str) -> Option<(&str, &str)> {
    let rest = tagged.strip_prefix(PREFIX)?;
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    let backend = rest.get(..len)?;
    let blob = rest.get(len..)?.strip_prefix(':')?;
    Some((backend, blob))
}

/// The request as `backend` may see it: its own blobs unwrapped, every other blob dropped.
/// Reasoning parts left with neither text nor blob are removed. Borrows when nothing changes.
pub fn for_backend<'a>(req: &'a ChatRequest, backend: &str) -> Cow<'a, ChatRequest> {
    let has_blob = req.messages.iter().flat_map(|m| &m.parts).any(|p| {
        matches!(p, Part::Reasoning { encrypted, signature, .. } if encrypted.is_some() || signature.is_some())
    });
    if !has_blob {
        return Cow::Borrowed(req);
    }
    let mut req = req.clone();
    for message in &mut req.messages {
        message.parts.retain_mut(|part| {
            let Part::Reasoning {
                text,
                encrypted,
                signature,
                ..
            } = part
            else {
                return true;
            };
            let blob = signature.take().or_else(|| encrypted.take());
            *signature = blob
                .as_deref()
                .and_then(untag)
                .filter(|(origin, _)| *origin == backend)
                .map(|(_, raw)| raw.to_owned());
            signature.is_some() || !text.is_empty()
        });
    }
    Cow::Owned(req)
}

/// Tag the blobs of a stream event.
pub fn tag_event(backend: &str, event: StreamEvent) -> StreamEvent {
    match event {
        StreamEvent::ReasoningSignature(blob) => {
            StreamEvent::ReasoningSignature(tag(backend, &blob))
        }
        other => other,
    }
}

/// Tag the blobs of a complete answer.
pub fn tag_response(backend: &str, resp: &mut ChatResponse) {
    for part in &mut resp.parts {
        if let Part::Reasoning {
            encrypted,
            signature,
            ..
        } = part
        {
            for blob in [encrypted, signature].into_iter().flatten() {
                *blob = tag(backend, blob);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use tandem_protocol::{ChatRequest, Message, Part, Role};

    use crate::reasoning::{for_backend, tag, untag};

    fn reasoning(text: &str, signature: Option<&str>, encrypted: Option<&str>) -> Part {
        Part::Reasoning {
            id: None,
            text: text.into(),
            encrypted: encrypted.map(Into::into),
            signature: signature.map(Into::into),
        }
    }

    #[test]
    fn tags_round_trip_even_with_colons() {
        let t = tag("anthropic/claude:v1", "sig:abc");
        assert_eq!(untag(&t), Some(("anthropic/claude:v1", "sig:abc")));
        assert_eq!(untag("plain-blob"), None);
        assert_eq!(untag("tdm1:99:short"), None);
    }

    #[test]
    fn own_blobs_are_unwrapped_and_foreign_ones_dropped() {
        let mine = tag("a/m", "S1");
        let theirs = tag("b/m", "S2");
        let req = ChatRequest::new(
            "m",
            vec![Message {
                role: Role::Assistant,
                parts: vec![
                    reasoning("thought", Some(&mine), None),
                    reasoning("", None, Some(&theirs)),
                    reasoning("kept text", None, Some("untagged-foreign")),
                    Part::Text("answer".into()),
                ],
            }],
        );
        let out = for_backend(&req, "a/m");
        assert_eq!(
            out.messages[0].parts,
            vec![
                reasoning("thought", Some("S1"), None),
                reasoning("kept text", None, None),
                Part::Text("answer".into()),
            ]
        );
        let other = for_backend(&req, "b/m");
        assert_eq!(other.messages[0].parts[0], reasoning("thought", None, None));
        assert_eq!(other.messages[0].parts[1], reasoning("", Some("S2"), None));
    }
}

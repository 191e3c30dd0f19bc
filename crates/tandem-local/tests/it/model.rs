//! A real GGUF model (SmolLM2-135M-Instruct, installed by `tandem models install smollm2-135m`; `cargo xtask
//! ci` installs it) through llama.cpp: prompt lookup equals greedy decoding, and the provider streams,
//! reuses its cache, refuses what does not fit and stops when the client goes away.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::OnceLock;

use futures::StreamExt;
use tandem_local::generate::{Sampling, Settings, generate};
use tandem_local::lookup::LookupSettings;
use tandem_local::{EngineKind, EngineOptions, LocalConfig, LocalProvider, Model, Template};
use tandem_protocol::{ChatRequest, FinishReason, Message, Role, StreamEvent};
use tandem_providers::Provider;

fn model_path(name: &str) -> PathBuf {
    let env = |k: &str| std::env::var(k).ok();
    let dir = tandem_local::catalog::models_dir(&env);
    let model = tandem_local::catalog::find(name).unwrap();
    let path = tandem_local::catalog::installed_path(&dir, model);
    assert!(
        path.is_file(),
        "the test model {name} is not installed in {}: run `cargo run --bin tandem -- models install {name}` \
         (`cargo xtask ci` does), or set TANDEM_MODELS_DIR",
        dir.display()
    );
    path
}

fn options() -> EngineOptions {
    EngineOptions {
        threads: 2,
        context: 4096,
        ..EngineOptions::default()
    }
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(&model_path("smollm2-135m"), &options()).unwrap())
}

const FILE: &str = "def parse_line(line):\n    key, _, value = line.partition('=')\n    return key.strip(), value.strip()\n\n\ndef parse_lines(text):\n    out = {}\n    for line in text.splitlines():\n        if not line.strip() or line.startswith('#'):\n            continue\n        key, value = parse_line(line)\n        out[key] = value\n    return out\n\n\ndef dump(values):\n    return '\\n'.join(f'{k}={v}' for k, v in sorted(values.items()))\n";

fn edit_prompt(model: &Model) -> Vec<u32> {
    let (bos, eos) = model.special_texts();
    let template = Template::new(model.template(), bos, eos).unwrap();
    let user = format!(
        "```python\n{FILE}```\nRename the function `parse_line` to `parse_record` (its definition and every call). \
         Output the complete file in one code block."
    );
    let text = template
        .render(&[Message::text(Role::User, user)], &[])
        .unwrap();
    model.tokenize(&text)
}

fn run(lookup: Option<LookupSettings>) -> (Vec<u32>, tandem_local::generate::Stats) {
    let model = model();
    let mut engine = model.context(&options()).unwrap();
    let prompt = edit_prompt(model);
    let settings = Settings {
        max_tokens: 160,
        sampling: Sampling::Greedy,
        lookup,
    };
    let mut out = Vec::new();
    let (_, stats) = generate(
        &mut engine,
        &prompt,
        0,
        &[],
        &settings,
        &|t| model.is_end(t),
        &mut |t| {
            out.push(t);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    (out, stats)
}

#[test]
fn prompt_lookup_equals_greedy_on_a_real_model() {
    let (plain, plain_stats) = run(None);
    let (lookup, stats) = run(Some(LookupSettings::default()));
    assert!(
        plain.len() > 20,
        "the model said too little: {plain_stats:?}"
    );
    assert_eq!(plain, lookup, "prompt lookup changed the output");
    assert_eq!(plain_stats.drafted, 0);
    assert!(stats.accepted > 0, "no draft was accepted: {stats:?}");
    assert!(
        stats.passes < plain_stats.passes,
        "{stats:?} vs {plain_stats:?}"
    );
}

fn config(max_queue: usize) -> LocalConfig {
    LocalConfig {
        name: "local".into(),
        path: model_path("smollm2-135m"),
        kind: EngineKind::LlamaCpp,
        engine: options(),
        lookup: Some(LookupSettings::default()),
        max_queue,
    }
}

/// The text parts of an answer, joined.
fn answer_text(response: &tandem_protocol::ChatResponse) -> String {
    response
        .parts
        .iter()
        .filter_map(|p| match p {
            tandem_protocol::Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn request(text: &str, max_tokens: Option<u32>) -> ChatRequest {
    let mut req = ChatRequest::new("live", vec![Message::text(Role::User, text)]);
    req.max_output_tokens = max_tokens;
    req
}

#[tokio::test]
async fn streams_counts_and_reuses_the_cache() {
    let provider = LocalProvider::start(config(4)).unwrap();
    let req = request("Write a Python function that adds two numbers.", Some(48));
    let mut stream = provider.stream(&req, "live").await.unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    assert!(matches!(events[0], StreamEvent::Start { .. }), "{events:?}");
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(!text.is_empty());
    let Some(StreamEvent::Usage(usage)) = events.last() else {
        panic!("no usage last: {events:?}");
    };
    assert!(usage.input_tokens > 10);
    assert!(usage.output_tokens > 0 && usage.output_tokens <= 48);
    assert!(events.iter().any(|e| matches!(e, StreamEvent::Finish(_))));

    // The same conversation again: all of the prompt but its last token comes from the cache, and the
    // answer is the same (greedy).
    let again = provider.complete(&req, "live").await.unwrap();
    assert_eq!(again.usage.cached_input_tokens, usage.input_tokens - 1);
    assert_eq!(again.usage.output_tokens, usage.output_tokens);
    assert_eq!(answer_text(&again), text);
}

#[tokio::test]
async fn stops_when_the_client_goes_away() {
    let provider = LocalProvider::start(config(4)).unwrap();
    let long = request("Count from 1 to 500, one number per line.", Some(2000));
    let mut stream = provider.stream(&long, "live").await.unwrap();
    // Read until the first text, then hang up.
    while let Some(event) = stream.next().await {
        if matches!(event.unwrap(), StreamEvent::TextDelta(_)) {
            break;
        }
    }
    drop(stream);
    // The worker is free again at once: the next answer reports how much of the cache it reused, and its
    // prompt shares the first one's start, so only a few tokens were generated for the dropped one.
    let short = provider
        .complete(&request("Say hi.", Some(4)), "live")
        .await
        .unwrap();
    assert!(short.usage.output_tokens <= 4);
    assert!(
        provider.generated_total() < 60,
        "generated {} tokens",
        provider.generated_total()
    );
}

#[tokio::test]
async fn refuses_what_does_not_fit_and_limits_the_answer() {
    let provider = LocalProvider::start(config(4)).unwrap();
    let huge = "word ".repeat(5000);
    let err = provider.stream(&request(&huge, None), "live").await;
    let mut stream = err.unwrap();
    let mut failure = None;
    while let Some(event) = stream.next().await {
        if let Err(e) = event {
            failure = Some(e);
        }
    }
    let failure = failure.expect("an oversized prompt must fail");
    assert_eq!(
        failure.kind(),
        tandem_protocol::ErrorKind::BadRequest,
        "{failure}"
    );
    assert!(failure.to_string().contains("context"), "{failure}");

    let limited = provider
        .complete(&request("Count from 1 to 100.", Some(3)), "live")
        .await
        .unwrap();
    assert_eq!(limited.usage.output_tokens, 3);
    assert_eq!(limited.finish, FinishReason::Length);
}

#[test]
fn a_missing_or_broken_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Model::load(&dir.path().join("nope.gguf"), &options()).unwrap_err();
    assert!(err.to_string().contains("nope.gguf"), "{err}");
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file").unwrap();
    let err = Model::load(&junk, &options()).unwrap_err();
    assert!(matches!(err, tandem_local::Error::Load { .. }), "{err}");
}

/// The pure-Rust engine answers through the same provider; it cannot roll its cache back, so it reuses
/// nothing and drafts nothing, and still stops at the token limit.
#[cfg(feature = "candle")]
#[tokio::test]
async fn candle_answers_through_the_same_provider() {
    let provider = LocalProvider::start(LocalConfig {
        kind: EngineKind::Candle,
        ..config(4)
    })
    .unwrap();
    let req = request("Write a Python function that adds two numbers.", Some(24));
    let first = provider.complete(&req, "live").await.unwrap();
    assert!(!answer_text(&first).trim().is_empty(), "{first:?}");
    assert!(first.usage.output_tokens > 0 && first.usage.output_tokens <= 24);
    let again = provider.complete(&req, "live").await.unwrap();
    assert_eq!(again.usage.cached_input_tokens, 0);
    assert_eq!(again.usage.output_tokens, first.usage.output_tokens);

    // The same template and tokenizer as llama.cpp's: the prompt has the same length (SmolLM2's `smollm`
    // pre-tokenizer is approximated by plain byte-level BPE in candle, which may split one word differently).
    let llama = LocalProvider::start(config(4)).unwrap();
    let reference = llama.complete(&req, "live").await.unwrap();
    assert!(
        first
            .usage
            .input_tokens
            .abs_diff(reference.usage.input_tokens)
            <= 1,
        "candle {} vs llama.cpp {} prompt tokens",
        first.usage.input_tokens,
        reference.usage.input_tokens
    );
}

#[test]
fn a_long_prefill_stops_between_chunks_when_cancelled() {
    use tandem_local::generate::Forward;
    let model = model();
    let mut engine = model.context(&options()).unwrap();
    engine.set_cancel(Some(std::sync::Arc::new(|| true)));
    let tokens: Vec<u32> = (0..600).map(|i| 1000 + i).collect();
    // One chunk is evaluated before the first check; more are not.
    assert!(engine.eval(&tokens[..200], 0, false).is_ok());
    let err = engine.eval(&tokens[200..], 200, false).unwrap_err();
    assert!(matches!(err, tandem_local::Error::Cancelled), "{err}");
    engine.set_cancel(None);
    engine.truncate(200).unwrap();
    assert!(engine.eval(&tokens[200..], 200, false).is_ok());
}

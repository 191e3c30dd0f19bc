//! The decoding loop against a toy model whose every logit depends on the whole cached prefix, so a
//! wrong rollback or a misplaced position changes the output.

use std::ops::ControlFlow;

use super::*;
use crate::error::Error;

const VOCAB: usize = 32;
const END: u32 = 31;

/// The prompt: 30 distinct tokens. The toy mostly continues it cyclically from wherever the last token
/// occurs in it (so drafts from the prompt are often right), now and then jumps elsewhere (so drafts
/// miss), and every logit also depends on a hash of the whole prefix.
const PROMPT: [u32; 30] = [
    7, 3, 22, 15, 0, 28, 11, 19, 4, 26, 9, 1, 17, 24, 6, 13, 29, 2, 20, 10, 25, 5, 16, 8, 27, 12,
    21, 14, 18, 23,
];

struct Toy {
    cache: Vec<u32>,
    logits: Vec<Vec<f32>>,
    passes: usize,
}

impl Toy {
    fn new() -> Self {
        Toy {
            cache: Vec::new(),
            logits: Vec::new(),
            passes: 0,
        }
    }

    fn logits_for(prefix: &[u32]) -> Vec<f32> {
        let hash = prefix.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &t| {
            (h ^ u64::from(t)).wrapping_mul(0x100_0000_01b3)
        });
        let last = prefix.last().copied().unwrap_or(0);
        let at = PROMPT.iter().position(|&t| t == last).unwrap_or(0);
        let favourite = PROMPT[(at + 1) % PROMPT.len()] as usize;
        let mut out: Vec<f32> = (0..VOCAB)
            .map(|i| ((hash >> (i % 60)) & 0xff) as f32 / 256.0)
            .collect();
        out[favourite] += 1.5;
        if hash % 7 == 0 {
            out[PROMPT[(hash % 30) as usize] as usize] += 3.0;
        }
        if prefix.len() > 200 && hash % 5 == 0 {
            out[END as usize] += 10.0;
        }
        out
    }
}

impl Forward for Toy {
    fn eval(&mut self, tokens: &[u32], pos: usize, all: bool) -> Result<()> {
        if pos != self.cache.len() {
            return Err(Error::Engine(format!(
                "eval at {pos} with {} cached",
                self.cache.len()
            )));
        }
        self.passes += 1;
        self.logits.clear();
        for (i, &t) in tokens.iter().enumerate() {
            self.cache.push(t);
            if all || i + 1 == tokens.len() {
                self.logits.push(Toy::logits_for(&self.cache));
            } else {
                self.logits.push(Vec::new());
            }
        }
        Ok(())
    }

    fn logits(&self, i: usize) -> &[f32] {
        &self.logits[i]
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        self.cache.truncate(len);
        Ok(())
    }

    fn context_size(&self) -> usize {
        usize::MAX
    }
}

fn run(prompt: &[u32], settings: &Settings) -> (Vec<u32>, Stop, Stats, usize) {
    let mut toy = Toy::new();
    let mut out = Vec::new();
    let (stop, stats) = generate(
        &mut toy,
        prompt,
        0,
        &[],
        settings,
        &|t| t == END,
        &mut |t| {
            out.push(t);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    (out, stop, stats, toy.passes)
}

fn prompt() -> Vec<u32> {
    PROMPT.to_vec()
}

#[test]
fn prompt_lookup_output_equals_greedy_token_for_token() {
    for max_tokens in [1, 2, 7, 40, 200] {
        let plain = Settings {
            max_tokens,
            sampling: Sampling::Greedy,
            lookup: None,
        };
        let lookup = Settings {
            lookup: Some(LookupSettings {
                ngram_max: 3,
                ngram_min: 1,
                k_min: 2,
                k_max: 12,
            }),
            ..plain.clone()
        };
        let (a, stop_a, stats_a, _) = run(&prompt(), &plain);
        let (b, stop_b, stats_b, passes_b) = run(&prompt(), &lookup);
        assert_eq!(a, b, "max_tokens {max_tokens}");
        assert_eq!(stop_a, stop_b);
        assert_eq!(stats_a.generated, stats_b.generated);
        assert_eq!(stats_a.drafted, 0);
        if max_tokens == 200 {
            assert!(stats_b.accepted > 20, "{stats_b:?}");
            assert!(
                stats_b.accepted < stats_b.drafted,
                "some drafts must miss: {stats_b:?}"
            );
            assert!(passes_b < stats_a.passes, "{passes_b} vs {stats_a:?}");
        }
    }
}

#[test]
fn stops_at_the_end_token_and_at_the_consumer() {
    let settings = Settings {
        max_tokens: 10_000,
        sampling: Sampling::Greedy,
        lookup: Some(LookupSettings::default()),
    };
    let (out, stop, stats, _) = run(&prompt(), &settings);
    assert_eq!(stop, Stop::End);
    assert!(!out.contains(&END));
    assert_eq!(out.len(), stats.generated);

    let mut toy = Toy::new();
    let mut seen = 0;
    let (stop, stats) = generate(
        &mut toy,
        &prompt(),
        0,
        &[],
        &settings,
        &|t| t == END,
        &mut |_| {
            seen += 1;
            if seen == 5 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!((stop, seen, stats.generated), (Stop::Consumer, 5, 5));
}

#[test]
fn reuses_a_cached_prefix() {
    let settings = Settings {
        max_tokens: 30,
        sampling: Sampling::Greedy,
        lookup: None,
    };
    let (expected, ..) = run(&prompt(), &settings);
    let mut toy = Toy::new();
    let p = prompt();
    // Leave the first 50 prompt tokens plus some junk in the cache, as an earlier request would.
    toy.eval(&p[..20], 0, false).unwrap();
    toy.eval(&[1, 2, 3], 20, false).unwrap();
    let mut out = Vec::new();
    let (_, stats) = generate(&mut toy, &p, 20, &[], &settings, &|t| t == END, &mut |t| {
        out.push(t);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(out, expected);
    assert_eq!((stats.reused, stats.prefilled), (20, 10));
}

#[test]
fn sampling_with_lookup_keeps_the_distribution() {
    // The distribution of the first few tokens over many seeds must match plain sampling.
    let p = prompt();
    let mut counts = [[0u32; VOCAB]; 2];
    let n = 3000;
    for seed in 0..n {
        for (mode, lookup) in [None, Some(LookupSettings::default())]
            .into_iter()
            .enumerate()
        {
            let settings = Settings {
                max_tokens: 4,
                sampling: Sampling::Random {
                    temperature: 0.7,
                    top_p: 0.95,
                    seed: seed + mode as u64 * 1_000_000,
                },
                lookup,
            };
            let (out, ..) = run(&p, &settings);
            if let Some(&t) = out.get(3) {
                counts[mode][t as usize] += 1;
            }
        }
    }
    for (t, (&plain, &drafted)) in counts[0].iter().zip(&counts[1]).enumerate() {
        let a = f64::from(plain) / n as f64;
        let b = f64::from(drafted) / n as f64;
        assert!((a - b).abs() < 0.04, "token {t}: {a:.3} vs {b:.3}");
    }
}

#[test]
fn nucleus_and_argmax() {
    assert_eq!(argmax(&[0.1, 3.0, 3.0, -1.0]), 1);
    let mut probs = Vec::new();
    nucleus(&[0.0, 10.0, 0.0, 9.0], 1.0, 0.5, &mut probs);
    assert_eq!(probs.len(), 1);
    assert_eq!(probs[0].0, 1);
    nucleus(&[0.0, 10.0, 0.0, 9.0], 1.0, 1.0, &mut probs);
    assert_eq!(probs.len(), 4);
    assert!((probs.iter().map(|p| p.1).sum::<f32>() - 1.0).abs() < 1e-5);
}

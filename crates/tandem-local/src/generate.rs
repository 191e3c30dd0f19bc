//! The decoding loop: prefill, then one token per pass or, with prompt lookup, a verified draft per pass.
//!
//! The loop is engine-agnostic: it drives any [`Forward`] (llama.cpp here, a toy model in the tests). With
//! greedy sampling, drafted tokens are kept only where they equal the model's own argmax at that position,
//! and the cache is cut back to the last kept token, so the output is plain greedy decoding's token for token.
//! With temperature sampling a draft token `d` is kept with probability `p(d)`, and otherwise a token is
//! drawn from `p` without `d`: the standard speculative rule for a point-mass draft, which keeps the output
//! distribution exact.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::error::Result;
use crate::lookup::{Drafter, LookupSettings};

/// What a decoding engine does for the loop. The KV cache holds one sequence.
pub trait Forward {
    /// Evaluate `tokens` at positions `pos..pos + tokens.len()`; the cache must hold exactly `pos` tokens.
    /// Keeps logits for every position when `all` is set, else for the last one only.
    fn eval(&mut self, tokens: &[u32], pos: usize, all: bool) -> Result<()>;
    /// Logits after the `i`-th token of the last [`Forward::eval`] (with `all` unset, only the last `i`).
    fn logits(&self, i: usize) -> &[f32];
    /// Keep only the first `len` positions of the cache.
    fn truncate(&mut self, len: usize) -> Result<()>;
    /// Whether [`Forward::truncate`] can cut the cache anywhere and [`Forward::eval`] can keep every
    /// position's logits. Without it there is no cache reuse and no prompt lookup.
    fn can_rollback(&self) -> bool {
        true
    }
    /// The context window in tokens.
    fn context_size(&self) -> usize;
    /// A check made between chunks of a long evaluation (a prefill): when it returns true, the evaluation
    /// stops with [`crate::Error::Cancelled`].
    fn set_cancel(&mut self, _cancel: Option<Cancel>) {}
}

/// Whether the work should stop (the client went away).
pub type Cancel = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// A loaded model, whatever the engine: its tokenizer, chat template and contexts.
pub trait Backend {
    /// The model's own name.
    fn name(&self) -> &str;
    /// The Jinja chat template in the model file, if any.
    fn template(&self) -> Option<&str>;
    /// The BOS and EOS tokens' text, for templates that use them.
    fn special_texts(&self) -> (String, String);
    /// Tokenize a rendered prompt (special-token text becomes those tokens).
    fn tokenize(&self, text: &str) -> Vec<u32>;
    /// Append the bytes a generated token stands for (control tokens add nothing).
    fn piece(&self, token: u32, out: &mut Vec<u8>);
    /// Whether a token ends generation.
    fn is_end(&self, token: u32) -> bool;
    /// A context on this model.
    fn context(&self, options: &crate::EngineOptions) -> Result<Box<dyn Forward + '_>>;
}

/// How the next token is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token (temperature 0).
    Greedy,
    /// Drawn at a temperature from the smallest set of tokens whose probability reaches `top_p`.
    Random {
        /// Softmax temperature, above 0.
        temperature: f32,
        /// Nucleus mass in (0, 1].
        top_p: f32,
        /// Seed of the draw.
        seed: u64,
    },
}

/// One generation's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// How tokens are chosen.
    pub sampling: Sampling,
    /// Prompt-lookup drafting; `None` for one token per pass.
    pub lookup: Option<LookupSettings>,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The model produced an end-of-generation token.
    End,
    /// `max_tokens` were generated.
    Length,
    /// The consumer asked to stop (a stop sequence, or the client went away).
    Consumer,
}

/// Counters of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Prompt tokens evaluated in this call (not counting reused cache).
    pub prefilled: usize,
    /// Prompt tokens already in the cache and reused.
    pub reused: usize,
    /// Tokens generated.
    pub generated: usize,
    /// Forward passes after the prefill.
    pub passes: usize,
    /// Draft tokens proposed.
    pub drafted: usize,
    /// Draft tokens accepted.
    pub accepted: usize,
    /// Time spent on the prefill.
    pub prefill_time: Duration,
    /// Time spent generating after the prefill.
    pub decode_time: Duration,
}

impl Stats {
    /// Share of drafted tokens that were accepted.
    pub fn acceptance(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    /// Generated tokens per forward pass.
    pub fn tokens_per_pass(&self) -> f64 {
        if self.passes == 0 {
            self.generated as f64
        } else {
            self.generated as f64 / (self.passes as f64 + 1.0)
        }
    }
}

/// Generate after `prompt`, whose first `reused` tokens are already in the cache.
///
/// `reference` is where drafts are looked up first (a predicted output, else the prompt). Each final token
/// goes to `emit` as soon as it is known; `emit` returning `Break` stops at once.
pub fn generate(
    model: &mut dyn Forward,
    prompt: &[u32],
    reused: usize,
    reference: &[u32],
    settings: &Settings,
    is_end: &dyn Fn(u32) -> bool,
    emit: &mut dyn FnMut(u32) -> ControlFlow<()>,
) -> Result<(Stop, Stats)> {
    let started = Instant::now();
    let mut stats = Stats::default();
    let Some(last) = prompt.len().checked_sub(1) else {
        return Ok((Stop::End, stats));
    };
    // At least the last prompt token is evaluated: its logits choose the first answer token.
    let rollback = model.can_rollback();
    let reused = if rollback { reused.min(last) } else { 0 };
    model.truncate(reused)?;
    model.eval(&prompt[reused..], reused, false)?;
    stats.reused = reused;
    stats.prefilled = prompt.len() - reused;
    let mut sampler = Sampler::new(settings.sampling);
    let mut pending = sampler.pick(model.logits(prompt.len() - reused - 1));
    stats.prefill_time = started.elapsed();
    let decode_started = Instant::now();

    let mut drafter = settings.lookup.filter(|_| rollback).map(Drafter::new);
    let reference = if reference.is_empty() {
        prompt
    } else {
        reference
    };
    let mut context = prompt.to_vec();
    let stop = 'outer: loop {
        // `pending` is final and not yet in the cache.
        if is_end(pending) {
            break Stop::End;
        }
        stats.generated += 1;
        if emit(pending).is_break() {
            break Stop::Consumer;
        }
        context.push(pending);
        if stats.generated >= settings.max_tokens {
            break Stop::Length;
        }
        let pos = context.len() - 1;
        let remaining = settings.max_tokens - stats.generated;
        let draft = match drafter.as_mut() {
            // The last draft token's own successor comes free with the pass, so draft one fewer than left.
            Some(d) => d.draft(&context, reference, remaining.saturating_sub(1)),
            None => Vec::new(),
        };
        let mut input = Vec::with_capacity(1 + draft.len());
        input.push(pending);
        input.extend_from_slice(&draft);
        model.eval(&input, pos, !draft.is_empty())?;
        stats.passes += 1;
        stats.drafted += draft.len();
        let mut accepted = 0;
        let next = loop {
            let logits = model.logits(if draft.is_empty() { 0 } else { accepted });
            match draft.get(accepted) {
                Some(&d) => match sampler.verify(logits, d) {
                    Ok(()) => accepted += 1,
                    Err(other) => break other,
                },
                None => break sampler.pick(logits),
            }
        };
        stats.accepted += accepted;
        if let Some(d) = drafter.as_mut() {
            d.feedback(draft.len(), accepted);
        }
        if accepted < draft.len() {
            model.truncate(pos + 1 + accepted)?;
        }
        for &token in &draft[..accepted] {
            // Accepted tokens are in the cache; a stop among them ends the answer there.
            if is_end(token) {
                break 'outer Stop::End;
            }
            stats.generated += 1;
            if emit(token).is_break() {
                break 'outer Stop::Consumer;
            }
            context.push(token);
            if stats.generated >= settings.max_tokens {
                break 'outer Stop::Length;
            }
        }
        pending = next;
    };
    stats.decode_time = decode_started.elapsed();
    Ok((stop, stats))
}

/// Chooses tokens from logits.
struct Sampler {
    sampling: Sampling,
    rng: Option<StdRng>,
    probs: Vec<(u32, f32)>,
}

impl Sampler {
    fn new(sampling: Sampling) -> Self {
        let rng = match sampling {
            Sampling::Greedy => None,
            Sampling::Random { seed, .. } => Some(StdRng::seed_from_u64(seed)),
        };
        Sampler {
            sampling,
            rng,
            probs: Vec::new(),
        }
    }

    fn pick(&mut self, logits: &[f32]) -> u32 {
        match (self.sampling, self.rng.as_mut()) {
            (
                Sampling::Random {
                    temperature, top_p, ..
                },
                Some(rng),
            ) => {
                nucleus(logits, temperature, top_p, &mut self.probs);
                let draw: f32 = rng.random();
                draw_from(&self.probs, draw)
            }
            _ => argmax(logits),
        }
    }

    /// Keep the draft token `d`, or say which token replaces it.
    fn verify(&mut self, logits: &[f32], d: u32) -> std::result::Result<(), u32> {
        match (self.sampling, self.rng.as_mut()) {
            (
                Sampling::Random {
                    temperature, top_p, ..
                },
                Some(rng),
            ) => {
                nucleus(logits, temperature, top_p, &mut self.probs);
                let p_d = self
                    .probs
                    .iter()
                    .find(|(t, _)| *t == d)
                    .map_or(0.0, |(_, p)| *p);
                let u: f32 = rng.random();
                if u < p_d {
                    return Ok(());
                }
                // Residual distribution: p without d, renormalised.
                self.probs.retain(|(t, _)| *t != d);
                let total: f32 = self.probs.iter().map(|(_, p)| p).sum();
                if total <= 0.0 {
                    return Ok(());
                }
                for (_, p) in &mut self.probs {
                    *p /= total;
                }
                let draw: f32 = rng.random();
                Err(draw_from(&self.probs, draw))
            }
            _ => {
                let best = argmax(logits);
                if best == d { Ok(()) } else { Err(best) }
            }
        }
    }
}

/// The index of the largest logit (the first on ties, as llama.cpp's greedy sampler).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    u32::try_from(best).unwrap_or(0)
}

/// The nucleus of `softmax(logits / temperature)` with mass `top_p`, renormalised, most likely first.
fn nucleus(logits: &[f32], temperature: f32, top_p: f32, out: &mut Vec<(u32, f32)>) {
    out.clear();
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let t = temperature.max(1e-4);
    out.extend(
        logits
            .iter()
            .enumerate()
            .map(|(i, &v)| (u32::try_from(i).unwrap_or(0), ((v - max) / t).exp())),
    );
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
    let total: f32 = out.iter().map(|(_, p)| p).sum();
    let mut kept = 0.0;
    let mut n = 0;
    for (_, p) in out.iter_mut() {
        *p /= total;
        kept += *p;
        n += 1;
        if kept >= top_p {
            break;
        }
    }
    out.truncate(n.max(1));
    let kept: f32 = out.iter().map(|(_, p)| p).sum();
    for (_, p) in out.iter_mut() {
        *p /= kept;
    }
}

fn draw_from(probs: &[(u32, f32)], draw: f32) -> u32 {
    let mut acc = 0.0;
    for &(t, p) in probs {
        acc += p;
        if draw < acc {
            return t;
        }
    }
    probs.last().map_or(0, |(t, _)| *t)
}

#[cfg(test)]
mod tests;

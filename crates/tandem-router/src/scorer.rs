//! Scorers estimate P(deep needed) from [`Features`]; the router consults one when no rule matched.
//!
//! [`LogisticScorer`] is logistic regression over [`FEATURE_NAMES`]: log-scaled sizes and counts, a one-hot
//! task class and flags. It is trained with plain full-batch gradient descent from zero weights, so the
//! same examples always give the same weights, and it reads and writes a small JSON document:
//! `{"bias": -2.2, "weights": {"log_prompt_tokens": 1.2, ...}}` (weights not listed are zero).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Features, Result};

#[cfg(test)]
mod tests;

/// Estimates P(deep needed) in `[0, 1]`.
pub trait Scorer: Send + Sync {
    /// A short ASCII name for reasons and reports (`logistic`, `prior`).
    fn name(&self) -> &str;
    /// P(deep needed), in `[0, 1]`.
    fn score(&self, f: &Features) -> f64;
    /// Per-feature contributions to the score, largest magnitude first, for explanations; may be empty.
    fn contributions(&self, f: &Features) -> Vec<(String, f64)> {
        let _ = f;
        Vec::new()
    }
}

/// Which scorer a router consults when no rule matches.
#[derive(Clone)]
pub enum ScorerConfig {
    /// The hand-set [`LogisticScorer::prior`].
    Prior,
    /// Trained logistic weights.
    Logistic(Box<LogisticScorer>),
    /// Any other implementation.
    Custom(Arc<dyn Scorer>),
}

impl fmt::Debug for ScorerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScorerConfig::Prior => f.write_str("Prior"),
            ScorerConfig::Logistic(s) => f.debug_tuple("Logistic").field(s).finish(),
            ScorerConfig::Custom(s) => write!(f, "Custom({})", s.name()),
        }
    }
}

impl ScorerConfig {
    pub(crate) fn into_scorer(self) -> Arc<dyn Scorer> {
        match self {
            ScorerConfig::Prior => Arc::new(LogisticScorer::prior()),
            ScorerConfig::Logistic(s) => Arc::new(*s),
            ScorerConfig::Custom(s) => s,
        }
    }
}

/// The logistic scorer's inputs, in vector order.
pub const FEATURE_NAMES: [&str; 24] = [
    "log_prompt_tokens",
    "log_last_user_tokens",
    "log_turns",
    "log_messages",
    "log_tools",
    "reasoning_effort",
    "log_files_named",
    "class_rename",
    "class_fix",
    "class_test",
    "class_refactor",
    "class_migration",
    "class_docs",
    "class_config",
    "class_other",
    "log_deep_verbs",
    "log_live_verbs",
    "log_tool_errors",
    "trailing_tool_error",
    "log_interrupts",
    "log_steers",
    "log_prior_failures",
    "log_retries",
    "escalated",
];

const N: usize = FEATURE_NAMES.len();

fn ln1p(x: impl Into<f64>) -> f64 {
    x.into().ln_1p()
}

/// The input vector: `ln(1+x)` of sizes (prompt and last-user tokens divided by 10, turns, tools and
/// files by 3, 3 and 2, messages by 5, so typical values sit in `[0, 1.5]`), reasoning effort as
/// none/minimal 0, low 1/3, medium 2/3, high 1, the class one-hot, `ln(1+n)` of counts, and flags as 0/1.
pub fn feature_vector(f: &Features) -> [f64; N] {
    let mut x = [0.0; N];
    #[expect(clippy::cast_precision_loss, reason = "token counts far below 2^52")]
    let (prompt, last_user) = (f.prompt_tokens as f64, f.last_user_tokens as f64);
    x[0] = prompt.ln_1p() / 10.0;
    x[1] = last_user.ln_1p() / 10.0;
    x[2] = ln1p(f.turns) / 3.0;
    x[3] = ln1p(f.messages) / 5.0;
    x[4] = ln1p(f.tools) / 3.0;
    x[5] = match f.reasoning_effort {
        None | Some(tandem_protocol::ReasoningEffort::Minimal) => 0.0,
        Some(tandem_protocol::ReasoningEffort::Low) => 1.0 / 3.0,
        Some(tandem_protocol::ReasoningEffort::Medium) => 2.0 / 3.0,
        Some(tandem_protocol::ReasoningEffort::High) => 1.0,
    };
    x[6] = ln1p(f.files_named) / 2.0;
    x[7 + f.task_class.index()] = 1.0;
    x[15] = ln1p(f.deep_verbs);
    x[16] = ln1p(f.live_verbs);
    x[17] = ln1p(f.tool_errors);
    x[18] = f64::from(u8::from(f.trailing_tool_error));
    x[19] = ln1p(f.interrupts);
    x[20] = ln1p(f.steers);
    x[21] = ln1p(f.prior_failures);
    x[22] = ln1p(f.retries);
    x[23] = f64::from(u8::from(f.escalated));
    x
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Logistic regression over [`feature_vector`]: `sigmoid(bias + w·x)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LogisticJson", into = "LogisticJson")]
pub struct LogisticScorer {
    name: String,
    weights: [f64; N],
    bias: f64,
}

/// The JSON form: `{"name": "logistic", "bias": b, "weights": {"feature": w, ...}}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogisticJson {
    #[serde(default = "default_name")]
    name: String,
    bias: f64,
    weights: Map<String, Value>,
}

fn default_name() -> String {
    "logistic".to_owned()
}

impl TryFrom<LogisticJson> for LogisticScorer {
    type Error = Error;

    fn try_from(json: LogisticJson) -> Result<Self> {
        let mut scorer = LogisticScorer {
            name: json.name,
            weights: [0.0; N],
            bias: json.bias,
        };
        if scorer.name.is_empty() || !scorer.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Scorer(
                "name must be non-empty printable ASCII".to_owned(),
            ));
        }
        if !scorer.bias.is_finite() {
            return Err(Error::Scorer("bias is not a finite number".to_owned()));
        }
        for (key, value) in json.weights {
            let Some(index) = FEATURE_NAMES.iter().position(|n| *n == key) else {
                return Err(Error::Scorer(format!(
                    "unknown feature `{key}` (known: {})",
                    FEATURE_NAMES.join(", ")
                )));
            };
            let Some(w) = value.as_f64().filter(|w| w.is_finite()) else {
                return Err(Error::Scorer(format!(
                    "weight of `{key}` is not a finite number"
                )));
            };
            scorer.weights[index] = w;
        }
        Ok(scorer)
    }
}

impl From<LogisticScorer> for LogisticJson {
    fn from(s: LogisticScorer) -> Self {
        let mut weights = Map::new();
        for (name, w) in FEATURE_NAMES.iter().zip(s.weights) {
            weights.insert((*name).to_owned(), Value::from(w));
        }
        LogisticJson {
            name: s.name,
            bias: s.bias,
            weights,
        }
    }
}

impl LogisticScorer {
    /// A scorer from named weights (features not listed weigh zero).
    pub fn new(name: &str, bias: f64, weights: &[(&str, f64)]) -> Result<Self> {
        let mut map = Map::new();
        for (key, w) in weights {
            map.insert((*key).to_owned(), Value::from(*w));
        }
        LogisticScorer::try_from(LogisticJson {
            name: name.to_owned(),
            bias,
            weights: map,
        })
    }

    /// Hand-set weights encoding the routing note's priors (§2.4): size, files, deep verbs, failures and
    /// structural classes push towards deep; live verbs and mechanical classes towards live. A plain
    /// rename with one file scores about 0.1, a four-file migration about 0.95.
    pub fn prior() -> Self {
        let mut weights = [0.0; N];
        let set: [(usize, f64); 21] = [
            (0, 1.2),
            (1, 0.8),
            (2, 0.3),
            (5, 0.8),
            (6, 1.6),
            (7, -1.2),
            (8, 0.2),
            (9, -0.2),
            (10, 0.8),
            (11, 1.2),
            (12, -0.9),
            (13, -0.4),
            (14, 0.3),
            (15, 1.2),
            (16, -0.8),
            (17, 0.5),
            (18, 0.8),
            (19, 0.6),
            (20, 0.3),
            (21, 1.5),
            (22, 1.0),
        ];
        for (i, w) in set {
            weights[i] = w;
        }
        weights[23] = 2.0;
        LogisticScorer {
            name: "prior".to_owned(),
            weights,
            bias: -2.2,
        }
    }

    /// Fit by full-batch gradient descent on the log loss with L2 penalty `l2` (not on the bias),
    /// from zero weights, `epochs` steps of size `lr`. Labels: `true` = deep was needed.
    /// Deterministic: the same examples in the same order give the same weights.
    pub fn train(examples: &[(Features, bool)], epochs: usize, lr: f64, l2: f64) -> Self {
        let xs: Vec<[f64; N]> = examples.iter().map(|(f, _)| feature_vector(f)).collect();
        let ys: Vec<f64> = examples
            .iter()
            .map(|(_, y)| f64::from(u8::from(*y)))
            .collect();
        let mut weights = [0.0; N];
        let mut bias = 0.0;
        #[expect(clippy::cast_precision_loss, reason = "example counts far below 2^52")]
        let n = examples.len().max(1) as f64;
        for _ in 0..epochs {
            let mut grad = [0.0; N];
            let mut grad_bias = 0.0;
            for (x, y) in xs.iter().zip(&ys) {
                let err = sigmoid(bias + dot(&weights, x)) - y;
                for (g, xi) in grad.iter_mut().zip(x) {
                    *g += err * xi;
                }
                grad_bias += err;
            }
            for (w, g) in weights.iter_mut().zip(grad) {
                *w -= lr * (g / n + l2 * *w);
            }
            bias -= lr * grad_bias / n;
        }
        LogisticScorer {
            name: "logistic".to_owned(),
            weights,
            bias,
        }
    }

    /// The same scorer under another name.
    pub fn with_name(mut self, name: &str) -> Result<Self> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Scorer(
                "name must be non-empty printable ASCII".to_owned(),
            ));
        }
        name.clone_into(&mut self.name);
        Ok(self)
    }

    /// The intercept.
    pub fn bias(&self) -> f64 {
        self.bias
    }

    /// `(feature, weight)` pairs in [`FEATURE_NAMES`] order.
    pub fn weights(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        FEATURE_NAMES
            .iter()
            .copied()
            .zip(self.weights.iter().copied())
    }

    /// The JSON form (pretty-printed).
    pub fn to_json(&self) -> String {
        let json = LogisticJson::from(self.clone());
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// Read the JSON form.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Scorer(e.to_string()))
    }
}

fn dot(w: &[f64; N], x: &[f64; N]) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

impl Scorer for LogisticScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, f: &Features) -> f64 {
        sigmoid(self.bias + dot(&self.weights, &feature_vector(f)))
    }

    fn contributions(&self, f: &Features) -> Vec<(String, f64)> {
        let x = feature_vector(f);
        let mut out: Vec<(String, f64)> = FEATURE_NAMES
            .iter()
            .zip(self.weights.iter().zip(x))
            .map(|(name, (w, xi))| ((*name).to_owned(), w * xi))
            .filter(|(_, c)| *c != 0.0)
            .collect();
        out.push(("bias".to_owned(), self.bias));
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        out
    }
}

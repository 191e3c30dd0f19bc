//! A refusal: which rule and scope refused a request, why, and when to retry, with the
//! human-readable message the gateway sends in its 429 body.

use std::fmt;

use serde::Serialize;
use tandem_protocol::ErrorKind;

use crate::Period;
use crate::time::format_rfc3339;

/// Which limit a request would exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceededKind {
    /// A budget's `max_tokens`.
    Tokens,
    /// A budget's `max_cost_usd`.
    Cost,
    /// A rate limit's `requests_per_minute`.
    Requests,
    /// A rate limit's `tokens_per_minute`.
    TokensPerMinute,
}

/// A request refused by a budget or rate limit: answer 429.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Exceeded {
    /// The rule's configured name.
    pub rule: String,
    /// The scope that ran out, e.g. `team:payments`.
    pub scope: String,
    /// Which limit.
    pub kind: ExceededKind,
    /// One sentence for the client, naming the rule, the scope, the numbers and the reset time.
    pub message: String,
    /// Seconds until the request could fit if nothing else happens (for `Retry-After`); `None` when it
    /// never can, because the request alone needs more than the limit.
    pub retry_after_s: Option<u64>,
}

impl Exceeded {
    /// The OpenAI-style error code: `insufficient_quota` for spent budgets, `rate_limit_exceeded` for
    /// rate limits (clients such as the OpenAI SDKs retry the latter with backoff, not the former).
    pub fn code(&self) -> &'static str {
        match self.kind {
            ExceededKind::Tokens | ExceededKind::Cost => "insufficient_quota",
            ExceededKind::Requests | ExceededKind::TokensPerMinute => "rate_limit_exceeded",
        }
    }

    /// The category the gateway maps to a status code (429).
    pub fn error_kind(&self) -> ErrorKind {
        ErrorKind::QuotaExceeded
    }
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exceeded {}

/// The numbers behind a budget refusal, in tokens or nano-dollars.
pub(crate) struct BudgetRefusal<'a> {
    pub(crate) rule: &'a str,
    pub(crate) scope: String,
    pub(crate) kind: ExceededKind,
    pub(crate) period: Period,
    pub(crate) used: u64,
    pub(crate) reserved: u64,
    pub(crate) need: u64,
    pub(crate) limit: u64,
    pub(crate) window_end_ms: i64,
    pub(crate) now_ms: i64,
}

impl BudgetRefusal<'_> {
    pub(crate) fn into_exceeded(self) -> Exceeded {
        let amount = |v| match self.kind {
            ExceededKind::Cost => usd(v, self.limit),
            _ => tokens(v),
        };
        let unit = match self.kind {
            ExceededKind::Cost => "",
            _ => " tokens",
        };
        let head = format!("budget `{}` for {}", self.rule, self.scope);
        let resets = format!("resets at {}", format_rfc3339(self.window_end_ms));
        let (message, retry_after_s) = if self.need > self.limit {
            let per = match self.period {
                Period::Day => "a day",
                Period::Month => "a month",
            };
            let message = format!(
                "{head} allows {}{unit} {per}, less than this request may use ({})",
                amount(self.limit),
                amount(self.need)
            );
            (message, None)
        } else {
            let used = format!(
                "{} of {}{unit} used {}",
                amount(self.used),
                amount(self.limit),
                self.period.this()
            );
            let message = if self.used >= self.limit {
                format!("{head} is spent: {used}; {resets}")
            } else if self.reserved > 0 {
                format!(
                    "{head} cannot cover this request: {used}, {} reserved by requests in flight, \
                     and this request may use up to {}; {resets}",
                    amount(self.reserved),
                    amount(self.need)
                )
            } else {
                format!(
                    "{head} cannot cover this request: {used} and this request may use up to {}; {resets}",
                    amount(self.need)
                )
            };
            (
                message,
                Some(ceil_seconds(self.window_end_ms.saturating_sub(self.now_ms))),
            )
        };
        Exceeded {
            rule: self.rule.to_owned(),
            scope: self.scope,
            kind: self.kind,
            message,
            retry_after_s,
        }
    }
}

/// A rate-limit refusal.
pub(crate) fn rate_refusal(
    rule: &str,
    scope: String,
    kind: ExceededKind,
    limit: u64,
    need: u64,
    retry_after_ms: Option<i64>,
) -> Exceeded {
    let head = format!("rate limit `{rule}` for {scope}");
    let message = match (kind, retry_after_ms) {
        (ExceededKind::Requests, Some(ms)) => {
            format!(
                "{head} is reached: {} requests per minute; retry in {} s",
                tokens(limit),
                ceil_seconds(ms)
            )
        }
        (_, Some(ms)) => format!(
            "{head} is reached: {} tokens per minute, and this request may use up to {}; retry in {} s",
            tokens(limit),
            tokens(need),
            ceil_seconds(ms)
        ),
        (ExceededKind::Requests, None) => format!("{head} allows no requests"),
        (_, None) => format!(
            "{head} allows {} tokens per minute, less than this request may use ({})",
            tokens(limit),
            tokens(need)
        ),
    };
    Exceeded {
        rule: rule.to_owned(),
        scope,
        kind,
        message,
        retry_after_s: retry_after_ms.map(ceil_seconds),
    }
}

/// Whole seconds, rounded up, at least 1.
fn ceil_seconds(ms: i64) -> u64 {
    u64::try_from(ms.max(1)).map_or(1, |ms| ms.div_ceil(1000))
}

/// `1234567` as `1,234,567`.
pub(crate) fn tokens(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Nano-dollars as `$1,234.56`: cents when the limit is at least a dollar, else four decimals.
pub(crate) fn usd(nanos: u64, limit_nanos: u64) -> String {
    let decimals: u32 = if limit_nanos >= 1_000_000_000 { 2 } else { 4 };
    let unit = 10u64.pow(9 - decimals);
    let scaled = nanos / unit + u64::from(nanos % unit >= unit / 2);
    let one = 10u64.pow(decimals);
    format!(
        "${}.{:0width$}",
        tokens(scaled / one),
        scaled % one,
        width = decimals as usize
    )
}

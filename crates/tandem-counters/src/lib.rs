//! Budget and rate-limit counters shared by several replicas, kept in Redis.
//!
//! `tandem-budget` decides which counters a request holds and what their limits are
//! ([`tandem_budget::SharedPlan`]); [`RedisCounters`] checks and reserves all of them in one Lua script,
//! which Redis runs atomically, so concurrent requests on any number of replicas can never jointly pass
//! a limit: the arithmetic is the local ledger's (`used + reserved + estimate <= limit`, the sliding
//! minute of two fixed minutes). Settling replaces the estimate by the actual usage in a second script.
//!
//! Keys are `{prefix}{counter key}`: one hash per budget window (`used_t`, `res_t`, `used_n`, `res_n`,
//! `req`) and per rate-limit minute (`req`, `tok`), each expiring one window after its own ends. All keys
//! of one request go to one script, so on Redis Cluster the prefix needs a hash tag (`{tandem}:`).
//!
//! Every call has a deadline; an unreachable Redis is an [`Error`], and the caller decides whether
//! that refuses the request (fail closed) or falls back to per-process counters (fail open).

mod error;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use tandem_budget::{ExceededKind, Limits, SharedPlan};

pub use error::{Error, Result};

/// How long one script may take, connecting included, before the call fails: long enough for a loaded
/// machine, short enough that an unreachable server fails requests fast rather than holding them.
const DEADLINE: Duration = Duration::from_secs(2);

/// Checks every counter of a plan and, if all fit, reserves the estimate in each.
///
/// KEYS: per counter, its key and the key it reads as the previous minute (itself for budgets).
/// ARGV: counter count, tokens, nano-dollars, then per counter: kind (0 budget, 1 rate), the first
/// limit (tokens, or requests per minute), the second (nano-dollars, or tokens per minute), ms into the
/// minute, expiry (Unix ms). A missing limit is -1.
/// Answers `{0}` when admitted, else `{counter (1-based), limit (1 tokens, 2 cost, 3 requests,
/// 4 tokens per minute), a, b}` with the numbers read: used and reserved, or the previous and current
/// minute's count.
const RESERVE: &str = r"
local n = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local nanos = tonumber(ARGV[3])
local W = 60000
local function num(v) return tonumber(v or '0') or 0 end
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local kind, max1, max2, elapsed = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local key = KEYS[2 * i - 1]
  if kind == 0 then
    local v = redis.call('HMGET', key, 'used_t', 'res_t', 'used_n', 'res_n')
    local ut, rt, un, rn = num(v[1]), num(v[2]), num(v[3]), num(v[4])
    if max1 >= 0 and ut + rt + tokens > max1 then return {i, 1, ut, rt} end
    if max2 >= 0 and un + rn + nanos > max2 then return {i, 2, un, rn} end
  else
    local c = redis.call('HMGET', key, 'req', 'tok')
    local p = redis.call('HMGET', KEYS[2 * i], 'req', 'tok')
    local cr, ct, pr, pt = num(c[1]), num(c[2]), num(p[1]), num(p[2])
    if max1 >= 0 and pr * (W - elapsed) + (cr + 1) * W > max1 * W then return {i, 3, pr, cr} end
    if max2 >= 0 and pt * (W - elapsed) + (ct + tokens) * W > max2 * W then return {i, 4, pt, ct} end
  end
end
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local key = KEYS[2 * i - 1]
  if tonumber(ARGV[a + 1]) == 0 then
    redis.call('HINCRBY', key, 'req', 1)
    redis.call('HINCRBY', key, 'res_t', tokens)
    redis.call('HINCRBY', key, 'res_n', nanos)
  else
    redis.call('HINCRBY', key, 'req', 1)
    redis.call('HINCRBY', key, 'tok', tokens)
  end
  redis.call('PEXPIREAT', key, ARGV[a + 5])
end
return {0}
";

/// Replaces a reservation's estimate by the actual usage in every counter it holds.
///
/// KEYS: the counters. ARGV: estimated tokens, estimated nano-dollars, actual tokens, actual
/// nano-dollars, then one kind per counter (0 budget, 1 rate). A counter that has expired (its window
/// is long over) is left alone; no value goes below zero.
const SETTLE: &str = r"
local et, en, at, an = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function num(v) return tonumber(v or '0') or 0 end
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    if tonumber(ARGV[4 + i]) == 0 then
      local v = redis.call('HMGET', key, 'used_t', 'res_t', 'used_n', 'res_n')
      redis.call('HSET', key,
        'used_t', num(v[1]) + at, 'res_t', math.max(num(v[2]) - et, 0),
        'used_n', num(v[3]) + an, 'res_n', math.max(num(v[4]) - en, 0))
    else
      redis.call('HSET', key, 'tok', math.max(num(redis.call('HGET', key, 'tok')) - et + at, 0))
    end
  end
end
return 0
";

/// What the counters said about a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every counter had room; the estimate is now held in each.
    Admitted,
    /// Counter `index` of the plan refused; nothing was reserved anywhere.
    Refused {
        /// Index into the plan's counters.
        index: usize,
        /// Which of its limits.
        kind: ExceededKind,
        /// Used tokens or nano-dollars (budgets), or the previous minute's count (rate limits).
        a: u64,
        /// Reserved tokens or nano-dollars (budgets), or the current minute's count (rate limits).
        b: u64,
    },
}

/// Counters in one Redis server (or one Cluster hash slot). Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
    reserve: Script,
    settle: Script,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCounters {
    /// Connects to `url` (`redis://host:port/db`); keys get `prefix`. The connection is re-established
    /// in the background when it drops.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisCounters> {
        let client = redis::Client::open(url).map_err(|err| Error::Redis(err.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| Error::Timeout(5_000))??;
        Ok(RedisCounters {
            conn,
            prefix: prefix.to_owned(),
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
        })
    }

    /// Checks every counter of `plan` and reserves its estimate in all of them, or in none.
    pub async fn reserve(&self, plan: &SharedPlan) -> Result<Verdict> {
        if plan.counters.is_empty() {
            return Ok(Verdict::Admitted);
        }
        let mut invocation = self.reserve.prepare_invoke();
        invocation
            .arg(plan.counters.len())
            .arg(plan.tokens)
            .arg(plan.nanos);
        for counter in &plan.counters {
            let key = format!("{}{}", self.prefix, counter.key);
            let previous = counter
                .previous
                .as_ref()
                .map_or_else(|| key.clone(), |p| format!("{}{p}", self.prefix));
            invocation.key(key).key(previous);
            let (kind, first, second, elapsed) = match &counter.limits {
                Limits::Budget {
                    max_tokens,
                    max_nanos,
                } => (0, limit(*max_tokens), limit(*max_nanos), 0),
                Limits::Rate {
                    max_requests,
                    max_tokens,
                    elapsed_ms,
                } => (1, limit(*max_requests), limit(*max_tokens), *elapsed_ms),
            };
            invocation
                .arg(kind)
                .arg(first)
                .arg(second)
                .arg(elapsed)
                .arg(counter.expire_at_ms);
        }
        let mut conn = self.conn.clone();
        let answer: Vec<i64> = deadline(invocation.invoke_async(&mut conn)).await?;
        verdict(&answer)
    }

    /// Replaces the estimate `plan` reserved by `tokens` and `nanos` actually used.
    pub async fn settle(&self, plan: &SharedPlan, tokens: u64, nanos: u64) -> Result<()> {
        if plan.counters.is_empty() {
            return Ok(());
        }
        let mut invocation = self.settle.prepare_invoke();
        invocation
            .arg(plan.tokens)
            .arg(plan.nanos)
            .arg(tokens)
            .arg(nanos);
        for counter in &plan.counters {
            invocation.key(format!("{}{}", self.prefix, counter.key));
        }
        for counter in &plan.counters {
            invocation.arg(match counter.limits {
                Limits::Budget { .. } => 0,
                Limits::Rate { .. } => 1,
            });
        }
        let mut conn = self.conn.clone();
        let _: Value = deadline(invocation.invoke_async(&mut conn)).await?;
        Ok(())
    }

    /// Whether Redis answers a `PING`.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: String = deadline(redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }
}

/// A limit as the scripts take it: -1 for none.
fn limit(value: Option<u64>) -> i64 {
    value.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

async fn deadline<T>(call: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
    let ms = u64::try_from(DEADLINE.as_millis()).unwrap_or(u64::MAX);
    tokio::time::timeout(DEADLINE, call)
        .await
        .map_err(|_| Error::Timeout(ms))?
        .map_err(Error::from)
}

/// The reserve script's answer.
fn verdict(answer: &[i64]) -> Result<Verdict> {
    match answer {
        [0] => Ok(Verdict::Admitted),
        [index, kind, a, b] => {
            let kind = match kind {
                1 => ExceededKind::Tokens,
                2 => ExceededKind::Cost,
                3 => ExceededKind::Requests,
                4 => ExceededKind::TokensPerMinute,
                _ => return Err(Error::Protocol(format!("{answer:?}"))),
            };
            let index = usize::try_from(*index)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .ok_or_else(|| Error::Protocol(format!("{answer:?}")))?;
            Ok(Verdict::Refused {
                index,
                kind,
                a: u64::try_from(*a).unwrap_or(0),
                b: u64::try_from(*b).unwrap_or(0),
            })
        }
        _ => Err(Error::Protocol(format!("{answer:?}"))),
    }
}

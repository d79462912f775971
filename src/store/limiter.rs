//! The shared limiter: per-tenant token bucket, daily-budget guard and concurrency cap,
//! either per process ([`LocalLimiter`]) or shared by every worker through Redis
//! ([`RedisLimiter`], one Lua script per decision so workers cannot interleave).
//!
//! Time is the caller's: every decision takes `now` from `sim::Clock`, so a virtual-clock
//! run gets the same decisions as a wall-clock one, and Redis's own clock is never read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::sim::Timestamp;

/// The environment variable naming the Redis limiter when no `--redis-url` is given.
pub const REDIS_URL_ENV: &str = "SYNCGATE_REDIS_URL";

/// How a tenant's requests are limited.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitPolicy {
    /// Tokens the bucket gains per second (> 0).
    pub rate_per_sec: f64,
    /// Bucket size: requests that may go out back to back.
    pub burst: u32,
    /// Requests allowed per UTC day of the clock.
    pub daily_budget: u64,
    /// Requests in flight at once, across every worker.
    pub max_concurrent: u32,
    /// A permit not released within this time (its worker died) frees its slot.
    pub permit_ttl: Duration,
    /// How long to wait before asking again when every slot is taken.
    pub slot_poll: Duration,
}

impl Default for LimitPolicy {
    fn default() -> Self {
        LimitPolicy {
            rate_per_sec: 20.0,
            burst: 20,
            daily_budget: 15_000,
            max_concurrent: 4,
            permit_ttl: Duration::from_secs(600),
            slot_poll: Duration::from_millis(100),
        }
    }
}

impl LimitPolicy {
    fn check(&self) -> Result<(), LimitError> {
        if !(self.rate_per_sec.is_finite() && self.rate_per_sec > 0.0) {
            return Err(LimitError::Policy(format!(
                "rate_per_sec must be a positive number, not {}",
                self.rate_per_sec
            )));
        }
        if self.burst == 0 || self.max_concurrent == 0 {
            return Err(LimitError::Policy(
                "burst and max_concurrent must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Leave to send one request; give it back with [`Limiter::release`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    pub tenant: String,
    pub id: u64,
}

/// Why a request must wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The day's budget is spent; `until` is the next window.
    DailyBudget,
    /// The day's budget is spent but requests granted in it are still in flight; ask again
    /// at `until`. Moving on to the next window only once they have landed keeps a virtual
    /// clock from jumping to tomorrow under a request that was counted today.
    Draining,
    /// The bucket is empty; `until` is when it holds a token again.
    Rate,
    /// Every concurrency slot is taken; ask again at `until`.
    Concurrency,
}

impl WaitReason {
    pub fn label(self) -> &'static str {
        match self {
            WaitReason::DailyBudget => "shared daily budget spent",
            WaitReason::Draining => "shared daily budget spent, requests still in flight",
            WaitReason::Rate => "shared rate limit",
            WaitReason::Concurrency => "shared concurrency cap",
        }
    }
}

/// A limiter's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Granted(Permit),
    Wait {
        until: Timestamp,
        reason: WaitReason,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("the limiter policy is unusable: {0}")]
    Policy(String),
    #[error("the Redis limiter failed: {0}")]
    Redis(String),
}

/// Admission for one tenant's requests: budget first, then a free slot, then a token.
/// Nothing is consumed unless the request is granted.
#[async_trait]
pub trait Limiter: Send + Sync {
    async fn acquire(
        &self,
        tenant: &str,
        policy: &LimitPolicy,
        now: Timestamp,
    ) -> Result<Admission, LimitError>;
    /// Frees the permit's concurrency slot (its budget and token stay spent).
    async fn release(&self, permit: &Permit) -> Result<(), LimitError>;
    /// Requests granted in the daily window that contains `now`.
    async fn budget_used(&self, tenant: &str, now: Timestamp) -> Result<u64, LimitError>;
}

/// Opens the limiter a URL names: `redis://…` shares it through Redis (keys under
/// `prefix`); no URL means a limiter for this process only.
pub async fn connect(url: Option<&str>, prefix: &str) -> Result<Arc<dyn Limiter>, LimitError> {
    match url {
        None => Ok(Arc::new(LocalLimiter::new())),
        Some(u) => Ok(Arc::new(RedisLimiter::connect(u, prefix).await?)),
    }
}

#[derive(Debug)]
struct TenantState {
    tokens: f64,
    refilled_at: i64,
    window_start: i64,
    used: u64,
    in_flight: BTreeMap<u64, i64>,
}

/// Limits for the workers of one process.
#[derive(Debug, Default)]
pub struct LocalLimiter {
    tenants: Mutex<HashMap<String, TenantState>>,
    next_permit: Mutex<u64>,
}

impl LocalLimiter {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Limiter for LocalLimiter {
    async fn acquire(
        &self,
        tenant: &str,
        policy: &LimitPolicy,
        now: Timestamp,
    ) -> Result<Admission, LimitError> {
        policy.check()?;
        let now_ms = now.as_millis();
        let day = now.day_start().as_millis();
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let t = tenants
            .entry(tenant.to_string())
            .or_insert_with(|| TenantState {
                tokens: f64::from(policy.burst),
                refilled_at: now_ms,
                window_start: day,
                used: 0,
                in_flight: BTreeMap::new(),
            });
        if day > t.window_start {
            t.window_start = day;
            t.used = 0;
        }
        t.in_flight.retain(|_, expires| *expires > now_ms);
        if t.used >= policy.daily_budget {
            return Ok(if t.in_flight.is_empty() {
                Admission::Wait {
                    until: now.next_day_start(),
                    reason: WaitReason::DailyBudget,
                }
            } else {
                Admission::Wait {
                    until: now.plus(policy.slot_poll),
                    reason: WaitReason::Draining,
                }
            });
        }
        if t.in_flight.len() >= policy.max_concurrent as usize {
            return Ok(Admission::Wait {
                until: now.plus(policy.slot_poll),
                reason: WaitReason::Concurrency,
            });
        }
        let per_ms = policy.rate_per_sec / 1000.0;
        if now_ms > t.refilled_at {
            t.tokens =
                (t.tokens + (now_ms - t.refilled_at) as f64 * per_ms).min(f64::from(policy.burst));
            t.refilled_at = now_ms;
        }
        if t.tokens < 1.0 {
            let wait_ms = ((1.0 - t.tokens) / per_ms).ceil() as i64;
            return Ok(Admission::Wait {
                until: Timestamp::from_millis(t.refilled_at + wait_ms.max(1)),
                reason: WaitReason::Rate,
            });
        }
        t.tokens -= 1.0;
        t.used += 1;
        let mut next = self.next_permit.lock().unwrap_or_else(|p| p.into_inner());
        *next += 1;
        let ttl = i64::try_from(policy.permit_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        t.in_flight.insert(*next, now_ms + ttl);
        Ok(Admission::Granted(Permit {
            tenant: tenant.to_string(),
            id: *next,
        }))
    }

    async fn release(&self, permit: &Permit) -> Result<(), LimitError> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tenants.get_mut(&permit.tenant) {
            t.in_flight.remove(&permit.id);
        }
        Ok(())
    }

    async fn budget_used(&self, tenant: &str, now: Timestamp) -> Result<u64, LimitError> {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        Ok(tenants
            .get(tenant)
            .filter(|t| t.window_start == now.day_start().as_millis())
            .map_or(0, |t| t.used))
    }
}

/// One decision, atomically: KEYS = bucket hash, budget counter of the day, in-flight set,
/// permit sequence. ARGV = now, tokens per ms, burst, budget, next window, cap, permit
/// expiry, slot poll. Returns {0, 0, permit} or {reason, until, ""} (1 budget, 2 rate,
/// 3 concurrency, 4 draining).
const ACQUIRE: &str = r"
local now = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local in_flight = redis.call('ZCARD', KEYS[3])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[4]) then
  if in_flight > 0 then
    return {4, now + tonumber(ARGV[8]), ''}
  end
  return {1, tonumber(ARGV[5]), ''}
end
if in_flight >= tonumber(ARGV[6]) then
  return {3, now + tonumber(ARGV[8]), ''}
end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * per_ms)
  at = now
end
if tokens < 1 then
  return {2, at + math.max(1, math.ceil((1 - tokens) / per_ms)), ''}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(at))
redis.call('INCR', KEYS[2])
local id = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[3], tonumber(ARGV[7]), tostring(id))
-- A tenant idle for three days leaves nothing behind (Redis's own clock; housekeeping only).
for i = 1, 4 do
  redis.call('EXPIRE', KEYS[i], 259200)
end
return {0, 0, tostring(id)}
";

/// Limits shared by every worker that uses the same Redis and key prefix.
pub struct RedisLimiter {
    conn: redis::aio::MultiplexedConnection,
    prefix: String,
    acquire: redis::Script,
}

fn redis_err(e: redis::RedisError) -> LimitError {
    LimitError::Redis(e.to_string())
}

impl RedisLimiter {
    /// Connects to `url` (`redis://host:port/db`); keys live under `prefix:`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LimitError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let conn = client
            .get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Duration::from_secs(5))
                    .set_response_timeout(Duration::from_secs(5)),
            )
            .await
            .map_err(redis_err)?;
        Ok(RedisLimiter {
            conn,
            prefix: prefix.to_string(),
            acquire: redis::Script::new(ACQUIRE),
        })
    }

    /// The key prefix this limiter shares with every other one that uses it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, tenant: &str, what: &str) -> String {
        format!("{}:{tenant}:{what}", self.prefix)
    }

    fn budget_key(&self, tenant: &str, now: Timestamp) -> String {
        self.key(tenant, &format!("budget:{}", now.day_start().as_millis()))
    }

    /// Deletes every key under this limiter's prefix (tests clean up with this).
    pub async fn clear(&self) -> Result<(), LimitError> {
        let mut conn = self.conn.clone();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut conn)
                .await
                .map_err(redis_err)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    async fn acquire(
        &self,
        tenant: &str,
        policy: &LimitPolicy,
        now: Timestamp,
    ) -> Result<Admission, LimitError> {
        policy.check()?;
        let ttl = i64::try_from(policy.permit_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let poll = i64::try_from(policy.slot_poll.as_millis())
            .unwrap_or(1000)
            .max(1);
        let mut conn = self.conn.clone();
        let (code, until, id): (i64, i64, String) = self
            .acquire
            .key(self.key(tenant, "bucket"))
            .key(self.budget_key(tenant, now))
            .key(self.key(tenant, "in_flight"))
            .key(format!("{}:permit_seq", self.prefix))
            .arg(now.as_millis())
            .arg(policy.rate_per_sec / 1000.0)
            .arg(policy.burst)
            .arg(policy.daily_budget)
            .arg(now.next_day_start().as_millis())
            .arg(policy.max_concurrent)
            .arg(now.as_millis().saturating_add(ttl))
            .arg(poll)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_err)?;
        let until = Timestamp::from_millis(until);
        Ok(match code {
            0 => Admission::Granted(Permit {
                tenant: tenant.to_string(),
                id: id.parse().map_err(|_| {
                    LimitError::Redis(format!("the script returned a bad permit id `{id}`"))
                })?,
            }),
            1 => Admission::Wait {
                until,
                reason: WaitReason::DailyBudget,
            },
            2 => Admission::Wait {
                until,
                reason: WaitReason::Rate,
            },
            4 => Admission::Wait {
                until,
                reason: WaitReason::Draining,
            },
            _ => Admission::Wait {
                until,
                reason: WaitReason::Concurrency,
            },
        })
    }

    async fn release(&self, permit: &Permit) -> Result<(), LimitError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.key(&permit.tenant, "in_flight"))
            .arg(permit.id.to_string())
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)
    }

    async fn budget_used(&self, tenant: &str, now: Timestamp) -> Result<u64, LimitError> {
        let mut conn = self.conn.clone();
        let used: Option<u64> = redis::cmd("GET")
            .arg(self.budget_key(tenant, now))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(used.unwrap_or(0))
    }
}

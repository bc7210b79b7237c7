//! The Lua scripts. Each runs atomically in Redis; its doc says the keys and
//! arguments it takes and what it answers. They are called by SHA and loaded
//! again by the client when Redis answers `NOSCRIPT` (after `SCRIPT FLUSH` or
//! a restart).

use std::sync::LazyLock;

use ::redis::Script;

/// The atomic dedup-and-append of a batch of complaints, in order.
/// KEYS[1] the stream, KEYS[1 + i] the dedup key of complaint i.
/// ARGV[1] the dedup ttl (ms); then five per complaint: id, channel,
/// instance, schema, complaint JSON.
/// Returns two items per complaint: 1 and its id when appended, 0 and the
/// first id for a duplicate (also of an earlier complaint of the same batch).
/// The entry is added before its dedup key is set, so that a failing `XADD`
/// can never leave a key that makes the retry a "duplicate" of nothing.
const APPEND_BATCH_LUA: &str = r#"
local out = {}
for i = 2, #KEYS do
  local at = 2 + (i - 2) * 5
  local first = redis.call('GET', KEYS[i])
  if first then
    out[#out + 1] = 0
    out[#out + 1] = first
  else
    redis.call('XADD', KEYS[1], '*',
      'id', ARGV[at], 'channel', ARGV[at + 1], 'instance', ARGV[at + 2],
      'schema', ARGV[at + 3], 'complaint', ARGV[at + 4])
    redis.call('SET', KEYS[i], ARGV[at], 'PX', ARGV[1])
    out[#out + 1] = 1
    out[#out + 1] = ARGV[at]
  end
end
return out
"#;

/// [`APPEND_BATCH_LUA`], prepared.
pub static APPEND_BATCH: LazyLock<Script> = LazyLock::new(|| Script::new(APPEND_BATCH_LUA));

/// KEYS[1] group hash, KEYS[2] part-seen key, KEYS[3] deadline index.
/// ARGV: part number, part JSON, total, deadline (ms), part memory (ms).
/// Returns {'dup'} for a part whose message was already written, {'held'}
/// while parts are missing, {'complete', total, field, value, …} when all are held.
const ABSORB_LUA: &str = r#"
local fresh = redis.call('SET', KEYS[2], '1', 'PX', ARGV[5], 'NX')
if not fresh and redis.call('EXISTS', KEYS[1]) == 0 then
  return {'dup'}
end
redis.call('HSETNX', KEYS[1], 'p:' .. ARGV[1], ARGV[2])
if redis.call('HSETNX', KEYS[1], 'total', ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], 'deadline', ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[4], KEYS[1])
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
if redis.call('HLEN', KEYS[1]) - 2 >= total then
  local out = {'complete'}
  for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do
    table.insert(out, v)
  end
  return out
end
return {'held'}
"#;

/// [`ABSORB_LUA`], prepared.
pub static ABSORB: LazyLock<Script> = LazyLock::new(|| Script::new(ABSORB_LUA));

/// KEYS[1] a due member (group or claimed key), KEYS[2] deadline index.
/// ARGV: claimed key base, score for a retry (ms).
/// Returns {} when the member is gone, else {claimed key, field, value, …}.
/// The claimed key carries the group's deadline so that claims of groups
/// reusing one reference never collide.
const CLAIM_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], KEYS[1])
  return {}
end
local target = KEYS[1]
if string.find(KEYS[1], ':frag:group:', 1, true) then
  target = ARGV[1] .. ':' .. (redis.call('HGET', KEYS[1], 'deadline') or '0')
  redis.call('RENAME', KEYS[1], target)
  redis.call('ZREM', KEYS[2], KEYS[1])
end
redis.call('ZADD', KEYS[2], ARGV[2], target)
local out = {target}
for _, v in ipairs(redis.call('HGETALL', target)) do
  table.insert(out, v)
end
return out
"#;

/// [`CLAIM_LUA`], prepared.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM_LUA));

/// Takes or renews a lease held by ARGV[1] for ARGV[2] ms.
const TAKE_LEASE_LUA: &str = r#"
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#;

/// [`TAKE_LEASE_LUA`], prepared.
pub static TAKE_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_LEASE_LUA));

/// Deletes the lease only if ARGV[1] holds it.
const RELEASE_LEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// [`RELEASE_LEASE_LUA`], prepared.
pub static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_LEASE_LUA));

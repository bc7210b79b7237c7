//! The Lua scripts. Each runs atomically in Redis; its doc says the keys and
//! arguments it takes and what it answers. They are called by SHA and loaded
//! again by the client when Redis answers `NOSCRIPT` (after `SCRIPT FLUSH` or
//! a restart).

use std::sync::LazyLock;

use ::redis::Script;

/// KEYS[1] dedup key, KEYS[2] stream.
/// ARGV: id, dedup ttl (ms), channel, instance, schema, complaint JSON.
/// Returns {1, id, entry id} when appended, {0, first id} for a duplicate.
const APPEND_ONCE_LUA: &str = r#"
local first = redis.call('GET', KEYS[1])
if first then
  return {0, first}
end
local entry = redis.call('XADD', KEYS[2], '*',
  'id', ARGV[1], 'channel', ARGV[3], 'instance', ARGV[4],
  'schema', ARGV[5], 'complaint', ARGV[6])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, ARGV[1], entry}
"#;

/// [`APPEND_ONCE_LUA`], prepared.
pub static APPEND_ONCE: LazyLock<Script> = LazyLock::new(|| Script::new(APPEND_ONCE_LUA));

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

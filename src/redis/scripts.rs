//! The Lua scripts. Each runs atomically in Redis; its doc says the keys and
//! arguments it takes and what it answers. They are called by SHA and loaded
//! again by the client when Redis answers `NOSCRIPT` (after `SCRIPT FLUSH` or
//! a restart).

use std::sync::LazyLock;

use ::redis::Script;

/// The atomic dedup-and-append of a batch of complaints, in order. For each
/// new complaint it also takes a tracking number, stores the reply route and
/// the sender's last-message time, and queues the acknowledgement: all or
/// nothing, so a complaint in the stream always has them and none of them
/// exists without it.
/// KEYS[1] the complaints stream, KEYS[2] the outbound stream, KEYS[3] the
/// media stream (a new complaint with attachments to fetch gets one job
/// there, in the same step); six per
/// complaint: dedup key, route key, window key, and the keys of its three
/// tracking candidates (the one taken holds `<id> <instance>`: the status
/// loop finds a complaint and its instance by its number).
/// ARGV[1..4] the ttls (ms) of dedup keys, routes, windows and tracking
/// numbers; then twelve per complaint: id, channel, instance, schema,
/// complaint JSON (holding the first candidate), route JSON (`""`: none),
/// the window time (ms: the provider's time of the message, not after its
/// receipt), the three candidates, the acknowledgement's reply JSON
/// (`""`: none; holding the first candidate), the media job JSON (`""`: none).
/// Returns three items per complaint: 1, its id and tracking number when
/// appended; 0, the first one's id and tracking number (`""` when unknown)
/// for a duplicate (also of an earlier complaint of the same batch).
/// The entry is added before its dedup key is set, so that a failing `XADD`
/// can never leave a key that makes the retry a "duplicate" of nothing. A
/// window only moves forward: a spooled old message never shortens it.
const APPEND_BATCH_LUA: &str = r#"
local function swap(text, from, to)
  local at = string.find(text, from, 1, true)
  if not at then return text end
  return string.sub(text, 1, at - 1) .. to .. string.sub(text, at + #from)
end
local out = {}
local n = (#KEYS - 3) / 6
for i = 0, n - 1 do
  local k = 4 + i * 6
  local dedup, route, window = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local at = 5 + i * 12
  local id = ARGV[at]
  local first = redis.call('GET', dedup)
  if first then
    local space = string.find(first, ' ', 1, true)
    out[#out + 1] = 0
    if space then
      out[#out + 1] = string.sub(first, 1, space - 1)
      out[#out + 1] = string.sub(first, space + 1)
    else
      out[#out + 1] = first
      out[#out + 1] = ''
    end
  else
    local tracking = nil
    for c = 0, 2 do
      if redis.call('SET', KEYS[k + 3 + c], id .. ' ' .. ARGV[at + 2], 'NX', 'PX', ARGV[4]) then
        tracking = ARGV[at + 7 + c]
        break
      end
    end
    -- Even the 80-bit number is taken: the id itself is unique.
    tracking = tracking or id
    local json, ack = ARGV[at + 4], ARGV[at + 10]
    if tracking ~= ARGV[at + 7] then
      json = swap(json, '"tracking":"' .. ARGV[at + 7] .. '"', '"tracking":"' .. tracking .. '"')
      ack = swap(ack, ARGV[at + 7], tracking)
    end
    redis.call('XADD', KEYS[1], '*',
      'id', id, 'channel', ARGV[at + 1], 'instance', ARGV[at + 2],
      'schema', ARGV[at + 3], 'complaint', json)
    redis.call('SET', dedup, id .. ' ' .. tracking, 'PX', ARGV[1])
    if ARGV[at + 5] ~= '' then
      redis.call('HSET', route, 'r', ARGV[at + 5], 'w', window)
      redis.call('PEXPIRE', route, ARGV[2])
      local last = tonumber(redis.call('GET', window) or '0')
      if last < tonumber(ARGV[at + 6]) then
        redis.call('SET', window, ARGV[at + 6], 'PX', ARGV[3])
      end
      if ack ~= '' then
        redis.call('XADD', KEYS[2], '*', 'reply', ack)
      end
    end
    if ARGV[at + 11] ~= '' then
      redis.call('XADD', KEYS[3], '*', 'job', ARGV[at + 11])
    end
    out[#out + 1] = 1
    out[#out + 1] = id
    out[#out + 1] = tracking
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

/// Claims a reply for one attempt.
/// KEYS[1] the reply's state hash, KEYS[2] the citizen's window key,
/// KEYS[3] the citizen's opt-out key.
/// ARGV: owner, now (ms), lease (ms), entry id, resend on uncertain (0|1),
/// reply JSON, state ttl (ms).
/// Returns {'go', attempt, parts done, ids JSON, window ms or ''};
/// {'done', state} when it was already sent, failed for good, or recorded
/// `uncertain` (never sent again: only a provider report settles it);
/// {'busy', entry} when another attempt holds it (live, or a retry of
/// another entry is waiting); {'uncertain', attempt, parts done, ids JSON}
/// when an attempt's holder vanished and the policy is not to send again;
/// {'opted_out', attempt} when the citizen asked not to be messaged.
const CLAIM_REPLY_LUA: &str = r#"
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'sent' or st == 'failed' or st == 'uncertain' then
  return {'done', st}
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {'opted_out', redis.call('HINCRBY', KEYS[1], 'attempt', 1)}
end
local entry = redis.call('HGET', KEYS[1], 'entry')
if st == 'sending' then
  if tonumber(redis.call('HGET', KEYS[1], 'until') or '0') > tonumber(ARGV[2]) then
    return {'busy', entry or ''}
  end
  if ARGV[5] ~= '1' then
    return {'uncertain', redis.call('HGET', KEYS[1], 'attempt') or '0',
      redis.call('HGET', KEYS[1], 'done') or '0', redis.call('HGET', KEYS[1], 'ids') or '[]'}
  end
elseif st == 'waiting' and entry ~= ARGV[4] then
  return {'busy', entry or ''}
end
redis.call('HSET', KEYS[1], 'state', 'sending', 'owner', ARGV[1],
  'until', tonumber(ARGV[2]) + tonumber(ARGV[3]), 'entry', ARGV[4], 'reply', ARGV[6])
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {'go', attempt, redis.call('HGET', KEYS[1], 'done') or '0',
  redis.call('HGET', KEYS[1], 'ids') or '[]', redis.call('GET', KEYS[2]) or ''}
"#;

/// [`CLAIM_REPLY_LUA`], prepared.
pub static CLAIM_REPLY: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM_REPLY_LUA));

/// Records that one more part of a reply was sent, and renews the lease;
/// the part's provider ids are indexed at once, so that a report that comes
/// before the whole reply is recorded finds it. Called again with no new
/// ids, it only renews the lease (a part waiting for its turn).
/// KEYS[1] the state hash, KEYS[2] the sent-to set, then one sent-index
/// key per new provider id.
/// ARGV: owner, parts done, ids JSON, lease until (ms), the sent-index
/// value, report ttl (ms), now (ms); ARGV[8..] the new provider ids.
/// Returns 0 (and records nothing) when the claim is no longer the owner's.
const PART_SENT_LUA: &str = r#"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1]
  or redis.call('HGET', KEYS[1], 'state') ~= 'sending' then
  return 0
end
redis.call('HSET', KEYS[1], 'done', ARGV[2], 'ids', ARGV[3], 'until', ARGV[4])
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[5], 'PX', ARGV[6])
end
for i = 8, #ARGV do
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[i])
end
if #ARGV >= 8 then
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return 1
"#;

/// [`PART_SENT_LUA`], prepared.
pub static PART_SENT: LazyLock<Script> = LazyLock::new(|| Script::new(PART_SENT_LUA));

/// Records an attempt's outcome, its delivery entry and the ack, at once.
/// KEYS[1] state hash, KEYS[2] delivery stream, KEYS[3] outbound stream,
/// KEYS[4] retry set, KEYS[5] events stream, KEYS[6] sent-to set, KEYS[7]
/// the citizen's opt-out key; then one sent-index key per provider id.
/// ARGV[1] outcome: `sent`, `uncertain` (not final, not tried again),
/// `failed`, `retrying`, `defer` (wait without an attempt), `report` (a
/// delivery entry and the ack only) or `ack`;
/// ARGV[2] group, ARGV[3] entry id (`''`: nothing to ack), ARGV[4] delivery
/// JSON (`''`: none), ARGV[5] reply id, ARGV[6] status, ARGV[7] due (ms),
/// ARGV[8] state ttl (ms), ARGV[9] event JSON (`''`: none), ARGV[10] the
/// sent-index value, ARGV[11] report ttl (ms), ARGV[12] now (ms), ARGV[13]
/// ids JSON, ARGV[14] reply JSON, ARGV[15] `1` when the failure is the
/// provider saying the citizen opted out (remembered, like an SMS `STOP`);
/// ARGV[16] the instance, ARGV[17] the number of parts; ARGV[18..] the
/// provider ids.
/// A reply once `sent` is never marked otherwise; a `defer` of a reply that
/// is already claimed, sent or failed is only acked. A `sent` or `uncertain`
/// reply keeps what a provider report needs to find it by our reference
/// (`ref` the sent-index value, `instance`, `parts`).
const RECORD_REPLY_LUA: &str = r#"
local outcome = ARGV[1]
local st = redis.call('HGET', KEYS[1], 'state')
if outcome == 'defer' and st and st ~= 'waiting' then
  outcome = 'ack'
end
if st == 'sent' and outcome ~= 'sent' and outcome ~= 'report' then
  outcome = 'ack'
end
local indexed = outcome == 'sent' or outcome == 'uncertain'
if indexed or outcome == 'failed' then
  redis.call('HSET', KEYS[1], 'state', outcome, 'ids', ARGV[13])
  redis.call('HDEL', KEYS[1], 'until', 'reply')
  redis.call('ZREM', KEYS[4], KEYS[1])
  if indexed then
    redis.call('HSET', KEYS[1], 'ref', ARGV[10], 'instance', ARGV[16], 'parts', ARGV[17])
  end
elseif outcome == 'retrying' or outcome == 'defer' then
  redis.call('HSET', KEYS[1], 'state', 'waiting', 'entry', ARGV[3], 'reply', ARGV[14])
  redis.call('HDEL', KEYS[1], 'until')
  redis.call('ZADD', KEYS[4], ARGV[7], KEYS[1])
end
if outcome ~= 'ack' and outcome ~= 'report' then
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
if ARGV[4] ~= '' and outcome ~= 'ack' and outcome ~= 'defer' then
  redis.call('XADD', KEYS[2], '*', 'reply_id', ARGV[5], 'status', ARGV[6], 'delivery', ARGV[4])
end
if ARGV[9] ~= '' and outcome == 'failed' then
  redis.call('XADD', KEYS[5], '*', 'type', 'opt_out', 'event', ARGV[9])
  if ARGV[15] == '1' then
    redis.call('SET', KEYS[7], ARGV[12])
  end
end
if indexed then
  for i = 8, #KEYS do
    redis.call('SET', KEYS[i], ARGV[10], 'PX', ARGV[11])
  end
  for i = 18, #ARGV do
    redis.call('ZADD', KEYS[6], ARGV[12], ARGV[i])
  end
  if #ARGV >= 18 then
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', tonumber(ARGV[12]) - tonumber(ARGV[11]))
    redis.call('PEXPIRE', KEYS[6], ARGV[11])
  end
end
if ARGV[3] ~= '' then
  redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
end
return outcome
"#;

/// [`RECORD_REPLY_LUA`], prepared.
pub static RECORD_REPLY: LazyLock<Script> = LazyLock::new(|| Script::new(RECORD_REPLY_LUA));

/// Writes a provider report found by our reference (the reply id and part
/// it echoed), and settles an `uncertain` reply: a report about its last
/// part says the provider took the whole of it, so the reply becomes `sent`
/// (`failed` for a report that it could not be delivered). The report's
/// provider id is indexed, so later reports that name only it find the
/// reply too.
/// KEYS[1] the state hash, KEYS[2] the delivery stream, KEYS[3] the
/// sent-index key of the report's provider id.
/// ARGV: reply id, status, delivery JSON, part, sent-index value, report
/// ttl (ms), provider id (`''`: none), state ttl (ms), instance.
/// Returns 0 when the reply is not one a report can be about (unknown,
/// another instance's, still being sent, failed), 1 when the report was
/// written, 2 when it also settled the reply.
const REPORT_BY_REFERENCE_LUA: &str = r#"
local st = redis.call('HGET', KEYS[1], 'state')
if (st ~= 'sent' and st ~= 'uncertain')
  or redis.call('HGET', KEYS[1], 'instance') ~= ARGV[9] then
  return 0
end
local settled = 0
local parts = tonumber(redis.call('HGET', KEYS[1], 'parts') or '1') or 1
if st == 'uncertain' and tonumber(ARGV[4]) + 1 >= parts then
  local final = 'sent'
  if ARGV[2] == 'failed' then final = 'failed' end
  redis.call('HSET', KEYS[1], 'state', final)
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  settled = 1
end
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
end
redis.call('XADD', KEYS[2], '*', 'reply_id', ARGV[1], 'status', ARGV[2], 'delivery', ARGV[3])
return 1 + settled
"#;

/// [`REPORT_BY_REFERENCE_LUA`], prepared.
pub static REPORT_BY_REFERENCE: LazyLock<Script> =
    LazyLock::new(|| Script::new(REPORT_BY_REFERENCE_LUA));

/// Takes up to ARGV[3] replies due by ARGV[1] (ms) from the retry set
/// KEYS[1], moving each to ARGV[1] + ARGV[2] so that a replica that dies
/// holding one gives it back. Returns {state key, reply JSON, entry id, …}.
const TAKE_DUE_LUA: &str = r#"
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, key in ipairs(due) do
  local r = redis.call('HMGET', key, 'reply', 'entry')
  if r[1] then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), key)
    out[#out + 1] = key
    out[#out + 1] = r[1]
    out[#out + 1] = r[2] or ''
  else
    redis.call('ZREM', KEYS[1], key)
  end
end
return out
"#;

/// [`TAKE_DUE_LUA`], prepared.
pub static TAKE_DUE: LazyLock<Script> = LazyLock::new(|| Script::new(TAKE_DUE_LUA));

/// Records one attachment's outcome once, with its event.
/// KEYS[1] the job's state hash, KEYS[2] the events stream.
/// ARGV: attachment index, event type, event JSON, state ttl (ms).
/// Returns 1 when recorded now, 0 when an earlier attempt already had.
const MEDIA_OUTCOME_LUA: &str = r#"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('XADD', KEYS[2], '*', 'type', ARGV[2], 'event', ARGV[3])
return 1
"#;

/// [`MEDIA_OUTCOME_LUA`], prepared.
pub static MEDIA_OUTCOME: LazyLock<Script> = LazyLock::new(|| Script::new(MEDIA_OUTCOME_LUA));

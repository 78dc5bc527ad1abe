"""Lua scripts of :class:`RedisMetadataStore`: each multi-key change is one atomic script.

Keys (all under the run's hash tag, so a Redis Cluster keeps a run on one slot):
``refs`` hash id→ref JSON · ``committed`` zset id→commit seq · ``seq`` counter · ``pending`` zset
id→seq · ``acked`` hash id→global step · ``failed`` set · ``owner`` hash id→holder ·
``held:<holder>`` set · ``holders`` zset holder→heartbeat expiry (ms, server clock) · ``marker``
hash · ``claim:<holder>`` the holder's last claim (token and ids) so a retried claim is idempotent.
"""

# KEYS: refs committed seq pending ; ARGV: id json id json ... One bulk read, one bulk write per
# key, no Redis call per ref (the per-call cost dominates at batch sizes).
COMMIT = """
local ids = {}
for i = 1, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
local existing = redis.call('HMGET', KEYS[1], unpack(ids))
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
local out, fields, members, seen = {}, {}, {}, {}
for j, id in ipairs(ids) do
  if existing[j] or seen[id] then
    out[j] = 0
  else
    seen[id] = true
    out[j] = 1
    seq = seq + 1
    fields[#fields + 1] = id
    fields[#fields + 1] = ARGV[2 * j]
    members[#members + 1] = seq
    members[#members + 1] = id
  end
end
if #fields > 0 then
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('SET', KEYS[3], seq)
  redis.call('ZADD', KEYS[2], unpack(members))
  redis.call('ZADD', KEYS[4], unpack(members))
end
return out
"""

# Shared head of the claim scripts. KEYS: holders pending owner committed refs ;
# ARGV[1..3]: holder ttl_ms held_prefix. Renews the holder's heartbeat and returns every ref of
# holders whose heartbeat expired to pending.
_REAP = """
local holder, ttl, prefix = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  if h ~= holder then
    local held = prefix .. h
    for _, id in ipairs(redis.call('SMEMBERS', held)) do
      redis.call('ZADD', KEYS[2], redis.call('ZSCORE', KEYS[4], id), id)
      redis.call('HDEL', KEYS[3], id)
    end
    redis.call('DEL', held)
    redis.call('ZREM', KEYS[1], h)
  end
end
redis.call('ZADD', KEYS[1], now + ttl, holder)
local function lease(ids)
  if #ids == 0 then return {} end
  redis.call('ZREM', KEYS[2], unpack(ids))
  redis.call('SADD', prefix .. holder, unpack(ids))
  local owned = {}
  for _, id in ipairs(ids) do
    owned[#owned + 1] = id
    owned[#owned + 1] = holder
  end
  redis.call('HSET', KEYS[3], unpack(owned))
end
"""

# + KEYS[6] claim_key ; ARGV[4..5]: token max. The first pending refs in commit order; a retried
# claim (same token) answers the same refs instead of leasing more.
CLAIM = (
    """
local last = redis.call('HMGET', KEYS[6], 'token', 'ids')
if last[1] == ARGV[4] then
  local ids = cjson.decode(last[2])
  if #ids == 0 then return {} end
  return redis.call('HMGET', KEYS[5], unpack(ids))
end
"""
    + _REAP
    + """
local ids = {}
if tonumber(ARGV[5]) > 0 then ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[5]) - 1) end
redis.call('HSET', KEYS[6], 'token', ARGV[4], 'ids', cjson.encode(ids))
if #ids == 0 then return {} end
lease(ids)
return redis.call('HMGET', KEYS[5], unpack(ids))
"""
)

# ARGV[4..]: the sample ids wanted. Leases those that are pending; answers them plus those the
# holder already has (so a repeat is harmless), in the order asked.
CLAIM_NAMED = (
    _REAP
    + """
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
local pending = redis.call('ZMSCORE', KEYS[2], unpack(ids))
local owners = redis.call('HMGET', KEYS[3], unpack(ids))
local fresh, got, seen = {}, {}, {}
for j, id in ipairs(ids) do
  if not seen[id] then
    seen[id] = true
    if pending[j] then
      fresh[#fresh + 1] = id
      got[#got + 1] = id
    elseif owners[j] == holder then
      got[#got + 1] = id
    end
  end
end
lease(fresh)
if #got == 0 then return {} end
return redis.call('HMGET', KEYS[5], unpack(got))
"""
)

# KEYS: committed acked owner marker pending ; ARGV: global_step optimizer_durable held_prefix ids...
ACK = """
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
local committed = redis.call('ZMSCORE', KEYS[1], unpack(ids))
for j, score in ipairs(committed) do
  if not score then return redis.error_reply('UNKNOWN_SAMPLE ' .. ids[j]) end
end
local acked = redis.call('HMGET', KEYS[2], unpack(ids))
local owners = redis.call('HMGET', KEYS[3], unpack(ids))
local fields, fresh, by_owner, seen = {}, {}, {}, {}
for j, id in ipairs(ids) do
  if not acked[j] and not seen[id] then
    seen[id] = true
    fresh[#fresh + 1] = id
    fields[#fields + 1] = id
    fields[#fields + 1] = ARGV[1]
    local owner = owners[j]
    if owner then
      by_owner[owner] = by_owner[owner] or {}
      table.insert(by_owner[owner], id)
    end
  end
end
if #fresh > 0 then
  redis.call('HSET', KEYS[2], unpack(fields))
  redis.call('ZREM', KEYS[5], unpack(fresh))
  redis.call('HDEL', KEYS[3], unpack(fresh))
  for owner, owned in pairs(by_owner) do redis.call('SREM', ARGV[3] .. owner, unpack(owned)) end
end
local prev = tonumber(redis.call('HGET', KEYS[4], 'global_step') or ARGV[1])
local n = redis.call('HLEN', KEYS[2])
redis.call('HSET', KEYS[4], 'global_step', math.max(prev, tonumber(ARGV[1])),
           'optimizer_durable', ARGV[2], 'acked_count', n)
return n
"""

# KEYS: acked pending committed marker ; ARGV: ids...
UNACK = """
local moved = 0
for i = 1, #ARGV do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], redis.call('ZSCORE', KEYS[3], ARGV[i]), ARGV[i])
    moved = moved + 1
  end
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'acked_count', redis.call('HLEN', KEYS[1]))
end
return moved
"""

# KEYS: owner pending committed failed ; ARGV: holder retryable held_prefix ids...
RELEASE = """
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[1], id) == ARGV[1] then
    redis.call('HDEL', KEYS[1], id)
    redis.call('SREM', ARGV[3] .. ARGV[1], id)
    if ARGV[2] == '1' then
      redis.call('ZADD', KEYS[2], redis.call('ZSCORE', KEYS[3], id), id)
    else
      redis.call('SADD', KEYS[4], id)
    end
  end
end
return 0
"""

# KEYS: owner pending committed holders claim_key ; ARGV: holder held_prefix
CLEAR = """
local held = ARGV[2] .. ARGV[1]
local ids = redis.call('SMEMBERS', held)
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZADD', KEYS[2], redis.call('ZSCORE', KEYS[3], id), id)
end
redis.call('DEL', held, KEYS[5])
redis.call('ZREM', KEYS[4], ARGV[1])
return #ids
"""

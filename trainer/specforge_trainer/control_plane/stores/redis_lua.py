"""Lua scripts of :class:`RedisMetadataStore`: each multi-key change is one atomic script.

Keys (all under the run's hash tag, so a Redis Cluster keeps a run on one slot):
``refs`` hash id→ref JSON · ``committed`` zset id→commit seq · ``seq`` counter · ``pending`` zset
id→seq · ``acked`` hash id→global step · ``failed`` set · ``owner`` hash id→holder ·
``held:<holder>`` set · ``holders`` zset holder→heartbeat expiry (ms, server clock) · ``marker``
hash · ``claim:<holder>`` the holder's last claim (token and ids) so a retried claim is idempotent.
"""

COMMIT = """
local out = {}
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    local seq = redis.call('INCR', KEYS[3])
    redis.call('ZADD', KEYS[2], seq, ARGV[i])
    redis.call('ZADD', KEYS[4], seq, ARGV[i])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# KEYS: holders pending owner committed refs claim_key ; ARGV: holder max ttl_ms held_prefix token
CLAIM = """
local holder, token = ARGV[1], ARGV[5]
local last = redis.call('HMGET', KEYS[6], 'token', 'ids')
if last[1] == token then
  local ids = cjson.decode(last[2])
  if #ids == 0 then return {} end
  return redis.call('HMGET', KEYS[5], unpack(ids))
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)) do
  if h ~= holder then
    local held = ARGV[4] .. h
    for _, id in ipairs(redis.call('SMEMBERS', held)) do
      redis.call('ZADD', KEYS[2], redis.call('ZSCORE', KEYS[4], id), id)
      redis.call('HDEL', KEYS[3], id)
    end
    redis.call('DEL', held)
    redis.call('ZREM', KEYS[1], h)
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), holder)
local ids = {}
if tonumber(ARGV[2]) > 0 then ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1) end
redis.call('HSET', KEYS[6], 'token', token, 'ids', cjson.encode(ids))
if #ids == 0 then return {} end
redis.call('ZREM', KEYS[2], unpack(ids))
redis.call('SADD', ARGV[4] .. holder, unpack(ids))
local owned = {}
for _, id in ipairs(ids) do
  owned[#owned + 1] = id
  owned[#owned + 1] = holder
end
redis.call('HSET', KEYS[3], unpack(owned))
return redis.call('HMGET', KEYS[5], unpack(ids))
"""

# KEYS: committed acked owner marker pending ; ARGV: global_step optimizer_durable held_prefix ids...
ACK = """
for i = 4, #ARGV do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    return redis.error_reply('UNKNOWN_SAMPLE ' .. ARGV[i])
  end
end
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[2], id, ARGV[1]) == 1 then
    redis.call('ZREM', KEYS[5], id)
    local o = redis.call('HGET', KEYS[3], id)
    if o then
      redis.call('SREM', ARGV[3] .. o, id)
      redis.call('HDEL', KEYS[3], id)
    end
  end
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

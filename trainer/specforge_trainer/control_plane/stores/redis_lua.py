"""Lua scripts of :class:`RedisMetadataStore`: each multi-key change is one atomic script.

Keys (all under the run's hash tag, so a Redis Cluster keeps a run on one slot):

- ``refs`` hash id→"<commit seq>|<ref JSON>": every committed ref; the seq puts a requeued ref back
  in commit order. ``seq`` is the counter behind it.
- ``pending`` zset id→seq · ``acked`` hash id→global step.
- ``owner`` hash id→holder: the refs in flight, plus a layout entry under the empty field (no sample
  id is empty) that keeps the hash out of Redis's linearly scanned listpack encoding.
- ``holders`` zset holder→heartbeat expiry (ms, server clock) · ``marker`` hash.

Each script does a few bulk commands per batch, never one Redis call per ref on the hot path
(commit, claim, ack): at a thousand refs per call the per-call cost is what the server spends.
"""

# KEYS: refs seq pending ; ARGV: id json id json ... One bulk read, one bulk write per key, no
# Redis call per ref (the per-call cost dominates at batch sizes).
COMMIT = """
local ids, n = {}, #ARGV / 2
for j = 1, n do ids[j] = ARGV[2 * j - 1] end
local existing = redis.call('HMGET', KEYS[1], unpack(ids))
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local out, fields, members, seen, m = {}, {}, {}, {}, 0
for j = 1, n do
  local id = ids[j]
  if existing[j] or seen[id] then
    out[j] = 0
  else
    seen[id] = true
    out[j] = 1
    seq = seq + 1
    fields[m + 1] = id
    fields[m + 2] = seq .. '|' .. ARGV[2 * j]
    members[m + 1] = seq
    members[m + 2] = id
    m = m + 2
  end
end
if m > 0 then
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('SET', KEYS[2], seq)
  redis.call('ZADD', KEYS[3], unpack(members))
end
return out
"""

# The commit seq of a committed id (KEYS[refs] named by the caller), to put it back in pending.
_SEQ_OF = """
local function seq_of(refs, id)
  return tonumber(string.match(redis.call('HGET', refs, id), '^%d+'))
end
"""

# Shared head of the claim scripts. KEYS: holders pending owner refs ;
# ARGV[1..2]: holder ttl_ms. Renews the holder's heartbeat and returns every ref of holders whose
# heartbeat expired to pending. Holders are found by scanning ``owner`` (the refs in flight, a few
# batches), which is cheaper than keeping a set per holder on every claim and ack.
_REAP = (
    _SEQ_OF
    + """
local holder, ttl = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
if #expired > 0 then
  local dead = {}
  for _, h in ipairs(expired) do
    if h ~= holder then dead[h] = true end
  end
  local owned = redis.call('HGETALL', KEYS[3])
  for i = 1, #owned, 2 do
    local id = owned[i]
    if dead[owned[i + 1]] then
      redis.call('ZADD', KEYS[2], seq_of(KEYS[4], id), id)
      redis.call('HDEL', KEYS[3], id)
    end
  end
  for h in pairs(dead) do redis.call('ZREM', KEYS[1], h) end
end
redis.call('ZADD', KEYS[1], now + ttl, holder)
-- Every claim (re)writes the layout entry: its value is too long for a listpack, so ``owner`` is a
-- hash table from its first claim on. A listpack, what Redis keeps a hash of <= 128 short entries
-- in, is scanned end to end for each field, and a step's claim and ack touch every field.
local function own(ids)
  if #ids == 0 then return end
  local owned = {'', string.rep('-', 256)}
  for j = 1, #ids do
    owned[2 * j + 1] = ids[j]
    owned[2 * j + 2] = holder
  end
  redis.call('HSET', KEYS[3], unpack(owned))
end
"""
)

# ARGV[3..]: the sample ids wanted. Leases those that are pending; answers them plus those the
# holder already has (so a repeat is harmless), in the order asked.
CLAIM_NAMED = (
    _REAP
    + """
local ids, n = {}, #ARGV - 2
if n == 0 then return {} end
for j = 1, n do ids[j] = ARGV[j + 2] end
local pending = redis.call('ZMSCORE', KEYS[2], unpack(ids))
local owners = {}  -- looked up only when some id is not pending (a repeat, or not committed yet)
for j = 1, n do
  if not pending[j] then
    owners = redis.call('HMGET', KEYS[3], unpack(ids))
    break
  end
end
local fresh, got, seen, nf, ng = {}, {}, {}, 0, 0
for j = 1, n do
  local id = ids[j]
  if not seen[id] then
    seen[id] = true
    if pending[j] then
      nf = nf + 1
      fresh[nf] = id
    end
    if pending[j] or owners[j] == holder then
      ng = ng + 1
      got[ng] = id
    end
  end
end
if nf > 0 then redis.call('ZREM', KEYS[2], unpack(fresh)) end
own(fresh)
if ng == 0 then return {} end
return redis.call('HMGET', KEYS[4], unpack(got))
"""
)

# KEYS: refs acked owner marker pending ; ARGV: global_step optimizer_durable ids...
# A leased id is known committed and not yet acked (an ack ends its lease), so only ids acked without
# a lease — or acked again — cost the extra committed/acked lookups.
ACK = """
local ids, n = {}, #ARGV - 2
for j = 1, n do ids[j] = ARGV[j + 2] end
local owners = redis.call('HMGET', KEYS[3], unpack(ids))
local unleased, nu = {}, 0
for j = 1, n do
  if ids[j] == '' then owners[j] = false end  -- the lease index's layout entry, never a sample
  if not owners[j] then
    nu = nu + 1
    unleased[nu] = ids[j]
  end
end
local skip = {}  -- acked before: the first ack's step stands
if nu > 0 then
  for _, id in ipairs(unleased) do
    if redis.call('HEXISTS', KEYS[1], id) == 0 then return redis.error_reply('UNKNOWN_SAMPLE ' .. id) end
  end
  local acked = redis.call('HMGET', KEYS[2], unpack(unleased))
  local fresh, nfresh = {}, 0
  for j, id in ipairs(unleased) do
    if acked[j] then
      skip[id] = true
    else
      nfresh = nfresh + 1
      fresh[nfresh] = id
    end
  end
  if nfresh > 0 then redis.call('ZREM', KEYS[5], unpack(fresh)) end
end
-- An id repeated within the batch is written twice, which HSET and HDEL take in their stride.
local fields, released, nr, m = {}, {}, 0, 0
for j = 1, n do
  local id = ids[j]
  if not skip[id] then
    fields[m + 1] = id
    fields[m + 2] = ARGV[1]
    m = m + 2
    if owners[j] then
      nr = nr + 1
      released[nr] = id
    end
  end
end
if m > 0 then redis.call('HSET', KEYS[2], unpack(fields)) end
if nr > 0 then redis.call('HDEL', KEYS[3], unpack(released)) end
local prev = tonumber(redis.call('HGET', KEYS[4], 'global_step') or ARGV[1])
local n = redis.call('HLEN', KEYS[2])
redis.call('HSET', KEYS[4], 'global_step', math.max(prev, tonumber(ARGV[1])),
           'optimizer_durable', ARGV[2], 'acked_count', n)
return n
"""

# KEYS: acked pending refs marker ; ARGV: ids...
UNACK = (
    _SEQ_OF
    + """
local moved = 0
for i = 1, #ARGV do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], seq_of(KEYS[3], ARGV[i]), ARGV[i])
    moved = moved + 1
  end
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'acked_count', redis.call('HLEN', KEYS[1]))
end
return moved
"""
)

# KEYS: owner pending refs ; ARGV: holder ids... Back to pending, those the holder holds.
RELEASE = (
    _SEQ_OF
    + """
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[1], id) == ARGV[1] then
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZADD', KEYS[2], seq_of(KEYS[3], id), id)
  end
end
return 0
"""
)

# KEYS: owner pending refs holders ; ARGV: holder
CLEAR = (
    _SEQ_OF
    + """
local owned = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #owned, 2 do
  if owned[i + 1] == ARGV[1] then
    local id = owned[i]
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZADD', KEYS[2], seq_of(KEYS[3], id), id)
    n = n + 1
  end
end
redis.call('ZREM', KEYS[4], ARGV[1])
return n
"""
)

# KEYS: refs ; the committed ids in commit order.
COMMITTED_IDS = """
local all = redis.call('HGETALL', KEYS[1])
local rows = {}
for i = 1, #all, 2 do rows[#rows + 1] = {tonumber(string.match(all[i + 1], '^%d+')), all[i]} end
table.sort(rows, function(a, b) return a[1] < b[1] end)
local ids = {}
for i, row in ipairs(rows) do ids[i] = row[2] end
return ids
"""

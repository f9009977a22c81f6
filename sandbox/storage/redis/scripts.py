"""The server-side scripts of the Redis store. A script runs on the server as one step: no other client's command
runs in between, which is what makes a commit atomic and its fencing check meaningful.

Keys are derived inside the scripts from the prefixes they are given (a single server or a primary with replicas,
not a Redis Cluster, where every key would have to be declared).
"""

# A commit announces at most this many changed records on the change feed; more (a seeding, an import) become one
# "the whole world changed" entry, and a reader this far behind starts afresh. The feed keeps FEED_KEEP entries
# (up to FEED_SLACK more between trims).
FEED_MOST = 256
FEED_KEEP = 10_000
FEED_SLACK = 1_000  # trimmed back to FEED_KEEP once it holds this many more: a trim every 1,000 commits, not each
# An entry longer than this (a record's key can be as long as an imported state makes it) is announced as its whole
# world instead: the feed holds at most (FEED_KEEP + FEED_SLACK) x FEED_ENTRY_MOST bytes, 11 MB.
FEED_ENTRY_MOST = 1_024


# A commit that replaces a world (a reset or an import) is sent in steps of about this many arguments: one script
# holds every other client of the Redis server until it ends, and a size-20,000 reset was one script of 2 s here,
# tens of seconds on a busy machine (Redis answered everyone else BUSY past its lua-time-limit). A step of 4,000
# arguments (about 800 records) takes a few ms to tens of ms; a clear scans CLEAR_PAGES pages of 1,000 keys a step.
STEP_ARGUMENTS = 4_000
CLEAR_PAGES = 10


def _lua(text: str) -> str:
    for name in ("FEED_MOST", "FEED_KEEP", "FEED_SLACK", "FEED_ENTRY_MOST", "CLEAR_PAGES"):
        text = text.replace(name, str(globals()[name]))
    return text


# The change feed (`<backend prefix>#feed`: "world prefix\ncollection\nkey" per changed record, "world\n*\n" for a
# whole world; `#feedn` counts every entry ever pushed; `#epoch` names this incarnation of the data), read from
# where a reader left it. sync(backend prefix, entries seen, the epoch the reader knows, an epoch to set if there
# is none: a new or wiped server) returns {epoch, entries pushed so far, the worlds being replaced, then per record
# changed since: the entry, its text now, its order score now (false when gone)}, or {epoch, count, worlds being
# replaced, 'reset'} when the reader is too far behind, or the data is not the one it knew: it must forget
# everything it cached.
# Worlds being replaced (a reset or an import, written in steps: RedisStore._apply_in_steps) are marked in
# `<backend prefix>#replacing` (world prefix -> the writer's lock token) from the writer's clear until its last
# step; sync reports them as "prefix\ton" per line, or "prefix\tcut" once the lock no longer holds the writer's
# token (it stopped part-way: the world is incomplete until it is replaced again).
_SYNC = _lua(r"""
local function replacing(feed)
  local marks = redis.call('HGETALL', feed .. '#replacing')
  local out = {}
  for j = 1, #marks, 2 do
    local state = redis.call('GET', marks[j] .. '#lock') == marks[j + 1] and 'on' or 'cut'
    out[#out + 1] = marks[j] .. '\t' .. state
  end
  return table.concat(out, '\n')
end
local function sync(feed, seen, known, fresh)
  local state = redis.call('MGET', feed .. '#epoch', feed .. '#feedn')
  local epoch, count = state[1], tonumber(state[2] or '0')
  if not epoch then
    epoch = fresh
    redis.call('SET', feed .. '#epoch', fresh)
  end
  seen = tonumber(seen)
  local marks = replacing(feed)
  if epoch ~= known or count < seen or count - seen > FEED_MOST then return {epoch, count, marks, 'reset'} end
  local out, done = {epoch, count, marks}, {}
  if count == seen then return out end
  for _, entry in ipairs(redis.call('LRANGE', feed .. '#feed', seen - count, -1)) do
    if not done[entry] then
      done[entry] = true
      local base, coll, key = string.match(entry, '^(.-)\n(.-)\n(.*)$')
      out[#out + 1] = entry
      if coll == '*' then
        out[#out + 1] = false
        out[#out + 1] = false
      else
        out[#out + 1] = redis.call('HGET', base .. ':rec:' .. coll, key)
        out[#out + 1] = redis.call('ZSCORE', base .. ':ord:' .. coll, key)
      end
    end
  end
  return out
end
""")
SYNC = _SYNC + "return sync(ARGV[1], ARGV[2], ARGV[3], ARGV[4])"

# A world's lock, free again, goes straight to its first waiter still waiting (the queue `#queue` of tokens; what
# each waiter needs to catch up, in `#waiting`: "entries seen\tepoch\tdeadline ms"), with its catch-up pushed on its
# own wake list (`#wake:<token>`): the waiter's one blocking call returns holding the lock, current. Without the
# handover, a waiter woken would send one more round trip to take the lock, and the lock would lie idle meanwhile.
# Waiters past their deadline (gone, or not heard from lately: lock.WAITER_SECONDS) are skipped.
_HANDOVER = r"""
local function hand_over(base, feed, milliseconds, fresh)
  local lock, queue, waiting = base .. '#lock', base .. '#queue', base .. '#waiting'
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  while true do
    local next = redis.call('LPOP', queue)
    if not next then return end
    local waiter = redis.call('HGET', waiting, next)
    redis.call('HDEL', waiting, next)
    if waiter then
      local seen, known, deadline = string.match(waiter, '^(.-)\t(.-)\t(.*)$')
      if tonumber(deadline) > now then
        redis.call('SET', lock, next, 'PX', milliseconds)
        local wake = base .. '#wake:' .. next
        redis.call('RPUSH', wake, cjson.encode(sync(feed, seen, known, fresh)))
        redis.call('PEXPIRE', wake, milliseconds)
        return
      end
    end
  end
end
"""

# Applies a transaction's instructions (pending.PendingWrites), or nothing.
#   ARGV[1] the world's prefix; ARGV[2] the lock token ('' for a single write outside a transaction); ARGV[3] the
#   commit's id; ARGV[4] the backend's prefix, under which the change feed lives (redis_cache); ARGV[5] the lock's
#   life in milliseconds and ARGV[6] a new epoch, for the handover; ARGV[7] the mode: 'all' (the whole commit),
#   'step' (a part of a commit too large for one script: applied, the lock kept and extended, nothing announced)
#   or 'last' (its last part: the whole world announced as changed); then the instructions, each an opcode and its
#   arguments (ARITY).
# Returns {status, records deleted}: 'ok'; 'lost' when the lock no longer holds the token (its holder stopped for
# longer than the lock lives, and another may have written since); 'conflict' when a counter the transaction
# counted on was moved by a next_value() outside any transaction. Either refusal writes nothing.
# The commit's id is kept for a while (`#done:<id>`, with the count of deleted records), so that a commit sent
# again because its answer was lost (a connection broken mid-call) is not applied twice, and says what it did.
# On success the changed records are announced on the change feed and the lock handed over or released.
COMMIT = _SYNC + _HANDOVER + _lua(r"""
local base, token, id, feed = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local p = base .. ':'
local done = base .. '#done:' .. id
local already = redis.call('GET', done)
if already then return {'ok', already} end
if token ~= '' and redis.call('GET', base .. '#lock') ~= token then return {'lost', '0'} end
local mode = ARGV[7]
if mode == 'step' then redis.call('PEXPIRE', base .. '#lock', ARGV[5]) end

-- A world's clear is not here: a transaction that clears is sent in steps, its clear by CLEAR_STEP.
local ARITY = {put = 5, del = 3, log = 5, clearlog = 2, count = 4}
-- Checks first: a script stopped half-way by an error keeps what it wrote before.
local i = 8
while i <= #ARGV do
  local op = ARGV[i]
  if not ARITY[op] then return redis.error_reply('unknown instruction ' .. tostring(op)) end
  if op == 'count' and ARGV[i + 2] ~= '' then
    if (redis.call('HGET', p .. 'cnt', ARGV[i + 1]) or '0') ~= ARGV[i + 2] then return {'conflict', '0'} end
  end
  i = i + ARITY[op]
end

local function unindex(coll, key, old)
  for k in string.gmatch(old, '[^\n]+') do redis.call('SREM', k, key) end
  redis.call('HDEL', p .. 'ixk:' .. coll, key)
end
local function first_use(zset, member)  -- the order of first writes (collections, logs, records)
  if not redis.call('ZSCORE', zset, member) then
    redis.call('ZADD', zset, redis.call('INCR', p .. 'seq'), member)
  end
end

local deleted, changed, long = 0, {}, false
local function announce(coll, key)
  local entry = base .. '\n' .. coll .. '\n' .. key
  long = long or #entry > FEED_ENTRY_MOST
  changed[#changed + 1] = entry
end
local whole_world = base .. '\n*\n'
i = 8
while i <= #ARGV do
  local op, a, b, c, d = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if op == 'put' then  -- collection, key, record, its index keys ('\n'-separated)
    -- An update whose indexed fields kept their values leaves its index sets alone.
    local old = redis.call('HGET', p .. 'ixk:' .. a, b)
    if old and old ~= d then unindex(a, b, old) end
    -- A record, a collection are ordered at their first write: a hash field that is not new is already in both.
    if redis.call('HSET', p .. 'rec:' .. a, b, c) == 1 then
      first_use(p .. 'ord:' .. a, b)
      first_use(p .. 'colls', a)
    end
    if d ~= '' and old ~= d then
      for k in string.gmatch(d, '[^\n]+') do redis.call('SADD', k, b) end
      redis.call('HSET', p .. 'ixk:' .. a, b, d)
    end
    announce(a, b)
  elseif op == 'del' then  -- collection, key
    local old = redis.call('HGET', p .. 'ixk:' .. a, b)
    if old then unindex(a, b, old) end
    deleted = deleted + redis.call('HDEL', p .. 'rec:' .. a, b)
    redis.call('ZREM', p .. 'ord:' .. a, b)
    announce(a, b)
  elseif op == 'log' then  -- name, entry, keep ('' for unbounded), number field ('' for none)
    local entry = b
    if d ~= '' then  -- numbered here, so that log order is number order
      local n = redis.call('HINCRBY', p .. 'cnt', '_log:' .. a, 1)
      local body = string.sub(entry, 1, -2)
      local sep = string.match(body, '{%s*$') and '' or ','
      entry = body .. sep .. '"' .. d .. '":' .. string.format('%d', n) .. '}'
    end
    local length = redis.call('RPUSH', p .. 'log:' .. a, entry)
    if length == 1 then first_use(p .. 'logs', a) end  -- a list that was not empty was named before
    if c ~= '' and length > tonumber(c) then redis.call('LTRIM', p .. 'log:' .. a, -tonumber(c), -1) end
  elseif op == 'clearlog' then  -- name
    redis.call('DEL', p .. 'log:' .. a)
  elseif op == 'count' then  -- name, value read ('' after this transaction's clear), value now
    redis.call('HSET', p .. 'cnt', a, c)
  end
  i = i + ARITY[op]
end

if mode == 'step' then
  redis.call('SET', done, deleted, 'PX', 10000)
  return {'ok', tostring(deleted)}
end
if #changed > FEED_MOST or long or mode == 'last' then changed = {whole_world} end
if #changed > 0 then
  redis.call('INCRBY', feed .. '#feedn', #changed)
  if redis.call('RPUSH', feed .. '#feed', unpack(changed)) > FEED_KEEP + FEED_SLACK then
    redis.call('LTRIM', feed .. '#feed', -FEED_KEEP, -1)
  end
end
redis.call('SET', done, deleted, 'PX', 10000)
if token ~= '' then
  if redis.call('HGET', feed .. '#replacing', base) == token then redis.call('HDEL', feed .. '#replacing', base) end
  redis.call('DEL', base .. '#lock')
  hand_over(base, feed, ARGV[5], ARGV[6])
end
return {'ok', tostring(deleted)}
""")

# Marks a world as being replaced (a reset's or an import's clear, in its transaction: ARGV[1] the world's prefix,
# ARGV[2] the lock token, ARGV[3] the backend's prefix), if the lock is still the caller's. From here until its
# commit's last step (or its rollback) readers and other writers are answered "being replaced, retry" (see SYNC).
MARK_REPLACING = r"""
if redis.call('GET', ARGV[1] .. '#lock') ~= ARGV[2] then return 0 end
redis.call('HSET', ARGV[3] .. '#replacing', ARGV[1], ARGV[2])
return 1
"""

# A clear of a world too large for one script, a part at a time (RedisStore._apply_in_steps), before anything of the
# new world is written: SCAN's promise (every key there from start to end is returned) holds, since nothing adds a
# key under the prefix meanwhile (the world's writers are refused while it is marked). ARGV[1] the world's prefix,
# ARGV[2] the lock token, ARGV[3] the lock's life in ms, ARGV[4] 'clear' or 'clearvendor', ARGV[5] the prefix
# escaped for MATCH, ARGV[6] the SCAN cursor ('start' for the first call). Returns the next cursor ('0': done), or
# 'lost' (the lock is no longer the caller's: nothing done).
CLEAR_STEP = _lua(r"""
local base, token, kind, pattern, cursor = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local p = base .. ':'
if redis.call('GET', base .. '#lock') ~= token then return 'lost' end
redis.call('PEXPIRE', base .. '#lock', ARGV[3])
if kind == 'clearvendor' and cursor == 'start' then  -- the few keys per vendor collection and log, at once
  for _, name in ipairs(redis.call('ZRANGE', p .. 'colls', 0, -1)) do
    if string.sub(name, 1, 1) ~= '_' then
      redis.call('UNLINK', p .. 'rec:' .. name, p .. 'ord:' .. name, p .. 'ixk:' .. name)
      redis.call('ZREM', p .. 'colls', name)
    end
  end
  for _, name in ipairs(redis.call('ZRANGE', p .. 'logs', 0, -1)) do
    if string.sub(name, 1, 1) ~= '_' then
      redis.call('UNLINK', p .. 'log:' .. name)
      redis.call('ZREM', p .. 'logs', name)
    end
  end
end
if cursor == 'start' then cursor = '0' end
local match = kind == 'clear' and pattern .. '*' or pattern .. 'idx:*'
local first = #p + 5  -- an index key is <prefix>idx:<collection>:...; internal collections start with '_'
for _ = 1, CLEAR_PAGES do
  local page = redis.call('SCAN', cursor, 'MATCH', match, 'COUNT', 1000)
  cursor = page[1]
  for _, k in ipairs(page[2]) do
    if kind == 'clear' or string.sub(k, first, first) ~= '_' then redis.call('UNLINK', k) end
  end
  if cursor == '0' then break end
end
return cursor
""")

# The records of an index set (KEYS[1]) in insertion order, as {key, order score, text, ...}, from the records
# hash (KEYS[2]) and the order zset (KEYS[3]). One round trip instead of three.
FIND_INDEXED = r"""
local keys = redis.call('SMEMBERS', KEYS[1])
local found = {}
for first = 1, #keys, 1000 do  -- unpack() takes a few thousand values at most
  local chunk = {unpack(keys, first, math.min(first + 999, #keys))}
  local texts = redis.call('HMGET', KEYS[2], unpack(chunk))
  local scores = redis.call('ZMSCORE', KEYS[3], unpack(chunk))
  for j = 1, #chunk do
    if texts[j] then found[#found + 1] = {tonumber(scores[j]) or math.huge, chunk[j], scores[j] or '0', texts[j]} end
  end
end
table.sort(found, function(x, y) return x[1] < y[1] end)
local out = {}
for _, item in ipairs(found) do
  out[#out + 1] = item[2]
  out[#out + 1] = item[3]
  out[#out + 1] = item[4]
end
return out
"""

# 'replacing' instead of false when the lock is held by a reset or an import replacing the world (MARK_REPLACING).
# ARGV[8...]: tokens of this process's transactions that may hold the lock though they ended (Redis went away as the
# lock was taken or given back): a lock held by one of them is free. Without that, a write Redis applied just before
# it died would leave the lock taken for its whole life after Redis is back.
# Takes a world's lock (KEYS[1] the world's prefix; ARGV[1] token, ARGV[2] milliseconds) and, only if it got it,
# reads the change feed as SYNC does (ARGV[3..6]): what the new holder reads next is current, in the same round
# trip. Sent again after a lost answer, or by a waiter whose lock was handed over as it stopped waiting, it finds
# the lock already its own. Otherwise the caller joins the queue of waiters, or stays in it (ARGV[7]: for how many
# ms it counts as waiting, unless it tries again), and gets false: it then blocks on its wake list (`#wake:<token>`).
ACQUIRE = _SYNC + r"""
local lock, queue, waiting = KEYS[1] .. '#lock', KEYS[1] .. '#queue', KEYS[1] .. '#waiting'
local token = ARGV[1]
if #ARGV > 7 then
  local holder = redis.call('GET', lock)
  for i = 8, #ARGV do
    if holder == ARGV[i] then redis.call('DEL', lock) end
  end
end
local taken = redis.call('SET', lock, token, 'NX', 'PX', ARGV[2])
if not taken and redis.call('GET', lock) == token then
  taken = redis.call('PEXPIRE', lock, ARGV[2])
end
if taken then
  if redis.call('HDEL', waiting, token) == 1 then redis.call('LREM', queue, 0, token) end
  return sync(ARGV[3], ARGV[4], ARGV[5], ARGV[6])
end
-- Held by a reset or an import that is replacing the world: no use waiting for it (seconds, for a large world).
if redis.call('HEXISTS', ARGV[3] .. '#replacing', KEYS[1]) == 1 then return 'replacing' end
local clock = redis.call('TIME')
local deadline = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) + tonumber(ARGV[7])
if redis.call('HSET', waiting, token, ARGV[4] .. '\t' .. ARGV[5] .. '\t' .. string.format('%d', deadline)) == 1 then
  redis.call('RPUSH', queue, token)
end
return false
"""

# A waiter stops waiting (KEYS[1] the world's prefix, ARGV[1] its token, then COMMIT's ARGV[4..6]): it leaves the
# queue, and if the lock was handed to it meanwhile, hands it on.
GIVE_UP = _SYNC + _HANDOVER + r"""
local base, token = KEYS[1], ARGV[1]
if redis.call('HDEL', base .. '#waiting', token) == 1 then redis.call('LREM', base .. '#queue', 0, token) end
redis.call('DEL', base .. '#wake:' .. token)
if redis.call('GET', base .. '#lock') == token then
  redis.call('DEL', base .. '#lock')
  hand_over(base, ARGV[2], ARGV[3], ARGV[4])
end
return 1
"""

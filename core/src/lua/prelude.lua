-- rollcall: the prelude shared by every write script. The texts live in
-- rollcall-core; the pure model in model.rs does exactly what they do.
-- KEYS[1] is <base>live; every other key is <base>..suffix, one hash tag.
local live = KEYS[1]
local base = string.sub(live, 1, #live - 4)

-- Milliseconds on the Redis clock, the only clock liveness ever uses.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Moves every lease by `shift` ms.
local function shift_leases(shift)
  local leases = redis.call('ZRANGE', live, 0, -1, 'WITHSCORES')
  for i = 1, #leases, 2 do
    redis.call('ZADD', live, tonumber(leases[i + 1]) + shift, leases[i])
  end
end

-- Advances the shared clock and returns now (never earlier than before,
-- within stall_ms). When no script ran for longer than stall_ms, Redis
-- itself was stalled (or every node was gone): leases move forward by the
-- excess, so a stall of Redis cannot get healthy nodes reaped. When the
-- clock went back by more than stall_ms (a failover or a restore onto a
-- host that is behind), leases move back with it and keep what they had
-- left, so reaping goes on instead of waiting for the old time.
local function tick(stall_ms)
  local now = now_ms()
  local key = base .. 'clock'
  local last = tonumber(redis.call('GET', key))
  if last and now - last > stall_ms then
    shift_leases(now - last - stall_ms)
  end
  if last and last - now > stall_ms then
    shift_leases(now - last)
    redis.call('SET', key, now)
    return now
  end
  if last and last >= now then
    return last
  end
  -- Only while someone is registered: a call that finds nobody (say, after
  -- Redis lost everything) must not leave a clock behind.
  if redis.call('EXISTS', live, base .. 'dead') > 0 then
    redis.call('SET', key, now)
  end
  return now
end
-- The time of this call (when a user came online in a scope).
local at = nil
local function clock(stall_ms)
  at = tick(stall_ms)
  return at
end

-- Where a field of a node's own zset is counted cluster-wide (schema.rs):
-- the key, the hash field, and for a user field its scope id.
local function target(field)
  if string.sub(field, 1, 1) == 'u' then
    local colon = string.find(field, ':', 2, true)
    local n = tonumber(string.sub(field, 2, colon - 1))
    local scope = string.sub(field, colon + 1, colon + n)
    return base .. 'u:' .. scope, string.sub(field, colon + n + 1), scope
  end
  return base .. 'count', field, nil
end

-- Per-socket data (schema.rs): a marker `d<n>:<user><sid>` (score 1) in
-- the node's own zset, so a reap finds it like a count, and the JSON in
-- `d:<user>` under `<#inc>:<inc><sid>`. A call remembers whose data it
-- changed (`updated`, in order) and replies their data as it leaves it.
local function is_data(field)
  return string.byte(field, 1) == 100
end
local function data_target(field)
  local colon = string.find(field, ':', 2, true)
  local n = tonumber(string.sub(field, 2, colon - 1))
  local user = string.sub(field, colon + 1, colon + n)
  return base .. 'd:' .. user, user, string.sub(field, colon + n + 1)
end
local updated, touched = {}, {}
local function touch(user)
  if not touched[user] then
    touched[user] = true
    updated[#updated + 1] = user
  end
end
-- Sets (json ~= '') or removes (json == '') one socket's data in `own`'s
-- share.
local function put(own, field, json)
  local key, user, sid = data_target(field)
  local inc = string.sub(own, #base + 3)
  local slot = #inc .. ':' .. inc .. sid
  if json == '' then
    if redis.call('ZREM', own, field) == 0 then
      return
    end
    redis.call('HDEL', key, slot)
  else
    redis.call('ZADD', own, 1, field)
    if redis.call('HGET', key, slot) == json then
      return
    end
    redis.call('HSET', key, slot, json)
  end
  touch(user)
end

-- A user's edge in a scope: the scope's member list (`m:`, in id order)
-- and the user's scopes with since when (`w:`) follow it.
local function enter(scope, user)
  redis.call('ZADD', base .. 'm:' .. scope, 0, user)
  redis.call('HSET', base .. 'w:' .. user, scope, at)
end
local function exit(scope, user)
  redis.call('ZREM', base .. 'm:' .. scope, user)
  redis.call('HDEL', base .. 'w:' .. user, scope)
end

-- Moves one field of a node's own share by d, and its cluster-wide counter
-- with it. A node never takes away more than it added; a counter that
-- reaches 0 is deleted. Returns 1 when a user came online in the field's
-- scope, -1 when one went offline, else 0.
local function move(own, field, d)
  if is_data(field) then
    if d < 0 then
      put(own, field, '')
    end
    return 0
  end
  local have = tonumber(redis.call('ZSCORE', own, field)) or 0
  if have + d < 0 then
    d = -have
  end
  if d == 0 then
    return 0
  end
  if have + d == 0 then
    redis.call('ZREM', own, field)
  else
    redis.call('ZADD', own, have + d, field)
  end
  local key, name, scope = target(field)
  local total = redis.call('HINCRBY', key, name, d)
  if total <= 0 then
    redis.call('HDEL', key, name)
    if scope and total - d > 0 then
      exit(scope, name)
      return -1
    end
  elseif scope and total - d <= 0 then
    enter(scope, name)
    return 1
  end
  return 0
end

-- Refuses, before anything is written, a call whose counter keys hold
-- another type than a hash (or the feed another than a stream, last seen
-- or a member list another than a zset): a script error half way would
-- leave a node's share moved and its counters not, a mismatch no
-- re-assert sees. `fields[from]`, `fields[from + step]`, ... are the
-- fields the call moves.
local function check_types(fields, from, step)
  local keys = { [base .. 'count'] = true }
  for i = from, #fields, step do
    local key, name, scope
    if is_data(fields[i]) then
      key = data_target(fields[i])
    else
      key, name, scope = target(fields[i])
    end
    keys[key] = true
    if scope then
      keys[base .. 'm:' .. scope] = 'zset'
      keys[base .. 'w:' .. name] = true
    end
  end
  keys[base .. 'feed'] = 'stream'
  keys[base .. 'seen'] = 'zset'
  for key, want in pairs(keys) do
    local have = redis.call('TYPE', key)['ok']
    if have ~= 'none' and have ~= (want == true and 'hash' or want) then
      return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value (' .. key .. ')')
    end
  end
  return nil
end

-- Every script replies {status, detail, #online, online..., offline...}:
-- flat strings and one integer, the same under RESP2 and RESP3. A reap
-- that adopted transitions of a dead incarnation (`adopt`) appends
-- {#adopted, (change id, mark, field)...}: a second integer, then triples.
local online, offline, adopted = {}, {}, {}
local function note(field, edge)
  if edge > 0 then
    online[#online + 1] = field
  elseif edge < 0 then
    offline[#offline + 1] = field
  end
end
-- Exactly once: a lane's call carries a call id, and its reply is kept
-- (`o:<lane>:<incarnation>`, one per lane) until the lane's next call, so
-- a call retried after its reply was lost gets that reply again instead of
-- running twice. A kept reply is a list of strings, each `<length>:<bytes>`:
-- the call id, status, detail, #online, #adopted, the online and offline
-- fields, the adopted triples.
local keep_as, keep_id = nil, nil
local function pack(items)
  local parts = {}
  for i, item in ipairs(items) do
    parts[i] = #item .. ':' .. item
  end
  return table.concat(parts)
end
local function unpack_kept(text)
  local items, pos = {}, 1
  while pos <= #text do
    local colon = string.find(text, ':', pos, true)
    local n = tonumber(string.sub(text, pos, colon - 1))
    items[#items + 1] = string.sub(text, colon + 1, colon + n)
    pos = colon + n + 1
  end
  return items
end
local function kept_key(lane, inc)
  return base .. 'o:' .. lane .. ':' .. inc
end
-- The kept reply if call `id` of `inc`'s `lane` ran already, else nil (and
-- this call's reply will be kept). Called once the fence has passed.
local function recall(lane, inc, id)
  local key = kept_key(lane, inc)
  local kept = redis.call('GET', key)
  if kept then
    local items = unpack_kept(kept)
    if items[1] == id then
      local m = tonumber(items[5])
      local out = { items[2], items[3], tonumber(items[4]) }
      for i = 6, #items - 3 * m do
        out[#out + 1] = items[i]
      end
      if m > 0 then
        out[#out + 1] = m
        for i = #items - 3 * m + 1, #items do
          out[#out + 1] = items[i]
        end
      end
      return out
    end
  end
  keep_as, keep_id = key, id
  return nil
end
-- At least once across a death: `inc` is being reaped to the end, so the
-- last call of each of its lanes, whose reply it may never have handled,
-- is reported by this reap. Each transition of its kept replies (their own
-- and those they adopted in turn) is adopted with its change id
-- (`<inc>:<call id>:<index>`, or the one it was adopted with), unless it no
-- longer holds: an online whose user is now offline in the scope (but one
-- this very call took offline stays, then its offline follows), an offline
-- whose user is now online. Marks: `+` online, offline `d` disconnect,
-- `r` reaped, `s` shutdown (the reason the dead node would have given).
local function adopt(inc)
  local gone = {}
  for _, f in ipairs(offline) do
    gone[f] = true
  end
  local function take(change, mark, field)
    local key, name = target(field)
    local on = redis.call('HEXISTS', key, name) == 1
    if (mark == '+' and (on or gone[field])) or (mark ~= '+' and not on) then
      adopted[#adopted + 1] = change
      adopted[#adopted + 1] = mark
      adopted[#adopted + 1] = field
    end
  end
  for _, lane in ipairs({ 'w', 'r' }) do
    local kept = redis.call('GET', kept_key(lane, inc))
    if kept then
      local items = unpack_kept(kept)
      -- A kept reply of a version before adoption has no adopted count
      -- (its fifth item, if any, is a user field).
      local n, m, first = tonumber(items[4]), tonumber(items[5]), 6
      if not m then
        m, first = 0, 5
      end
      local down = 'd'
      if lane == 'r' then
        down = 'r'
      elseif items[3] == inc then
        down = 's'
      end
      for i = #items - 3 * m + 1, #items, 3 do
        take(items[i], items[i + 1], items[i + 2])
      end
      for i = first, #items - 3 * m do
        local mark = down
        if i - first < n then
          mark = '+'
        end
        take(inc .. ':' .. items[1] .. ':' .. (i - first), mark, items[i])
      end
    end
  end
end
-- An incarnation is gone: its kept replies go with it.
local function forget_kept(inc)
  for _, lane in ipairs({ 'w', 'r' }) do
    local key = kept_key(lane, inc)
    redis.call('DEL', key)
    if keep_as == key then
      keep_as = nil
    end
  end
end

-- Appends the items of each list to `t`, in order.
local function append(t, ...)
  for _, list in ipairs({ ... }) do
    for _, x in ipairs(list) do
      t[#t + 1] = x
    end
  end
  return t
end

-- The change feed and last seen (schema.rs). A call that makes
-- transitions sets `feed` to {base = '<inc>:<call id>', down = its offline
-- mark, max = the feed's length cap (0: no feed), seen_ms, now}: each of
-- its transitions is appended to `{p}:feed` in the same script, so the
-- feed holds each transition exactly once and in the order Redis made
-- them (an adopted one is already there); it is trimmed to max once per
-- call (an exact MAXLEN on each XADD cost more than all the rest of a
-- reap at the cap); a user's global offline stamps
-- `{p}:seen`, an online clears it, stamps older than seen_ms go. Both keys
-- expire after seen_ms without a change.
local feed = nil
-- Sets `feed` for call `id` of `inc` (ARGV texts for max and seen_ms).
local function record(inc, id, down, max, seen_ms, now)
  feed = { base = inc .. ':' .. id, down = down, max = tonumber(max), seen_ms = tonumber(seen_ms), now = now }
end
local function publish(data)
  if not feed or #online + #offline + #data == 0 then
    return
  end
  local stream, seen, global = base .. 'feed', base .. 'seen', base .. 'u:g'
  local stamped = false
  for i = 1, #online + #offline do
    local field, mark = online[i], '+'
    if i > #online then
      field, mark = offline[i - #online], feed.down
    end
    if feed.max > 0 then
      redis.call('XADD', stream, '*', 'c', feed.base .. ':' .. (i - 1), 't', mark,
        'f', field, 'a', feed.now)
    end
    local key, name = target(field)
    if key == global then
      stamped = true
      if mark == '+' then
        redis.call('ZREM', seen, name)
      else
        redis.call('ZADD', seen, feed.now, name)
      end
    end
  end
  if feed.max > 0 then
    for k, user in ipairs(data) do
      redis.call('XADD', stream, '*', 'c', feed.base .. ':' .. (#online + #offline + k - 1),
        't', 'u', 'f', user, 'a', feed.now, 'v', '[' .. table.concat(data[user], ',') .. ']')
    end
    redis.call('XTRIM', stream, 'MAXLEN', feed.max)
    redis.call('PEXPIRE', stream, feed.seen_ms)
  end
  if stamped then
    redis.call('ZREMRANGEBYSCORE', seen, '-inf', '(' .. (feed.now - feed.seen_ms))
    redis.call('PEXPIRE', seen, feed.seen_ms)
  end
end

-- The users of `updated` still online, each with their data as this call
-- leaves it (`data[user]`): one gone offline is told by its offline.
local function updates()
  local data = {}
  for _, user in ipairs(updated) do
    if redis.call('HEXISTS', base .. 'u:g', user) == 1 then
      data[#data + 1] = user
      data[user] = data_of(base, user)
    end
  end
  return data
end

-- Appends {#updated, (user, n, json * n)...} to a reply whose adopted
-- block (its count 0 when there is none) ends `out`: the users of `data`.
local function push_updates(out, data)
  if #data > 0 then
    out[#out + 1] = #data
    for _, user in ipairs(data) do
      append(out, { user, #data[user] }, data[user])
    end
  end
  return out
end

local function reply(status, detail)
  local data = updates()
  publish(data)
  local out = append({ status, detail, #online }, online, offline)
  local m = #adopted / 3
  if m > 0 or #data > 0 then
    append(out, { m }, adopted)
  end
  push_updates(out, data)
  if keep_as then
    local kept = { keep_id, status, detail, tostring(#online), tostring(m) }
    redis.call('SET', keep_as, pack(append(kept, online, offline, adopted)))
  end
  return out
end

-- The kept reply `again` of a write that ran already (it adopts nothing),
-- with the data, as it is now, of the users whose data `fields[from]`,
-- `fields[from + 2]`, ... set: told again, at least once (the feed has it
-- once).
local function recalled(again, fields, from)
  for i = from, #fields, 2 do
    if is_data(fields[i]) then
      local _, user = data_target(fields[i])
      touch(user)
    end
  end
  local data = updates()
  if #data > 0 then
    again[#again + 1] = 0
  end
  return push_updates(again, data)
end

-- The fence of every write: the incarnation must still be registered. Its
-- lease is renewed; one that lapsed but was not reaped yet lives on.
local function renew(now, inc, ttl)
  if not redis.call('ZSCORE', live, inc) then
    return false
  end
  redis.call('ZADD', live, now + ttl, inc)
  return true
end

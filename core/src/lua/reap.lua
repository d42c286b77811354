-- reap: ARGV = stall_ms, incarnation of the caller, slice, target, call id,
-- lane, offline mark (the reason the caller gives), feed_max, seen_ms.
-- With an empty target (the reap lane, 'r'), continues any reap under way
-- or starts one of an expired lease; else (the write lane, 'w') reaps only
-- that (retired) incarnation. At most `slice` fields per call. The
-- call that finishes another node's incarnation (the reap lane) adopts the
-- transitions of its kept replies (`adopt`) before they go.
local now = clock(tonumber(ARGV[1]))
local me, slice, target = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local other = target == ''
local dead = base .. 'dead'
if target == '' then
  -- Only a node that is itself alive judges others; after a stall it waits
  -- until its own heartbeat has gone through.
  local mine = tonumber(redis.call('ZSCORE', live, me))
  if not mine then
    return reply('FENCED', '')
  end
  local again = recall(ARGV[6], me, ARGV[5])
  if again then
    return again
  end
  if mine < now then
    return reply('IDLE', '')
  end
  target = redis.call('ZRANGE', dead, 0, 0)[1]
  if not target then
    target = redis.call('ZRANGEBYSCORE', live, '-inf', '(' .. now, 'LIMIT', 0, 1)[1]
    if not target then
      return reply('IDLE', '')
    end
    -- Fenced before its first slice: from here on its writes get FENCED.
    redis.call('ZREM', live, target)
    redis.call('ZADD', dead, 0, target)
  end
else
  -- Only a registered incarnation keeps replies (none is left behind), and
  -- only one reaps: a call of an incarnation reaped meanwhile must not run
  -- again under the call id whose transitions that reap adopted.
  if not (redis.call('ZSCORE', live, me) or redis.call('ZSCORE', dead, me)) then
    return reply('IDLE', '')
  end
  local again = recall(ARGV[6], me, ARGV[5])
  if again then
    return again
  end
  if not redis.call('ZSCORE', dead, target) then
    return reply('IDLE', '')
  end
end
record(me, ARGV[5], ARGV[7], ARGV[8], ARGV[9], now)
local own = base .. 'i:' .. target
local fields = redis.call('ZRANGE', own, 0, slice - 1, 'WITHSCORES')
local bad = check_types(fields, 1, 2)
if bad then
  return bad
end
for i = 1, #fields, 2 do
  note(fields[i], move(own, fields[i], -tonumber(fields[i + 1])))
end
-- A node reaping itself (a shutdown) forgets its kept replies with DONE, so
-- its DONE carries no transitions: the last slice answers SLICE, and a lost
-- reply of that DONE loses nothing.
if redis.call('EXISTS', own) == 1 or (target == me and #fields > 0) then
  return reply('SLICE', target)
end
-- The node itself goes last, in the same call as its last slice.
redis.call('ZREM', dead, target)
redis.call('HDEL', base .. 'ver', target)
if other then
  adopt(target)
end
forget_kept(target)
local node, k = string.match(target, '^(.*)/(%d+)$')
if node and redis.call('HGET', base .. 'nodes', node) == k then
  redis.call('HDEL', base .. 'nodes', node)
end
if redis.call('ZCARD', live) == 0 and redis.call('ZCARD', dead) == 0 then
  redis.call('DEL', base .. 'clock')
end
return reply('DONE', target)

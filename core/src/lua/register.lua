-- register: ARGV = stall_ms, node, ttl_ms, proposed k, replace[, keep].
-- Detail: the k granted. Hosts propose k above a per-process nonce, so an
-- incarnation id is not used twice even after a reap forgot the node.
-- `replace` is 1 for a process' first registration and for a rotation: the
-- node id's previous incarnation (unless it is `keep`) is over (a restart's
-- predecessor, or this process' own grant whose reply was lost) and fenced at
-- once: moved to the dead set, reaped by the next reap. A registration after
-- FENCED replaces nothing: a process that was paused and reaped must not
-- fence the one that took its place; both are counted, each its own share.
-- `keep`, when given, is the k of an incarnation the node rotates away from:
-- it stays live until the node retires it itself.
local now = clock(tonumber(ARGV[1]))
local node, ttl, k = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nodes, dead = base .. 'nodes', base .. 'dead'
local prev = tonumber(redis.call('HGET', nodes, node))
if prev then
  if k <= prev then
    k = prev + 1
  end
  if ARGV[5] == '1' and tostring(prev) ~= ARGV[6] then
    local old = node .. '/' .. prev
    if redis.call('ZREM', live, old) == 1 then
      redis.call('ZADD', dead, 0, old)
    end
  end
end
while redis.call('ZSCORE', live, node .. '/' .. k) or redis.call('ZSCORE', dead, node .. '/' .. k) do
  k = k + 1
end
local inc = node .. '/' .. k
redis.call('HSET', nodes, node, k)
redis.call('ZADD', live, now + ttl, inc)
redis.call('HSET', base .. 'ver', inc, 0)
return reply('OK', tostring(k))

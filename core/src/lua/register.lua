-- register: ARGV = stall_ms, node, ttl_ms, proposed k[, keep]. Detail: the k
-- granted. `keep`, when given, is the k of a previous incarnation the node
-- rotates away from: it stays live (the node retires it itself once its new
-- share is written), so its users do not go offline meanwhile.
local now = clock(tonumber(ARGV[1]))
local node, ttl, k = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nodes, dead = base .. 'nodes', base .. 'dead'
local prev = tonumber(redis.call('HGET', nodes, node))
if prev then
  if k <= prev then
    k = prev + 1
  end
  -- The same node id registers again (a restart, or a lost reply): its
  -- previous incarnation is over. Lease 0: the next reap, anywhere, takes it.
  if tostring(prev) ~= ARGV[5] then
    redis.call('ZADD', live, 'XX', 0, node .. '/' .. prev)
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

-- retire: ARGV = stall_ms, incarnation. A clean shutdown: the node stops
-- being live and is reaped, by itself, in bounded slices.
clock(tonumber(ARGV[1]))
local inc, dead = ARGV[2], base .. 'dead'
if redis.call('ZREM', live, inc) == 1 then
  redis.call('ZADD', dead, 0, inc)
  return reply('OK', '')
end
if redis.call('ZSCORE', dead, inc) then
  return reply('OK', '')
end
return reply('GONE', '')

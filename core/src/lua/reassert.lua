-- reassert: ARGV = stall_ms, incarnation, ttl_ms, new version, call id,
-- max_write_fields, feed_max, seen_ms, then field, count pairs: the node's
-- whole local truth (for a data field: the JSON).
-- Sets its share to exactly that and moves the cluster-wide counters by the
-- difference. A share in Redis larger than max_write_fields (the node lost
-- track of it: say its clients dropped while its writes failed) is not
-- walked: ROTATE, and the node moves to a new incarnation and has this one
-- reaped in slices, so no call touches more than 2 x max_write_fields fields.
local now = clock(tonumber(ARGV[1]))
local inc = ARGV[2]
if not renew(now, inc, tonumber(ARGV[3])) then
  return reply('FENCED', '')
end
local again = recall('w', inc, ARGV[5])
if again then
  return recalled(again, ARGV, 9)
end
local own = base .. 'i:' .. inc
if redis.call('ZCARD', own) > tonumber(ARGV[6]) then
  return reply('ROTATE', '')
end
local want = {}
for i = 9, #ARGV, 2 do
  want[ARGV[i]] = true
end
local have = redis.call('ZRANGE', own, 0, -1, 'WITHSCORES')
local bad = check_types(have, 1, 2) or check_types(ARGV, 9, 2)
if bad then
  return bad
end
record(inc, ARGV[5], 'd', ARGV[7], ARGV[8], now)
-- What the node no longer has goes first, in the zset's own order.
for i = 1, #have, 2 do
  if not want[have[i]] then
    note(have[i], move(own, have[i], -tonumber(have[i + 1])))
  end
end
for i = 9, #ARGV, 2 do
  if is_data(ARGV[i]) then
    put(own, ARGV[i], ARGV[i + 1])
  else
    local cur = tonumber(redis.call('ZSCORE', own, ARGV[i])) or 0
    note(ARGV[i], move(own, ARGV[i], tonumber(ARGV[i + 1]) - cur))
  end
end
redis.call('HSET', base .. 'ver', inc, ARGV[4])
return reply('OK', '')

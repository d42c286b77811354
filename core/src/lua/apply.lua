-- apply: ARGV = stall_ms, incarnation, ttl_ms, version, call id, feed_max,
-- seen_ms, then field, delta pairs (for a data field: the JSON, '' to
-- remove it).
-- The version is the number of this incarnation's acknowledged writes: a
-- mismatch means a write was lost (failover) and the node must re-assert.
local now = clock(tonumber(ARGV[1]))
local inc = ARGV[2]
if not renew(now, inc, tonumber(ARGV[3])) then
  return reply('FENCED', '')
end
local again = recall('w', inc, ARGV[5])
if again then
  return recalled(again, ARGV, 8)
end
local ver = base .. 'ver'
if redis.call('HGET', ver, inc) ~= ARGV[4] then
  return reply('DRIFT', '')
end
local bad = check_types(ARGV, 8, 2)
if bad then
  return bad
end
redis.call('HINCRBY', ver, inc, 1)
record(inc, ARGV[5], 'd', ARGV[6], ARGV[7], now)
local own = base .. 'i:' .. inc
for i = 8, #ARGV, 2 do
  if is_data(ARGV[i]) then
    put(own, ARGV[i], ARGV[i + 1])
  else
    note(ARGV[i], move(own, ARGV[i], tonumber(ARGV[i + 1])))
  end
end
return reply('OK', '')

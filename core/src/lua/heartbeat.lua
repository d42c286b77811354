-- heartbeat: ARGV = stall_ms, incarnation, ttl_ms, version, call id. Renews the lease;
-- the O(1) drift check compares the version with the node's own count.
local now = clock(tonumber(ARGV[1]))
local inc = ARGV[2]
if not renew(now, inc, tonumber(ARGV[3])) then
  return reply('FENCED', '')
end
local again = recall('w', inc, ARGV[5])
if again then
  return again
end
if redis.call('HGET', base .. 'ver', inc) ~= ARGV[4] then
  return reply('DRIFT', '')
end
return reply('OK', '')

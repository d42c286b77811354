-- rollcall read: ARGV = what, argument. KEYS[1] is <base>live. Each is O(1)
-- but `list`, which returns the users of a scope (unsorted).
local base = string.sub(KEYS[1], 1, #KEYS[1] - 4)
local what, arg = ARGV[1], ARGV[2]
if what == 'clients' then
  return tonumber(redis.call('HGET', base .. 'count', 'c')) or 0
elseif what == 'sockets' then
  return tonumber(redis.call('HGET', base .. 'count', 's' .. arg)) or 0
elseif what == 'users' then
  return redis.call('HLEN', base .. 'u:' .. arg)
elseif what == 'list' then
  return redis.call('HKEYS', base .. 'u:' .. arg)
elseif what == 'user' then
  return tonumber(redis.call('HGET', base .. 'u:g', arg)) or 0
end
return redis.error_reply('rollcall: unknown read ' .. tostring(what))

-- rollcall read: ARGV = what, argument (`seen`: then keep_ms). KEYS[1] is
-- <base>live. Each is O(1) but `list`, which returns the users of a scope
-- (unsorted), and `seen` (O(log n)).
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
elseif what == 'seen' then
  -- A stamp older than keep_ms may linger until the next write trims it.
  local at = tonumber(redis.call('ZSCORE', base .. 'seen', arg))
  if not at or redis.call('HEXISTS', base .. 'u:g', arg) == 1 then
    return nil
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if at < now - tonumber(ARGV[3]) then
    return nil
  end
  return at
end
return redis.error_reply('rollcall: unknown read ' .. tostring(what))

-- rollcall read: ARGV = what, argument (`seen`: then keep_ms; `members`:
-- then after, limit). KEYS[1] is <base>live. Each is O(1) but `seen`
-- (O(log n)), `members` (O(log n + limit x sockets per user)) and `scopes` (the user's scopes).
local base = string.sub(KEYS[1], 1, #KEYS[1] - 4)
local what, arg = ARGV[1], ARGV[2]
if what == 'clients' then
  return tonumber(redis.call('HGET', base .. 'count', 'c')) or 0
elseif what == 'sockets' then
  return tonumber(redis.call('HGET', base .. 'count', 's' .. arg)) or 0
elseif what == 'users' then
  return redis.call('HLEN', base .. 'u:' .. arg)
elseif what == 'members' then
  -- {more, (user, sockets, since, n, json * n)...}: up to limit users
  -- after ARGV[3] in id order, each with their data (one JSON text per
  -- socket, in slot order); more is 1 when another user follows the last.
  local from, limit = '-', tonumber(ARGV[4])
  if ARGV[3] ~= '' then
    from = '(' .. ARGV[3]
  end
  local users = redis.call('ZRANGEBYLEX', base .. 'm:' .. arg, from, '+', 'LIMIT', 0, limit + 1)
  local out = { 0 }
  if #users > limit then
    out[1] = 1
    users[#users] = nil
  end
  for _, user in ipairs(users) do
    out[#out + 1] = user
    out[#out + 1] = tonumber(redis.call('HGET', base .. 'u:' .. arg, user)) or 0
    out[#out + 1] = tonumber(redis.call('HGET', base .. 'w:' .. user, arg)) or 0
    local data = data_of(base, user)
    out[#out + 1] = #data
    for _, json in ipairs(data) do
      out[#out + 1] = json
    end
  end
  return out
elseif what == 'scopes' then
  -- {scope id, since, ...}, in no order.
  local all = redis.call('HGETALL', base .. 'w:' .. arg)
  for i = 2, #all, 2 do
    all[i] = tonumber(all[i])
  end
  return all
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

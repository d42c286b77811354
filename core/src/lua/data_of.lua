-- rollcall: a user's data, shared by the write scripts (the prelude's
-- replies) and `read` (member pages): one JSON text per socket, in slot
-- order. `base` is `{prefix}:`.
local function data_of(base, user)
  local all = redis.call('HGETALL', base .. 'd:' .. user)
  local slots, by = {}, {}
  for i = 1, #all, 2 do
    slots[#slots + 1] = all[i]
    by[all[i]] = all[i + 1]
  end
  table.sort(slots)
  local out = {}
  for i, slot in ipairs(slots) do
    out[i] = by[slot]
  end
  return out
end

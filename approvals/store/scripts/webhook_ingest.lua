-- Queue the tenant's new events whose type the webhook wants, due at once, and move the
-- cursor past every event read. Returns {queued, read}.
-- KEYS: 1 webhook, 2 cursor, 3 tenant events, 4 due, 5 since
-- ARGV: 1 clock shift ms (0 in production), 2 count
local now = server_ms(ARGV[1])
local types = redis.call('HGET', KEYS[1], 'events')
if not types then return {0, 0} end
local wanted = {}
for _, t in ipairs(cjson.decode(types)) do wanted[t] = true end
local cursor = redis.call('GET', KEYS[2]) or '0-0'
local entries = redis.call('XRANGE', KEYS[3], '(' .. cursor, '+', 'COUNT', tonumber(ARGV[2]))
local queued = 0
for _, entry in ipairs(entries) do
  local fields, etype = entry[2], ''
  for i = 1, #fields, 2 do
    if fields[i] == 'type' then etype = fields[i + 1] end
  end
  if wanted['*'] or wanted[etype] then
    redis.call('ZADD', KEYS[4], now, entry[1])
    redis.call('HSET', KEYS[5], entry[1], tostring(now))
    queued = queued + 1
  end
  cursor = entry[1]
end
if #entries > 0 then redis.call('SET', KEYS[2], cursor) end
return {queued, #entries}

-- Lease the deliveries that are due: each moves to now + lease (so a worker that dies
-- mid-delivery hands it back) and counts one more attempt. Returns id, attempt, since, ...
-- KEYS: 1 due, 2 tries, 3 since
-- ARGV: 1 clock shift ms (0 in production), 2 lease_ms, 3 count
local now = server_ms(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
  out[#out + 1] = id
  out[#out + 1] = tostring(redis.call('HINCRBY', KEYS[2], id, 1))
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or tostring(now)
end
return out

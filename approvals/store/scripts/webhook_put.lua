-- Set the tenant's webhook. Delivery starts after the newest event already in the stream;
-- replacing a webhook keeps its cursor and queued deliveries. Returns 1 if it replaced one.
-- KEYS: 1 webhook, 2 cursor, 3 tenant events
-- ARGV: 1 clock shift ms (0 in production), 2 url, 3 event types (JSON list), 4 sealed secret
local existed = redis.call('EXISTS', KEYS[1])
redis.call('HSET', KEYS[1], 'url', ARGV[2], 'events', ARGV[3], 'secret', ARGV[4],
  'updated_at', tostring(server_ms(ARGV[1])))
redis.call('HSETNX', KEYS[1], 'created_at', tostring(server_ms(ARGV[1])))
if redis.call('EXISTS', KEYS[2]) == 0 then
  local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
  redis.call('SET', KEYS[2], last[1] and last[1][1] or '0-0')
end
return existed

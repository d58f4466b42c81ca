-- Remove a device (admin or the app itself).
-- KEYS: 1 device, 2 user's devices, 3 user's active devices, 4 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 device_id, 3 tenant, 4 user_id, 5 outbox_maxlen, 6 by
local rec = redis.call('HMGET', KEYS[1], 'tenant', 'user_id')
if rec[1] ~= ARGV[3] or rec[2] ~= ARGV[4] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[2])
event(KEYS[4], ARGV[5], 'device.removed', ARGV[3], ARGV[4], '', ARGV[2], server_ms(ARGV[1]),
  cjson.encode({by = ARGV[6]}))
return 1

-- A provider said the token is dead: stop using it until the app sends a new one.
-- KEYS: 1 device, 2 user's active devices, 3 outbox
-- ARGV: 1 device_id, 2 token that failed, 3 clock shift ms (0 in production), 4 outbox_maxlen, 5 reason
local rec = redis.call('HMGET', KEYS[1], 'push_token', 'tenant', 'user_id', 'token_valid')
if rec[1] ~= ARGV[2] or rec[4] == '0' then return 0 end
redis.call('HSET', KEYS[1], 'token_valid', '0')
redis.call('SREM', KEYS[2], ARGV[1])
event(KEYS[3], ARGV[4], 'device.token_invalid', rec[2], rec[3], '', ARGV[1], server_ms(ARGV[3]),
  cjson.encode({reason = ARGV[5]}))
return 1

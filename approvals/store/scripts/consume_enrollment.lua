-- Turn a verified registration into a device; exactly one caller can consume a code.
-- KEYS: 1 enrollment, 2 user, 3 user's devices, 4 user's active devices, 5 device, 6 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 registration challenge, 3 device_id, 4 tenant, 5 user_id,
--       6 outbox_maxlen, then field/value pairs of the device record
local now = server_ms(ARGV[1])
local rec = redis.call('HMGET', KEYS[1], 'tenant', 'user_id', 'rc:' .. ARGV[2])
if rec[1] ~= ARGV[4] or rec[2] ~= ARGV[5] or rec[3] ~= '1' then return 0 end
redis.call('DEL', KEYS[1])
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[5], unpack(fields))
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[3])
if redis.call('HSETNX', KEYS[2], 'user_id', ARGV[5]) == 1 then
  redis.call('HSET', KEYS[2], 'tenant', ARGV[4], 'role', 'user', 'mfa_required', '1',
    'created_at', tostring(now))
end
event(KEYS[6], ARGV[6], 'device.enrolled', ARGV[4], ARGV[5], '', ARGV[3], now, '{}')
return 1

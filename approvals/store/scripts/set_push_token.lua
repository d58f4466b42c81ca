-- Update a device's push route; a valid token makes the device active again.
-- KEYS: 1 device, 2 user's active devices
-- ARGV: 1 device_id, 2 platform, 3 push_token, 4 app_bundle_id, 5 clock shift ms (0 in production)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'platform', ARGV[2], 'push_token', ARGV[3],
  'app_bundle_id', ARGV[4], 'token_valid', '1', 'token_updated_at', tostring(server_ms(ARGV[5])))
redis.call('SADD', KEYS[2], ARGV[1])
return 1

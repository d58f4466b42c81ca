-- Remove the user's TOTP key (admin); its used steps go with it.
-- KEYS: 1 user, 2 used steps, 3 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 user_id, 4 outbox_maxlen
if not redis.call('HGET', KEYS[1], 'totp_status') then return 0 end
redis.call('HDEL', KEYS[1], 'totp_secret', 'totp_status', 'totp_enrolled_at',
  'totp_confirmed_at', 'totp_last_used_at')
redis.call('DEL', KEYS[2])
event(KEYS[3], ARGV[4], 'totp.removed', ARGV[2], ARGV[3], '', '', server_ms(ARGV[1]),
  cjson.encode({by = 'admin'}))
return 1

-- An admin unlocks a user: the lock, the TOTP failure count, the unanswered-push count and
-- any fraud block are cleared.
-- KEYS: 1 user, 2 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 user_id, 4 outbox_maxlen
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local was = redis.call('HMGET', KEYS[1], 'locked', 'locked_until', 'fraud_until')
redis.call('HDEL', KEYS[1], 'locked', 'locked_until', 'locked_at', 'fraud_until')
redis.call('HSET', KEYS[1], 'totp_failures', '0', 'unanswered', '0')
event(KEYS[2], ARGV[4], 'user.unlocked', ARGV[2], ARGV[3], '', '', server_ms(ARGV[1]),
  cjson.encode({by = 'admin', was_locked = was[1] == '1', had_fraud_block = was[3] ~= false}))
return 1

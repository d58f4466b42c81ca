-- Start (or restart) a TOTP enrollment: a new sealed key, pending until confirmed. Creates
-- the user with defaults if unknown. An active key is replaced only by reset or removal.
-- KEYS: 1 user, 2 used steps, 3 outbox, 4 enrollment index
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 user_id, 4 sealed secret, 5 period_ms, 6 lead_ms,
--       7 index member, 8 outbox_maxlen
local now = server_ms(ARGV[1])
ensure_user(KEYS[1], ARGV[2], ARGV[3], now,
  {index = KEYS[4], member = ARGV[7], period_ms = ARGV[5], lead_ms = ARGV[6]})
local lock = lock_in_force(KEYS[1], now)
if lock then return {'locked', lock} end
if redis.call('HGET', KEYS[1], 'totp_status') == 'active' then return {'active'} end
redis.call('HSET', KEYS[1], 'totp_secret', ARGV[4], 'totp_status', 'pending',
  'totp_enrolled_at', tostring(now))
redis.call('HDEL', KEYS[1], 'totp_confirmed_at')
redis.call('DEL', KEYS[2])
event(KEYS[3], ARGV[8], 'totp.enrolled', ARGV[2], ARGV[3], '', '', now, '{}')
return {'ok'}

-- Issue a single-use enrollment code; creates the user with defaults if unknown.
-- KEYS: 1 enrollment, 2 user, 3 enrollment index
-- ARGV: 1 clock shift ms (0 in production), 2 ttl_ms, 3 tenant, 4 user_id, 5 enrollment_id, 6 period_ms, 7 lead_ms,
--       8 index member
local now = server_ms(ARGV[1])
redis.call('HSET', KEYS[1], 'tenant', ARGV[3], 'user_id', ARGV[4], 'id', ARGV[5],
  'expires_at', tostring(now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
ensure_user(KEYS[2], ARGV[3], ARGV[4], now,
  {index = KEYS[3], member = ARGV[8], period_ms = ARGV[6], lead_ms = ARGV[7]})
return 1

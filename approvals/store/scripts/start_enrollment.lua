-- Issue a single-use enrollment code; creates the user with defaults if unknown.
-- KEYS: 1 enrollment, 2 user
-- ARGV: 1 now_ms, 2 ttl_ms, 3 tenant, 4 user_id, 5 enrollment_id
redis.call('HSET', KEYS[1], 'tenant', ARGV[3], 'user_id', ARGV[4], 'id', ARGV[5],
  'expires_at', tostring(tonumber(ARGV[1]) + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('HSETNX', KEYS[2], 'user_id', ARGV[4]) == 1 then
  redis.call('HSET', KEYS[2], 'tenant', ARGV[3], 'role', 'user', 'mfa_required', '1',
    'created_at', ARGV[1])
end
return 1

-- Set a new enrollment deadline if the current one is still the one the caller extended
-- (compare-and-set: concurrent extensions never overwrite each other).
-- KEYS: 1 user, 2 enrollment index
-- ARGV: 1 clock shift ms (0 in production), 2 expected deadline ('' for none), 3 new deadline, 4 member, 5 lead_ms
if redis.call('EXISTS', KEYS[1]) == 0 then return 'not_found' end
local current = redis.call('HGET', KEYS[1], 'enrollment_deadline')
if (current or '') ~= ARGV[2] then return 'conflict' end
redis.call('HSET', KEYS[1], 'enrollment_deadline', ARGV[3])
redis.call('HSETNX', KEYS[1], 'mfa_started_at', tostring(server_ms(ARGV[1])))
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) - tonumber(ARGV[5]), ARGV[4])
return 'ok'

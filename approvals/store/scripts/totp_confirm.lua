-- Activate a pending TOTP key with two consecutive codes; both time steps are used up.
-- KEYS: 1 user, 2 used steps, 3 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 user_id, 4 sealed secret the caller checked against,
--       5 first step ('' when the codes did not confirm), 6 second step, 7 oldest usable step,
--       8 steps ttl_ms, 9 outbox_maxlen
local now = server_ms(ARGV[1])
local lock = lock_in_force(KEYS[1], now)
if lock then return {'locked', lock} end
local u = redis.call('HMGET', KEYS[1], 'totp_status', 'totp_secret')
if u[1] == 'active' then return {'active'} end
if u[1] ~= 'pending' then return {'no_totp'} end
if u[2] ~= ARGV[4] then return {'changed'} end
if ARGV[5] == '' then return {'invalid'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[7])
if redis.call('ZSCORE', KEYS[2], ARGV[5]) or redis.call('ZSCORE', KEYS[2], ARGV[6]) then
  return {'replayed'}
end
redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), ARGV[5], tonumber(ARGV[6]), ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call('HSET', KEYS[1], 'totp_status', 'active', 'totp_confirmed_at', tostring(now))
event(KEYS[3], ARGV[9], 'totp.confirmed', ARGV[2], ARGV[3], '', '', now, '{}')
return {'ok'}

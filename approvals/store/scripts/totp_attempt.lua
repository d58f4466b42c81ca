-- One TOTP attempt (verify, challenge fallback or reset) decided in one atomic step: the
-- lock, the key, the single use of its time step, and on failure the exact failure count
-- with the lock taken at the limit. Replays are refused without counting as failures.
-- KEYS: 1 user, 2 used steps, 3 outbox, 4 devices
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 user_id, 4 sealed secret the caller checked against,
--       5 matched step ('' when the code did not match), 6 failure kind
--       ('invalid'|'malformed'), 7 attempt limit, 8 lockout ms at the limit
--       ('0' = until unlocked), 9 oldest usable step, 10 steps ttl_ms,
--       11 purpose ('verify'|'challenge'|'reset'), 12 challenge_id, 13 outbox_maxlen,
--       14 new sealed secret (reset only)
local now = server_ms(ARGV[1])
local tenant, user_id, cid, maxlen = ARGV[2], ARGV[3], ARGV[12], ARGV[13]
local lock = lock_in_force(KEYS[1], now)
if lock then return {'locked', lock} end
local u = redis.call('HMGET', KEYS[1], 'totp_status', 'totp_secret')
if u[1] ~= 'active' then
  if enrollment_expired(KEYS[1], KEYS[4], now) then return {'expired'} end
  return {'no_totp'}
end
if u[2] ~= ARGV[4] then return {'changed'} end

if ARGV[5] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[9])
  if redis.call('ZSCORE', KEYS[2], ARGV[5]) then return {'replayed'} end
  redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[10])
  redis.call('HSET', KEYS[1], 'totp_failures', '0', 'unanswered', '0',
    'totp_last_used_at', tostring(now))
  if ARGV[11] == 'reset' then
    redis.call('HSET', KEYS[1], 'totp_secret', ARGV[14], 'totp_status', 'pending',
      'totp_enrolled_at', tostring(now))
    redis.call('HDEL', KEYS[1], 'totp_confirmed_at')
    redis.call('DEL', KEYS[2])
    event(KEYS[3], maxlen, 'totp.reset', tenant, user_id, '', '', now,
      cjson.encode({by = 'user'}))
  else
    event(KEYS[3], maxlen, 'totp.verified', tenant, user_id, cid, '', now,
      cjson.encode({purpose = ARGV[11]}))
  end
  return {'ok'}
end

local failures = redis.call('HINCRBY', KEYS[1], 'totp_failures', 1)
event(KEYS[3], maxlen, 'totp.failed', tenant, user_id, cid, '', now,
  cjson.encode({purpose = ARGV[11], reason = ARGV[6], failures = failures}))
local until_ms = lock_after_failure(failures, tonumber(ARGV[7]), tonumber(ARGV[8]), now)
if until_ms then
  redis.call('HSET', KEYS[1], 'locked', '1', 'locked_until', tostring(until_ms),
    'locked_at', tostring(now))
  event(KEYS[3], maxlen, 'user.locked', tenant, user_id, '', '', now,
    cjson.encode({reason = 'totp_attempts', failures = failures,
      locked_until = (until_ms > 0) and until_ms or cjson.null}))
end
return {'invalid', tostring(failures)}

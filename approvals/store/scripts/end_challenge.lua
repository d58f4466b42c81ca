-- End a pending challenge from the portal side: cancel, TOTP fallback approval, or expiry.
-- KEYS: 1 challenge, 2 pending, 3 expiry index, 4 outbox, 5 jobs, 6 user
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 status ('cancelled'|'approved'|'expired'), 4 reason, 5 method,
--       6 retention_ms, 7 chan, 8 dchan, 9 outbox_maxlen, 10 jobs_maxlen
local now = server_ms(ARGV[1])
local k = {ch = KEYS[1], pend = KEYS[2], exp = KEYS[3], outbox = KEYS[4], jobs = KEYS[5]}
local a = {now = now, retention_ms = tonumber(ARGV[6]), chan = ARGV[7], dchan = ARGV[8],
  outbox_maxlen = ARGV[9], jobs_maxlen = ARGV[10]}

local rec = redis.call('HMGET', KEYS[1], 'status', 'tenant', 'id')
if not rec[1] then
  -- the record is gone (retention over): make sure no index still points at it
  return {'not_found'}
end
if ARGV[2] ~= '' and rec[2] ~= ARGV[2] then return {'not_found'} end
if expire_if_due(k, a) then return {'expired', redis.call('HGETALL', KEYS[1])} end
if ARGV[3] == 'expired' then return {'pending', redis.call('HGETALL', KEYS[1])} end
if rec[1] == 'expired' then return {'expired', redis.call('HGETALL', KEYS[1])} end
if rec[1] ~= 'pending' then return {'decided', redis.call('HGETALL', KEYS[1])} end

a.status, a.reason, a.method, a.device_id = ARGV[3], ARGV[4], ARGV[5], ''
finish(k, a)
if ARGV[3] == 'approved' then redis.call('HSET', KEYS[6], 'unanswered', '0') end
return {'ok', redis.call('HGETALL', KEYS[1])}

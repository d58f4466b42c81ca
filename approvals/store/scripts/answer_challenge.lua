-- A device's signed answer: first valid answer wins; sign count must grow.
-- KEYS: 1 challenge, 2 pending, 3 expiry index, 4 outbox, 5 jobs, 6 user, 7 device
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 user_id, 4 device_id, 5 status, 6 reason, 7 new_sign_count,
--       8 retention_ms, 9 fraud_block_ms, 10 chan, 11 dchan, 12 outbox_maxlen, 13 jobs_maxlen
local now = server_ms(ARGV[1])
local k = {ch = KEYS[1], pend = KEYS[2], exp = KEYS[3], outbox = KEYS[4], jobs = KEYS[5]}
local a = {now = now, retention_ms = tonumber(ARGV[8]), chan = ARGV[10], dchan = ARGV[11],
  outbox_maxlen = ARGV[12], jobs_maxlen = ARGV[13]}

local rec = redis.call('HMGET', KEYS[1], 'status', 'tenant', 'user_id')
if not rec[1] or rec[2] ~= ARGV[2] or rec[3] ~= ARGV[3] then return {'not_found'} end
if expire_if_due(k, a) then return {'expired'} end
if rec[1] == 'expired' then return {'expired'} end
if rec[1] ~= 'pending' then return {'decided', rec[1]} end

local dev = redis.call('HMGET', KEYS[7], 'sign_count', 'user_id')
if dev[2] ~= ARGV[3] then return {'not_found'} end
local stored, given = tonumber(dev[1] or '0'), tonumber(ARGV[7])
if (given ~= 0 or stored ~= 0) and given <= stored then return {'sign_count'} end
redis.call('HSET', KEYS[7], 'sign_count', tostring(given), 'last_used_at', tostring(now))

local status = ARGV[5]
a.status, a.reason, a.method, a.device_id = status, ARGV[6], 'push', ARGV[4]
finish(k, a)
if status == 'approved' then redis.call('HSET', KEYS[6], 'unanswered', '0') end
local block = tonumber(ARGV[9])
if status == 'fraud' and block > 0 then
  redis.call('HSET', KEYS[6], 'fraud_until', tostring(now + block))
end
return {'ok', redis.call('HGETALL', KEYS[1])}

-- Create a challenge: lock and fraud checks, per-resource dedupe, fatigue caps, the record,
-- the indexes, the push job and the audit event, all in one atomic step.
-- KEYS: 1 user, 2 active devices, 3 dedupe, 4 challenge, 5 pending, 6 push window,
--       7 jobs, 8 outbox, 9 expiry index, 10 all devices
-- ARGV[1]: one JSON array of strings, A (one argument for the client to encode instead of 18):
--       1 clock shift ms (0 in production), 2 cid, 3 ttl_ms, 4 dedupe_ms, 5 retention_ms, 6 max_pushes, 7 window_ms,
--       8 max_unanswered, 9 tenant, 10 user_id, 11 resource, 12 app_name, 13 ctx_json,
--       14 number_matching, 15 number, 16 nonce, 17 jobs_maxlen, 18 outbox_maxlen
-- Returns {'created', record fields} | {'deduplicated', record fields of the pending one}
--       | {'throttled' | 'user_locked' | 'push_blocked', retry_after_ms[, why]}
--       | {'no_push_device'}
local A = cjson.decode(ARGV[1])
local now = server_ms(A[1])
local cid, ttl, dedupe = A[2], tonumber(A[3]), tonumber(A[4])
local tenant, user_id = A[9], A[10]
local outbox_maxlen = A[18]

local user = redis.call('HMGET', KEYS[1], 'locked', 'locked_until', 'fraud_until', 'unanswered')
local until_ms = lock_end(user[1], user[2], now)
if until_ms == 0 then return {'user_locked', '0'} end
if until_ms then return {'user_locked', tostring(until_ms - now)} end
if redis.call('SCARD', KEYS[2]) == 0 and enrollment_expired(KEYS[1], KEYS[10], now) then
  return {'user_locked', '0', 'enrollment_expired'}
end
if fraud_blocked(user[3], now) then
  event(KEYS[8], outbox_maxlen, 'challenge.throttled', tenant, user_id, '', '', now,
    cjson.encode({reason = 'fraud_block', resource = A[11]}))
  return {'push_blocked', tostring(tonumber(user[3]) - now)}
end

redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
local previous = redis.call('GET', KEYS[3])
if previous and redis.call('ZSCORE', KEYS[5], previous) then
  -- still pending: answer with its record; a record that vanished is no pending challenge,
  -- so its index entry goes and this request creates a new one
  local existing = redis.call('HGETALL', string.sub(KEYS[4], 1, #KEYS[4] - #cid) .. previous)
  if #existing > 0 then return {'deduplicated', existing} end
  redis.call('ZREM', KEYS[5], previous)
  previous = false
end
if previous then
  event(KEYS[8], outbox_maxlen, 'challenge.throttled', tenant, user_id, '', '', now,
    cjson.encode({reason = 'dedupe', resource = A[11]}))
  return {'throttled', tostring(redis.call('PTTL', KEYS[3])), 'dedupe'}
end

local devices = redis.call('SCARD', KEYS[2])
if devices == 0 then return {'no_push_device'} end

local window = tonumber(A[7])
local cap = push_cap(pushes_in_window(KEYS[6], now, window), tonumber(user[4] or '0'),
  tonumber(A[6]), tonumber(A[8]))
if cap == 'window' then
  local oldest = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  event(KEYS[8], outbox_maxlen, 'challenge.throttled', tenant, user_id, '', '', now,
    cjson.encode({reason = 'max_pushes_per_window', resource = A[11]}))
  return {'throttled', tostring(tonumber(oldest[2]) + window - now), 'window'}
end
if cap == 'unanswered' then
  event(KEYS[8], outbox_maxlen, 'challenge.throttled', tenant, user_id, '', '', now,
    cjson.encode({reason = 'max_unanswered_pushes', resource = A[11]}))
  return {'throttled', tostring(window), 'unanswered'}
end

local expires = now + ttl
local record = {'id', cid, 'tenant', tenant, 'user_id', user_id,
  'resource', A[11], 'app_name', A[12], 'ctx', A[13], 'nm', A[14],
  'number', A[15], 'nonce', A[16], 'status', 'pending',
  'created_at', tostring(now), 'expires_at', tostring(expires), 'devices', tostring(devices)}
redis.call('HSET', KEYS[4], unpack(record))
redis.call('PEXPIRE', KEYS[4], ttl + tonumber(A[5]))
if dedupe > 0 then redis.call('SET', KEYS[3], cid, 'PX', dedupe) end
redis.call('ZADD', KEYS[5], expires, cid)
redis.call('PEXPIRE', KEYS[5], ttl + tonumber(A[5]))
redis.call('ZADD', KEYS[6], now, cid)
redis.call('PEXPIRE', KEYS[6], window)
redis.call('HINCRBY', KEYS[1], 'unanswered', 1)
redis.call('XADD', KEYS[7], 'MAXLEN', '~', A[17], '*', 'kind', 'challenge', 'cid', cid,
  't', tenant, 'u', user_id)
redis.call('ZADD', KEYS[9], expires, cid)
event(KEYS[8], outbox_maxlen, 'challenge.created', tenant, user_id, cid, '', now,
  cjson.encode({resource = A[11], app_name = A[12]}))
return {'created', record}

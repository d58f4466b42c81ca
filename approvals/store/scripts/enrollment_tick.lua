-- The scheduler's step for one indexed user: emit enrollment.reminder in the last 24 h
-- before the deadline and enrollment.expired at it, each at most once per deadline (workers
-- may race on the same entry), and move the entry to its next due time or drop it.
-- Mirrors policies.decide.reminder_due and expiry_due.
-- KEYS: 1 enrollment index, 2 user, 3 devices, 4 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 member, 3 tenant, 4 user_id, 5 lead_ms, 6 outbox_maxlen
local now, lead = server_ms(ARGV[1]), tonumber(ARGV[5])
local u = redis.call('HMGET', KEYS[2], 'mfa_required', 'enrollment_deadline', 'totp_status',
  'reminded_for', 'expired_for')
if u[1] ~= '1' or not u[2] then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return 'dropped'
end
local deadline = tonumber(u[2])
local enrolled = u[3] == 'active' or redis.call('SCARD', KEYS[3]) > 0
local data = cjson.encode({enrollment_deadline = deadline})
if now >= deadline then
  redis.call('ZREM', KEYS[1], ARGV[2])
  if enrolled or u[5] == u[2] then return 'done' end
  redis.call('HSET', KEYS[2], 'expired_for', u[2])
  event(KEYS[4], ARGV[6], 'enrollment.expired', ARGV[3], ARGV[4], '', '', now, data)
  return 'expired'
end
if now < deadline - lead then
  redis.call('ZADD', KEYS[1], deadline - lead, ARGV[2])
  return 'waiting'
end
redis.call('ZADD', KEYS[1], deadline, ARGV[2])
if enrolled or u[4] == u[2] then return 'waiting' end
redis.call('HSET', KEYS[2], 'reminded_for', u[2])
event(KEYS[4], ARGV[6], 'enrollment.reminder', ARGV[3], ARGV[4], '', '', now, data)
return 'reminded'

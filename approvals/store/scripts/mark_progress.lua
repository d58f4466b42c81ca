-- Record a delivery fact once (push sent, delivered, seen) while the challenge is pending,
-- tell the waiting portal and append the audit event.
-- KEYS: 1 challenge, 2 outbox
-- ARGV: 1 now_ms, 2 field, 3 message, 4 event type ('' for none), 5 chan, 6 outbox_maxlen,
--       7 device_id
local rec = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'tenant', 'user_id', 'id')
if rec[1] ~= 'pending' or tonumber(ARGV[1]) >= tonumber(rec[2]) then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call(PUB, ARGV[5], ARGV[3])
if ARGV[4] ~= '' then
  event(KEYS[2], ARGV[6], ARGV[4], rec[3], rec[4], rec[5], ARGV[7], tonumber(ARGV[1]), '{}')
end
return 1

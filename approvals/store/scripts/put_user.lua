-- Create or update a user. The enrollment period starts when MFA becomes required: on
-- creation, on a change of mfa_required from false to true, or when none was ever recorded.
-- KEYS: 1 user, 2 enrollment index
-- ARGV: 1 clock shift ms (0 in production), 2 tenant, 3 user_id, 4 period_ms, 5 lead_ms, 6 index member,
--       then field/value pairs (mfa_required among them)
local now = server_ms(ARGV[1])
local created = redis.call('HSETNX', KEYS[1], 'created_at', tostring(now))
local before = redis.call('HMGET', KEYS[1], 'mfa_required', 'enrollment_deadline')
local fields = {'tenant', ARGV[2], 'user_id', ARGV[3]}
local required = nil
for i = 7, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  if ARGV[i] == 'mfa_required' then required = ARGV[i + 1] end
end
redis.call('HSET', KEYS[1], unpack(fields))
if required == '1' and (created == 1 or before[1] ~= '1' or not before[2]) then
  start_period(KEYS[1], now,
    {index = KEYS[2], member = ARGV[6], period_ms = ARGV[4], lead_ms = ARGV[5]})
end
return {created, redis.call('HGETALL', KEYS[1])}

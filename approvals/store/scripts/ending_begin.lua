-- Start replacing the prompt on the user's other phones once the challenge ended: a follow-up
-- (same collapse id) goes to every push device whose prompt an attempt may have put on the
-- phone ('s', 'r' or an abandoned attempt), except the device that answered. A prompt attempt
-- still in flight is waited for (wait_ms), so the follow-up is always the later one.
-- KEYS: 1 challenge, 2 user's active devices, 3 jobs
-- ARGV: 1 clock shift ms (0 in production), 2 owner, 3 attempt_ms, 4 entry id, 5 group, 6 device key prefix,
--       7 deciding device, 8.. platforms this worker can send to
local now, owner, attempt_ms = server_ms(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local rec = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'app_name', 'ctx')
if not rec[1] or rec[1] == 'pending' then
  redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])
  return {'dropped'}
end

local platforms = {}
for i = 8, #ARGV do platforms[ARGV[i]] = true end
local routes, wait = {}, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local d = redis.call('HMGET', ARGV[6] .. id, 'platform', 'push_token', 'app_bundle_id')
  if id ~= ARGV[7] and platforms[d[1] or ''] then
    local prompt, _, prompt_until = attempt_state(redis.call('HGET', KEYS[1], 'p:' .. id), now)
    if prompt == 'live' then
      wait = math.max(wait, prompt_until - now)
    elseif prompt == 's' or prompt == 'r' or prompt == 'stale' then
      local waited = claim_route(KEYS[1], 'e:' .. id, now, attempt_ms, owner, routes, id, d)
      wait = math.max(wait, waited)
    end
  end
end
if #routes == 0 and wait == 0 then
  redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])
  return {'done'}
end
return {'send', rec[2], rec[3], rec[4], rec[1], tostring(wait), '[]', unpack(routes)}

-- Start delivering a new challenge. A job whose challenge is no longer pending (or has less
-- than min_left_ms to live) is acknowledged and dropped. Otherwise the in-app channel is told
-- once (recorded with the fact, so a retried or reclaimed job never tells it twice) and a
-- first attempt is claimed for every push device whose prompt no attempt accepted yet.
-- KEYS: 1 challenge, 2 user's active devices, 3 jobs, 4 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 owner, 3 attempt_ms, 4 entry id, 5 group, 6 device key prefix,
--       7 device channel, 8 challenge channel, 9 min_left_ms, 10 outbox_maxlen,
--       11.. platforms this worker can send to
local now, owner, attempt_ms = server_ms(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local rec = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'id', 'app_name', 'ctx',
  'created_at', 'nm', 'nonce', 'inapp')
if rec[1] ~= 'pending' or now + tonumber(ARGV[9]) >= tonumber(rec[2]) then
  redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])
  return {'dropped'}
end
if not rec[9] then
  redis.call('HSET', KEYS[1], 'inapp', tostring(now))
  redis.call(PUB, ARGV[7], cjson.encode({type = 'challenge', record = {id = rec[3],
    app_name = rec[4], ctx = rec[5], created_at = rec[6], expires_at = rec[2], nm = rec[7],
    nonce = rec[8]}}))
end

local platforms = {}
for i = 11, #ARGV do platforms[ARGV[i]] = true end
local routes, unroutable, in_app_device, wait = {}, {}, false, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local d = redis.call('HMGET', ARGV[6] .. id, 'platform', 'push_token', 'app_bundle_id')
  if d[1] == 'none' then
    in_app_device = true
  elseif not platforms[d[1] or ''] then
    unroutable[#unroutable + 1] = d[1] or ''
  else
    wait = math.max(wait, claim_route(KEYS[1], 'p:' .. id, now, attempt_ms, owner, routes, id, d))
  end
end
-- A device reached only in the app has its prompt once the channel was told.
if in_app_device then
  mark_once({ch = KEYS[1], outbox = KEYS[4], now = now, field = 'sent_at', message = 'push_sent',
    event_type = 'challenge.push_sent', chan = ARGV[8], outbox_maxlen = ARGV[10], device_id = ''})
end
if #routes == 0 and wait == 0 then
  redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])
  if not in_app_device and not redis.call('HGET', KEYS[1], 'sent_at') then
    redis.call('HSET', KEYS[1], 'push_error', 'no_reachable_device')
  end
  return {'done', '', '', '', '', '0', cjson.encode(unroutable)}
end
return {'send', rec[2], rec[4], rec[5], '', tostring(wait), cjson.encode(unroutable),
  unpack(routes)}

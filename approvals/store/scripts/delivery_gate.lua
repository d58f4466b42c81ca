-- Right before a retry: may this owner make another attempt for one device? A prompt only
-- while the challenge is pending with at least min_left_ms to live; a follow-up only until the
-- prompt would have expired. The attempt is claimed (bounded by attempt_ms) when allowed.
-- KEYS: 1 challenge
-- ARGV: 1 clock shift ms (0 in production), 2 owner, 3 attempt_ms, 4 field ('p:<device>' | 'e:<device>'), 5 min_left_ms
-- Returns 'go', or why not: 'gone', 'ended', 'expired', 'done' (settled), 'busy' (another owner).
local now, owner, field = server_ms(ARGV[1]), ARGV[2], ARGV[4]
local rec = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if not rec[1] then return 'gone' end
if string.sub(field, 1, 2) == 'p:' then
  if rec[1] ~= 'pending' then return 'ended' end
  if now + tonumber(ARGV[5]) >= tonumber(rec[2]) then return 'expired' end
elseif now >= tonumber(rec[2]) then
  return 'expired'
end
local kind, who = attempt_state(redis.call('HGET', KEYS[1], field), now)
if may_claim(kind, who, owner) then
  claim(KEYS[1], field, now, tonumber(ARGV[3]), owner)
  return 'go'
end
if kind == 'live' then return 'busy' end
return 'done'

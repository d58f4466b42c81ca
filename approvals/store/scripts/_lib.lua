-- Shared helpers, prepended to every script (scripts cannot call each other).
-- PUB is substituted at load time: PUBLISH on one node, SPUBLISH on Redis Cluster.

-- The one clock: the server's TIME in epoch ms, plus the shift the caller passes (0 in
-- production; tests move time with it), so every gateway and worker decides with the same
-- time whatever its host's clock says.
local function server_ms(shift)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + (tonumber(shift) or 0)
end

local function event(outbox, maxlen, etype, tenant, user_id, challenge_id, device_id, now, data)
  redis.call('XADD', outbox, 'MAXLEN', '~', maxlen, '*',
    'type', etype, 'tenant', tenant, 'user_id', user_id,
    'challenge_id', challenge_id or '', 'device_id', device_id or '',
    'at', tostring(now), 'data', data or '{}')
end

-- End a pending challenge: record the outcome, drop it from the pending indexes, keep it
-- readable for the retention time, wake every waiter and ask the worker to replace the
-- prompt on the user's other devices.
-- k = {ch, pend, exp, outbox, jobs}; a = {now, status, reason, method, device_id, retention_ms,
--      chan, dchan, outbox_maxlen, jobs_maxlen}
local function finish(k, a)
  local cid = redis.call('HGET', k.ch, 'id')
  local rec = redis.call('HMGET', k.ch, 'tenant', 'user_id')
  redis.call('HSET', k.ch, 'status', a.status, 'decided_at', tostring(a.now),
    'reason', a.reason or '', 'method', a.method or '', 'device_id', a.device_id or '')
  redis.call('PEXPIRE', k.ch, a.retention_ms)
  redis.call('ZREM', k.pend, cid)
  redis.call('ZREM', k.exp, cid)
  -- the notice carries the record as it ended, so a waiter tells it without reading it again
  redis.call(PUB, a.chan, 'ended:' .. cjson.encode(redis.call('HGETALL', k.ch)))
  redis.call(PUB, a.dchan, cjson.encode({type = 'ended', id = cid, status = a.status}))
  local etype = 'challenge.' .. a.status
  if a.status == 'fraud' then etype = 'challenge.fraud_reported' end
  event(k.outbox, a.outbox_maxlen, etype, rec[1], rec[2], cid, a.device_id, a.now,
    cjson.encode({reason = a.reason or '', method = a.method or ''}))
  redis.call('XADD', k.jobs, 'MAXLEN', '~', a.jobs_maxlen, '*',
    'kind', 'ended', 'cid', cid, 'device_id', a.device_id or '', 't', rec[1], 'u', rec[2])
end

-- Expire the challenge if its deadline passed while it was still pending. Returns true if so.
local function expire_if_due(k, a)
  local st = redis.call('HMGET', k.ch, 'status', 'expires_at')
  if st[1] == 'pending' and a.now >= tonumber(st[2]) then
    finish(k, {now = a.now, status = 'expired', reason = 'ttl', method = '', device_id = '',
      retention_ms = a.retention_ms, chan = a.chan, dchan = a.dchan,
      outbox_maxlen = a.outbox_maxlen, jobs_maxlen = a.jobs_maxlen})
    return true
  end
  return false
end

-- The rules policies/decide.py states in Python. The scripts decide with these functions;
-- tests/integration/test_rules_agree.py runs them and the Python on the same inputs.

-- The lock in force at now, from the user's 'locked' and 'locked_until' fields: nil when
-- there is none, 0 when it lasts until an admin unlocks (a stored value <= 0, or none, reads
-- so: fail closed), else the time it ends (policies.decide.is_locked).
local function lock_end(locked, locked_until, now)
  if locked ~= '1' then return nil end
  local until_ms = tonumber(locked_until or '0') or 0
  if until_ms <= 0 then return 0 end
  if until_ms > now then return until_ms end
  return nil
end

-- The lock a failed TOTP attempt takes once ``failures`` (this one counted) reaches
-- ``limit``: nil below it, else its end (0 = until an admin unlocks, when ``lock_ms`` is 0)
-- (policies.decide.register_failure).
local function lock_after_failure(failures, limit, lock_ms, now)
  if failures < limit then return nil end
  if lock_ms > 0 then return now + lock_ms end
  return 0
end

-- Whether a fraud report still blocks pushes at now (policies.decide.push_allowed).
local function fraud_blocked(fraud_until, now)
  return fraud_until ~= false and fraud_until ~= nil and tonumber(fraud_until) > now
end

-- The pushes that count toward the window cap: those sent after now - window_ms (the sorted
-- set ``key`` of send times; older ones are dropped) (policies.decide.pushes_in_window).
local function pushes_in_window(key, now, window_ms)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_ms)
  return redis.call('ZCARD', key)
end

-- The fatigue cap one more push would break, 'window' or 'unanswered', or nil
-- (policies.decide.push_allowed).
local function push_cap(in_window, unanswered, max_pushes, max_unanswered)
  if in_window >= max_pushes then return 'window' end
  if unanswered >= max_unanswered then return 'unanswered' end
  return nil
end

-- The lock in force at now (see lock_end), as a string for the reply; a timed lock that has
-- run out is cleared here, with the failure count it ended.
local function lock_in_force(ukey, now)
  local l = redis.call('HMGET', ukey, 'locked', 'locked_until')
  local until_ms = lock_end(l[1], l[2], now)
  if until_ms then return tostring(until_ms) end
  if l[1] == '1' then
    redis.call('HDEL', ukey, 'locked', 'locked_until')
    redis.call('HSET', ukey, 'totp_failures', '0')
  end
  return nil
end

-- True when MFA is required, the user has no factor (no device, no active TOTP key) and the
-- enrollment period has ended, or was never recorded (fail closed, as policies.decide does).
local function enrollment_expired(ukey, dkey, now)
  local f = redis.call('HMGET', ukey, 'mfa_required', 'enrollment_deadline', 'totp_status')
  if f[1] ~= '1' or f[3] == 'active' then return false end
  if redis.call('SCARD', dkey) > 0 then return false end
  return (not f[2]) or tonumber(f[2]) <= now
end

-- Start an enrollment period at now and index it for the scheduler, scored by the time of
-- its reminder (the scheduler moves the score on to the deadline itself).
-- p = {index, member, period_ms, lead_ms}
local function start_period(ukey, now, p)
  local deadline = now + tonumber(p.period_ms)
  redis.call('HSET', ukey, 'mfa_started_at', tostring(now), 'enrollment_deadline', tostring(deadline))
  redis.call('ZADD', p.index, deadline - tonumber(p.lead_ms), p.member)
end

-- Create a user with defaults (first enrollment of an unknown id); true if created.
local function ensure_user(ukey, tenant, user_id, now, p)
  if redis.call('HSETNX', ukey, 'user_id', user_id) == 0 then return false end
  redis.call('HSET', ukey, 'tenant', tenant, 'role', 'user', 'mfa_required', '1',
    'created_at', tostring(now))
  start_period(ukey, now, p)
  return true
end

-- Record a delivery fact once (push sent, delivered, seen) while the challenge is pending,
-- tell the waiting portal and append the audit event. True if recorded by this call.
-- m = {ch, outbox, now, field, message, event_type ('' for none), chan, outbox_maxlen, device_id}
local function mark_once(m)
  local rec = redis.call('HMGET', m.ch, 'status', 'expires_at', 'tenant', 'user_id', 'id')
  if rec[1] ~= 'pending' or m.now >= tonumber(rec[2]) then return false end
  if redis.call('HSETNX', m.ch, m.field, tostring(m.now)) == 0 then return false end
  redis.call(PUB, m.chan, m.message)
  if m.event_type ~= '' then
    event(m.outbox, m.outbox_maxlen, m.event_type, rec[3], rec[4], rec[5], m.device_id, m.now, '{}')
  end
  return true
end

-- Delivery of one prompt (field 'p:<device>') or follow-up ('e:<device>') is recorded on the
-- challenge: 'c:<until_ms>:<owner>' while an attempt is in flight (until_ms bounds it),
-- 'r' after a transient failure, 's' once the provider accepted, 'x' dead token, 'f' failed
-- for good. Returns the kind ('none', 'live', 'stale', 'r', 's', 'x', 'f'), and for a live
-- attempt its owner and end.
local function attempt_state(value, now)
  if not value then return 'none' end
  local until_ms, owner = string.match(value, '^c:(%d+):(.*)$')
  if not until_ms then return value end
  if tonumber(until_ms) > now then return 'live', owner, tonumber(until_ms) end
  return 'stale'
end

-- Whether ``owner`` may start an attempt in a slot of this kind.
local function may_claim(kind, who, owner)
  return kind == 'none' or kind == 'r' or kind == 'stale' or (kind == 'live' and who == owner)
end

local function claim(ch, field, now, attempt_ms, owner)
  redis.call('HSET', ch, field, 'c:' .. tostring(now + attempt_ms) .. ':' .. owner)
end

-- Claim slot ``field`` of device ``id`` for ``owner`` and add the device's route (id, platform,
-- token, topic from ``d``) to ``routes`` when the slot is free. Returns how long another
-- owner's attempt in that slot may still be in flight (0 if none).
local function claim_route(ch, field, now, attempt_ms, owner, routes, id, d)
  local kind, who, until_ms = attempt_state(redis.call('HGET', ch, field), now)
  if may_claim(kind, who, owner) then
    claim(ch, field, now, attempt_ms, owner)
    routes[#routes + 1] = id
    routes[#routes + 1] = d[1]
    routes[#routes + 1] = d[2] or ''
    routes[#routes + 1] = d[3] or ''
    return 0
  end
  if kind == 'live' then return until_ms - now end
  return 0
end

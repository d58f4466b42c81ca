-- Record the outcome of one attempt: 's' accepted, 'r' transient failure, 'x' dead token,
-- 'f' failed for good. The first accepted prompt sets sent_at (portal told, event appended).
-- With an entry id this was the job's last outcome: the job is acknowledged, and a prompt job
-- that reached no phone leaves its error on the record.
-- KEYS: 1 challenge, 2 jobs, 3 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 owner, 3 field, 4 outcome, 5 entry id ('' = more to come), 6 group,
--       7 challenge channel, 8 outbox_maxlen, 9 device id, 10 push error ('' = none)
local now, owner, field, outcome = server_ms(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local kind, who = attempt_state(redis.call('HGET', KEYS[1], field), now)
  -- An acceptance is a fact whoever holds the slot; any other outcome only replaces our own
  -- attempt (or a slot nobody holds), never a settled one or another owner's live attempt.
  local settled = kind == 's' or kind == 'x' or kind == 'f'
  if (outcome == 's' and kind ~= 's') or (not settled and may_claim(kind, who, owner)) then
    redis.call('HSET', KEYS[1], field, outcome)
  end
  local prompt = string.sub(field, 1, 2) == 'p:'
  if outcome == 's' and prompt then
    mark_once({ch = KEYS[1], outbox = KEYS[3], now = now, field = 'sent_at',
      message = 'push_sent', event_type = 'challenge.push_sent', chan = ARGV[7],
      outbox_maxlen = ARGV[8], device_id = ARGV[9]})
  end
  if ARGV[5] ~= '' and prompt and ARGV[10] ~= '' and not redis.call('HGET', KEYS[1], 'sent_at') then
    redis.call('HSET', KEYS[1], 'push_error', ARGV[10])
  end
end
if ARGV[5] ~= '' then redis.call('XACK', KEYS[2], ARGV[6], ARGV[5]) end
return 1

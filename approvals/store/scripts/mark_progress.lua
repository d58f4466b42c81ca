-- Record a delivery fact once (push sent, delivered, seen) while the challenge is pending,
-- tell the waiting portal and append the audit event.
-- KEYS: 1 challenge, 2 outbox
-- ARGV: 1 clock shift ms (0 in production), 2 field, 3 message, 4 event type ('' for none), 5 chan, 6 outbox_maxlen,
--       7 device_id
local done = mark_once({ch = KEYS[1], outbox = KEYS[2], now = server_ms(ARGV[1]), field = ARGV[2],
  message = ARGV[3], event_type = ARGV[4], chan = ARGV[5], outbox_maxlen = ARGV[6],
  device_id = ARGV[7]})
if done then return 1 end
return 0

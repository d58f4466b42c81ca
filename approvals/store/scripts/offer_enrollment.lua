-- Remember a WebAuthn registration challenge issued for an enrollment code (at most 16).
-- KEYS: 1 enrollment
-- ARGV: 1 challenge (base64url)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HLEN', KEYS[1]) >= 24 then return -1 end
redis.call('HSET', KEYS[1], 'rc:' .. ARGV[1], '1')
return 1

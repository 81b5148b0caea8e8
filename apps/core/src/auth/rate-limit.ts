import type { RedisClient } from '../redis';

// A token bucket per API key in Redis: `perMin` tokens, refilled evenly
// (perMin / 60 000 per ms); a request takes one. One Lua script does the
// read, refill, take and write atomically, so every API process shares it.

const SCRIPT = `
local key = KEYS[1]
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', key, 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil then tokens = cap; ts = now end
if now > ts then tokens = math.min(cap, tokens + (now - ts) * rate); ts = now end
local allowed = 0
local wait = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', key, 't', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', key, math.ceil(cap / rate) + 1000)
return {allowed, wait, math.floor(tokens)}
`;

export interface RateDecision {
  allowed: boolean;
  /** When refused: ms until a token is available. */
  retryAfterMs: number;
  remaining: number;
}

export async function takeToken(redis: RedisClient, key: string, perMin: number, now = Date.now()): Promise<RateDecision> {
  const rate = perMin / 60_000;
  // Redis time is not used: API hosts' clocks only need to roughly agree.
  const [allowed, wait, remaining] = (await redis.eval(SCRIPT, 1, key, String(perMin), String(rate), String(now))) as [number, number, number];
  return { allowed: allowed === 1, retryAfterMs: Number(wait), remaining: Number(remaining) };
}

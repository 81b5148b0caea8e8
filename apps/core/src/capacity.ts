import type { RedisClient } from './redis';

// Capacity shared by every worker process on every host: counting
// semaphores in Redis, one sorted set per resource whose members are the
// holders and whose scores are their lease expiry. A holder takes all the
// units it needs at once or none (no partial holds, so no deadlock between
// jobs waiting for each other's resources), renews its lease while it works,
// and releases it at the end; a crashed worker's units come back when its
// lease expires. Redis' clock (TIME) is the only clock, so hosts with
// skewed clocks agree.

/**
 * Thrown by a step that cannot get its capacity now: the runner puts the job
 * back in the queue, delayed, as waiting_for_capacity with the reason,
 * without spending an attempt; the step runs again when it comes back.
 */
export class CapacityWait extends Error {
  readonly code = 'WAITING_FOR_CAPACITY';
  constructor(
    readonly reason: string,
    readonly resource: string,
    readonly retryMs: number,
  ) {
    super(reason);
    this.name = 'CapacityWait';
  }
}

export interface CapacityRequest {
  /** A resource, e.g. "vcenter:<id>:jobs", "host:<id>:<moref>:nfc". */
  key: string;
  /** Units this holder needs of it (NFC connections: one per disk written at once). */
  units: number;
  /** The most units all holders together may have. */
  limit: number;
  /** Shown when the resource is what a job waits for. */
  label: string;
}

export interface CapacityHold {
  holder: string;
  requests: CapacityRequest[];
}

// KEYS: resources. ARGV: holder, leaseMs, then per key: units, limit.
// Returns 0 when every resource had room (all taken), else the 1-based index
// of the first full resource (nothing taken). A holder already present
// (a retry after a lost reply) keeps its units.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder = ARGV[1]
local lease = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end
for i, key in ipairs(KEYS) do
  local units = tonumber(ARGV[1 + i * 2])
  local limit = tonumber(ARGV[2 + i * 2])
  local used = 0
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local h, n = string.match(m, '^(.*)#(%d+)$')
    if h ~= holder then used = used + tonumber(n) end
  end
  if used + units > limit then return i end
end
for i, key in ipairs(KEYS) do
  local units = tonumber(ARGV[1 + i * 2])
  redis.call('ZADD', key, now + lease, holder .. '#' .. units)
  redis.call('PEXPIRE', key, lease * 4)
end
return 0
`;

// KEYS: resources. ARGV: holder, leaseMs, then per key: units. Returns how many leases were still held.
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = 0
for i, key in ipairs(KEYS) do
  local m = ARGV[1] .. '#' .. ARGV[2 + i]
  local s = redis.call('ZSCORE', key, m)
  if s and tonumber(s) > now then
    redis.call('ZADD', key, now + tonumber(ARGV[2]), m)
    redis.call('PEXPIRE', key, tonumber(ARGV[2]) * 4)
    held = held + 1
  end
end
return held
`;

export interface CapacityOptions {
  /**
   * Key prefix (the queue prefix keeps test runs apart). In a Redis Cluster it
   * must be a hash tag, `{...}` (config.queue.prefix is one there): ACQUIRE,
   * RENEW and release touch several keys at once, which a cluster allows only
   * within one hash slot (else CROSSSLOT).
   */
  prefix: string;
  /** Lease of a hold; renewed every third of it. */
  leaseMs: number;
}

export class Capacity {
  constructor(
    private readonly redis: RedisClient,
    private readonly opts: CapacityOptions,
  ) {}

  private k(key: string) {
    return `${this.opts.prefix}:cap:${key}`;
  }

  /** Takes every request or none. Null when taken; else the request that is full. */
  async tryAcquire(holder: string, requests: CapacityRequest[]): Promise<CapacityRequest | null> {
    const live = requests.filter((r) => r.units > 0 && r.limit > 0);
    if (!live.length) return null;
    for (const r of live) if (r.units > r.limit) return r; // can never fit: the caller reports it
    const args = [holder, String(this.opts.leaseMs), ...live.flatMap((r) => [String(r.units), String(r.limit)])];
    const full = Number(await this.redis.eval(ACQUIRE, live.length, ...live.map((r) => this.k(r.key)), ...args));
    return full === 0 ? null : live[full - 1]!;
  }

  /** Extends the lease of a hold; false when it had expired (another holder may have the units now). */
  async renew(hold: CapacityHold): Promise<boolean> {
    const live = hold.requests.filter((r) => r.units > 0 && r.limit > 0);
    if (!live.length) return true;
    const held = Number(await this.redis.eval(RENEW, live.length, ...live.map((r) => this.k(r.key)), hold.holder, String(this.opts.leaseMs), ...live.map((r) => String(r.units))));
    return held === live.length;
  }

  async release(hold: CapacityHold): Promise<void> {
    const live = hold.requests.filter((r) => r.units > 0 && r.limit > 0);
    if (!live.length) return;
    const multi = this.redis.multi();
    for (const r of live) multi.zrem(this.k(r.key), `${hold.holder}#${r.units}`);
    await multi.exec();
  }

  /** Units in use of a resource now (expired leases not counted). */
  async inUse(key: string): Promise<number> {
    const now = Number((await this.redis.time())[0]) * 1000;
    const members = await this.redis.zrangebyscore(this.k(key), now, '+inf');
    return members.reduce((s, m) => s + Number(/#(\d+)$/.exec(m)?.[1] ?? 0), 0);
  }

  /**
   * Runs fn while holding the units, renewing the lease every third of it;
   * `onLost` fires if a renewal finds the lease gone (the caller should stop:
   * its units may now be someone else's). Null when the capacity was not
   * there (nothing held, fn not run); else fn's result.
   */
  async withHold<T>(holder: string, requests: CapacityRequest[], fn: () => Promise<T>, onLost: () => void): Promise<{ value: T } | { full: CapacityRequest }> {
    const full = await this.tryAcquire(holder, requests);
    if (full) return { full };
    const hold = { holder, requests };
    const timer = setInterval(() => {
      this.renew(hold)
        .then((ok) => ok || onLost())
        .catch(() => undefined); // Redis away: the next renewal tries again; the lease covers 3 periods
    }, Math.max(50, Math.floor(this.opts.leaseMs / 3)));
    timer.unref();
    try {
      return { value: await fn() };
    } finally {
      clearInterval(timer);
      await this.release(hold).catch(() => undefined); // else the lease expires
    }
  }
}

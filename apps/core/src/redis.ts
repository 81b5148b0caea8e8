import { Redis, type RedisOptions } from 'ioredis';

/**
 * Producers (the API) fail fast when Redis is down instead of queueing
 * commands in memory, and no command of theirs waits more than 5 s for an
 * answer; workers wait for Redis forever (BullMQ requires
 * maxRetriesPerRequest: null and no command timeout: its blocking commands
 * wait by design). Both reconnect with a capped backoff, so a restarted
 * Redis is found again within a second or two.
 */
export function createRedis(url: string, role: 'producer' | 'worker', extra: RedisOptions = {}): Redis {
  const retryStrategy = (times: number) => Math.min(100 * times, 2_000);
  const base: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000, commandTimeout: 5_000, retryStrategy }
      : { maxRetriesPerRequest: null, enableReadyCheck: true, connectTimeout: 10_000, retryStrategy };
  const sentinel = sentinelOptions(url);
  const r = sentinel ? new Redis({ ...base, ...sentinel, lazyConnect: false, ...extra }) : new Redis(url, { ...base, lazyConnect: false, ...extra });
  // An 'error' listener is required: without one ioredis reports every failed reconnect as unhandled.
  r.on('error', () => undefined);
  return r;
}

/**
 * Redis behind Sentinel: `redis-sentinel://[user:password@]host1:26379,host2:26379/mymaster`
 * (`rediss-sentinel://` for TLS to Redis; `?sentinelPassword=...` when the
 * sentinels want one). The client asks the sentinels for the current master
 * and follows failovers. Null for any other URL.
 */
export function sentinelOptions(url: string): RedisOptions | null {
  const m = /^(rediss?)-sentinel:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]+)\/([^/?]+)(?:\?(.*))?$/.exec(url);
  if (!m) return null;
  const [, scheme, user, password, hosts, name, query] = m;
  const sentinels = hosts!.split(',').map((h) => {
    const i = h.lastIndexOf(':');
    return i > 0 ? { host: h.slice(0, i), port: Number(h.slice(i + 1)) } : { host: h, port: 26379 };
  });
  const q = new URLSearchParams(query ?? '');
  return {
    sentinels,
    name: decodeURIComponent(name!),
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
    ...(q.get('sentinelPassword') ? { sentinelPassword: q.get('sentinelPassword')! } : {}),
    ...(scheme === 'rediss' ? { tls: {} } : {}),
  };
}

export type { Redis };

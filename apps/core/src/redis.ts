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
  const r = new Redis(url, { ...base, lazyConnect: false, ...extra });
  // An 'error' listener is required: without one ioredis reports every failed reconnect as unhandled.
  r.on('error', () => undefined);
  return r;
}

export type { Redis };

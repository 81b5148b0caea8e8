import { Redis, type RedisOptions } from 'ioredis';

/**
 * Producers (the API) fail fast when Redis is down instead of queueing
 * commands in memory; workers wait for Redis forever (BullMQ requires
 * maxRetriesPerRequest: null for blocking commands).
 */
export function createRedis(url: string, role: 'producer' | 'worker', extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000 }
      : { maxRetriesPerRequest: null, enableReadyCheck: true };
  const r = new Redis(url, { ...base, lazyConnect: false, ...extra });
  // An 'error' listener is required: without one ioredis reports every failed reconnect as unhandled.
  r.on('error', () => undefined);
  return r;
}

export type { Redis };

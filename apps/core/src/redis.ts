import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** What createRedis returns: one Redis (plain or through Sentinel), or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * Producers (the API) fail fast when Redis is down instead of queueing
 * commands in memory, and no command of theirs waits more than 5 s for an
 * answer; workers wait for Redis forever (BullMQ requires
 * maxRetriesPerRequest: null and no command timeout: its blocking commands
 * wait by design). Both reconnect with a capped backoff, so a restarted
 * Redis is found again within a second or two.
 */
export function createRedis(url: string, role: 'producer' | 'worker', extra: RedisOptions = {}): RedisClient {
  const retryStrategy = (times: number) => Math.min(100 * times, 2_000);
  const base: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5_000, commandTimeout: 5_000, retryStrategy }
      : { maxRetriesPerRequest: null, enableReadyCheck: true, connectTimeout: 10_000, retryStrategy };
  const cluster = clusterOptions(url);
  const sentinel = sentinelOptions(url);
  let r: RedisClient;
  if (cluster) {
    // The same options, split: the offline queue, reconnection and lazy
    // connect belong to the cluster as a whole (its node connections never
    // reconnect themselves: the cluster re-reads the slot map instead); the
    // rest (timeouts, retries per request, credentials, TLS) to each node's connection.
    const { enableOfflineQueue, retryStrategy: clusterRetryStrategy, lazyConnect, ...node } = { ...base, ...extra };
    r = new Cluster(cluster.nodes, {
      enableOfflineQueue,
      clusterRetryStrategy,
      lazyConnect: lazyConnect ?? false,
      enableReadyCheck: true,
      redisOptions: { ...node, ...cluster.redisOptions },
    });
  } else {
    r = sentinel ? new Redis({ ...base, ...sentinel, lazyConnect: false, ...extra }) : new Redis(url, { ...base, lazyConnect: false, ...extra });
  }
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
  const sentinels = hostList(hosts!, 26379);
  if (!sentinels) return null;
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

export interface RedisClusterOptions {
  /** Seed nodes: the client reads the slot map from the first that answers and finds the others from it. */
  nodes: Array<{ host: string; port: number }>;
  /** Credentials and TLS, for every node's connection. */
  redisOptions: NonNullable<ClusterOptions['redisOptions']>;
}

/**
 * Redis Cluster: `redis-cluster://[user:password@]host1:7000,host2:7001[,...]`
 * (`rediss-cluster://` for TLS; port 6379 when left out). Null for any other
 * URL, and for one with that scheme but no valid node list.
 */
export function clusterOptions(url: string): RedisClusterOptions | null {
  const m = /^(rediss?)-cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?@]+)\/?$/.exec(url);
  if (!m) return null;
  const [, scheme, user, password, hosts] = m;
  const nodes = hostList(hosts!, 6379);
  if (!nodes) return null;
  return {
    nodes,
    redisOptions: {
      ...(user ? { username: decodeURIComponent(user) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
      ...(scheme === 'rediss' ? { tls: {} } : {}),
    },
  };
}

/**
 * `host[:port],...` with IPv6 addresses in brackets (`[fd00::1]:7000`, the
 * port `defaultPort` when left out); an IPv6 address without brackets is a
 * host without a port. Null when a host is empty or a port is not 1-65535.
 */
function hostList(hosts: string, defaultPort: number): Array<{ host: string; port: number }> | null {
  const out = hosts.split(',').map((h) => {
    const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(h);
    if (v6) return { host: v6[1]!, port: v6[2] === undefined ? defaultPort : Number(v6[2]) };
    const i = h.indexOf(':');
    if (i < 0 || h.indexOf(':', i + 1) >= 0) return { host: h, port: defaultPort };
    return { host: h.slice(0, i), port: /^\d+$/.test(h.slice(i + 1)) ? Number(h.slice(i + 1)) : NaN };
  });
  return out.some((n) => !n.host || !Number.isInteger(n.port) || n.port < 1 || n.port > 65535) ? null : out;
}

export const isClusterUrl = (url: string) => /^rediss?-cluster:\/\//.test(url);

/**
 * The prefix of every key the service writes (BullMQ's queues, capacity
 * leases, rate limits). In a Redis Cluster a Lua script or MULTI may only
 * touch keys of one hash slot, and BullMQ's scripts touch several keys of a
 * queue: so there the prefix is a hash tag, `vmrestore` → `{vmrestore}`, and
 * only the tag is hashed. Every key of ours then lives in one slot (one
 * node): our own keys are tiny, and a queue lives in one slot anyway. A
 * prefix already in braces is kept, so the result is a valid prefix again.
 * Single Redis and Sentinel: the prefix as given.
 */
export function keyPrefix(prefix: string, redisUrl: string): string {
  return isClusterUrl(redisUrl) && !/^\{[^{}]+\}$/.test(prefix) ? `{${prefix}}` : prefix;
}

export type { Cluster };
// Core's name for "a Redis client" from before Cluster support: the same as
// RedisClient, so code typed against it accepts a Cluster too.
export type { RedisClient as Redis };

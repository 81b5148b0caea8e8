import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterOptions, isClusterUrl, keyPrefix } from './redis';

// Configuration is read from the environment once, at boot, into one typed
// object. Every problem is reported together, naming the variable, and the
// process refuses to start: nothing is silently defaulted that matters.

export interface Config {
  databaseUrl: string;
  redisUrl: string;
  api: { host: string; port: number; bodyLimitBytes: number; publicUrl: string | null };
  queue: {
    /** Prefix of every Redis key the service writes; a hash tag ({...}) with a Redis Cluster. Tests give each run its own. */
    prefix: string;
    attempts: number;
    backoffMs: number;
    /** How long a worker's lock on a job lasts without renewal: a dead worker's job is picked up after this. */
    lockDurationMs: number;
    stalledIntervalMs: number;
  };
  /** requeue/sweep intervals: 0 turns the periodic task off. */
  worker: {
    concurrency: number;
    cancelPollMs: number;
    requeueIntervalMs: number;
    sweepIntervalMs: number;
    /** Deadline of one step (docs/resilience.md); expiry fails the job with STEP_TIMEOUT. */
    stepTimeoutMs: number;
    /** A step that reports progress may run longer, as long as its progress never stops for this long. */
    stallTimeoutMs: number;
    /** How long an aborted step gets to stop before the runner moves on without it. */
    stepAbortGraceMs: number;
    /** How long the runner waits for Postgres to come back before it gives the attempt up. */
    dbWaitMs: number;
    /** Orphan sweep (docs/orphans.md): period (0 = off: no periodic or start sweep); one worker at a time sweeps. */
    orphanSweepIntervalMs: number;
    /** How often a worker looks for a requested sweep (POST /v1/orphans/sweep). */
    orphanRequestPollMs: number;
    /** Sweep only this tenant's vCenters, jobs and locks (a tenant id); null = every tenant. */
    orphanSweepTenantId: string | null;
  };
  /**
   * Limits shared by every worker (Redis leases, docs/scheduling.md); 0 = no
   * limit. A job whose write step cannot get them waits (waiting_for_capacity).
   */
  limits: {
    vcenterJobs: number;
    vcenterNfc: number;
    hostJobs: number;
    hostNfc: number;
    datastoreJobs: number;
    /** Bandwidth caps (MiB/s), shared by the jobs writing to one datastore / of one tenant. */
    datastoreMBps: number;
    tenantMBps: number;
    retryMs: number;
    leaseMs: number;
  };
  /** Backup repository roots (absolute directories); empty = no repository configured. */
  backupRoots: string[];
  restore: {
    /** Datastores this host mounts, name → local directory: the `file` target writes their VMDKs directly. */
    datastorePaths: Record<string, string>;
    /** Directory holding VMware's libvixDiskLib.so.{8,7,6}; null = the `vddk` target is unavailable. */
    vddkLibDir: string | null;
    /** VixDiskLib_InitEx config file (optional). */
    vddkConfigFile: string | null;
    /** Scratch space for per-job files (patches, zero sources). */
    workDir: string;
    /** vSphere sessions one worker keeps per vCenter. */
    vsphereMaxSessions: number;
    /** Timeout of one vCenter task (ms). */
    vsphereTaskTimeoutMs: number;
    /** copy() with no progress callback for this long is cancelled: VDDK_STALLED (apps/worker/src/watchdog.ts). */
    vddkStallTimeoutMs: number;
    /** Longest single read of the backup repository's files: BACKUP_READ_TIMEOUT. */
    backupReadTimeoutMs: number;
    /** Extents per write batch: progress is checkpointed after each batch. */
    writeBatchExtents: number;
    /** Disks of one job written (and verified) at the same time. */
    diskParallelism: number;
    /** Range streams: copies writing one disk at once (file targets, disjoint write lists; docs/scheduling.md). */
    diskStreams: number;
    /**
     * Direct I/O (O_DIRECT) for file-target writes: 'auto' when a disk's
     * copy would run alone in the worker process (every job's file writes
     * counted), the page cache when several run (measured: ext4 serializes
     * allocating direct writes, and delayed allocation does better for
     * several files at once); 'on' / 'off' force it. Read-backs are direct
     * unless 'off'.
     */
    fileDirectIo: 'auto' | 'on' | 'off';
    /** A range stream's least share of a disk, in bytes (VMRESTORE_STREAM_MIN_MB). */
    streamMinBytes: number;
    /** Where `export` jobs write standalone VMDKs (one directory per export); null = exports unavailable. */
    exportRoot: string | null;
  };
  log: { level: string; pretty: boolean };
  /** Metrics and the queue board (docs/metrics.md). */
  ops: {
    /** Bearer token GET /metrics requires (api and worker); null = /metrics is public. Never logged. */
    metricsToken: string | null;
    /** The worker's /metrics listener; port 0 = no listener. */
    workerMetricsHost: string;
    workerMetricsPort: number;
    /** The tenant whose `admin` keys may open Bull Board (it shows every tenant's queue jobs). */
    operatorTenant: string;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** "LocalDS_0=/mnt/ds0;nfs-ds=/mnt/nfs" (";" or "," between entries). */
export function parseDatastorePaths(raw: string, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of raw.split(/[;,]/).map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq).trim();
    const dir = entry.slice(eq + 1).trim();
    if (eq <= 0 || !dir.startsWith('/')) problems.push(`VMRESTORE_DATASTORE_PATHS: "${entry}" must be NAME=/absolute/dir`);
    else out[name] = dir;
  }
  return out;
}

/**
 * The local directory of a datastore for the `file` target. Entries may be
 * qualified by the vCenter (`vc1.example.com/LocalDS_0=/mnt/a`): datastore
 * names are unique only within one vCenter. A qualified entry wins over a
 * plain one.
 */
export function localDatastoreDir(config: Pick<Config, 'restore'>, vcenterUrl: string | null | undefined, datastore: string): string | undefined {
  if (vcenterUrl) {
    let host: string | null = null;
    try {
      host = new URL(vcenterUrl).host.toLowerCase();
    } catch {
      host = null;
    }
    const q = host ? config.restore.datastorePaths[`${host}/${datastore}`] : undefined;
    if (q) return q;
  }
  return config.restore.datastorePaths[datastore];
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];

  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name} must be one of ${allowed.join(', ')} (got "${raw}")`);
    return fallback;
  };
  const str = (name: string, fallback?: string): string => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    problems.push(`${name} is required`);
    return '';
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return n;
  };
  const url = (name: string, protocols: string[]): string => {
    const v = str(name);
    if (!v) return v;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) problems.push(`${name} must use ${protocols.join(' or ')}`);
    } catch {
      problems.push(`${name} is not a URL`);
    }
    return v;
  };

  const uuidOrNull = (name: string): string | null => {
    const v = env[name];
    if (v === undefined || v === '') return null;
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) problems.push(`${name} must be a tenant id (a UUID)`);
    return v.toLowerCase();
  };
  const lockDurationMs = int('VMRESTORE_LOCK_DURATION_MS', 30_000, 1_000, 600_000);
  const config: Config = {
    databaseUrl: url('DATABASE_URL', ['postgresql:', 'postgres:']),
    // redis-sentinel://host1:26379,host2:26379/mymaster: Redis behind Sentinel;
    // redis-cluster://host1:7000,host2:7001: Redis Cluster (core/redis.ts).
    redisUrl: /^rediss?-(sentinel|cluster):\/\//.test(env.REDIS_URL ?? '') ? str('REDIS_URL') : url('REDIS_URL', ['redis:', 'rediss:']),
    api: {
      host: str('VMRESTORE_HOST', '127.0.0.1'),
      port: int('VMRESTORE_PORT', 8080, 0, 65535),
      bodyLimitBytes: int('VMRESTORE_BODY_LIMIT_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
      publicUrl: env.VMRESTORE_PUBLIC_URL || null,
    },
    queue: {
      // In a Redis Cluster, a hash tag: {vmrestore} (keyPrefix, core/redis.ts).
      prefix: keyPrefix(str('VMRESTORE_QUEUE_PREFIX', 'vmrestore'), env.REDIS_URL ?? ''),
      attempts: int('VMRESTORE_JOB_ATTEMPTS', 5, 1, 100),
      backoffMs: int('VMRESTORE_JOB_BACKOFF_MS', 5_000, 10, 3_600_000),
      lockDurationMs,
      stalledIntervalMs: int('VMRESTORE_STALLED_INTERVAL_MS', Math.min(30_000, lockDurationMs), 500, 600_000),
    },
    worker: {
      concurrency: int('VMRESTORE_WORKER_CONCURRENCY', 4, 1, 256),
      cancelPollMs: int('VMRESTORE_CANCEL_POLL_MS', 1_000, 50, 60_000),
      requeueIntervalMs: int('VMRESTORE_REQUEUE_INTERVAL_MS', 30_000, 0, 3_600_000),
      sweepIntervalMs: int('VMRESTORE_SWEEP_INTERVAL_MS', 5 * 60_000, 0, 24 * 3_600_000),
      stepTimeoutMs: int('VMRESTORE_STEP_TIMEOUT_MS', 30 * 60_000, 100, 7 * 24 * 3_600_000),
      stallTimeoutMs: int('VMRESTORE_STALL_TIMEOUT_MS', 10 * 60_000, 100, 24 * 3_600_000),
      stepAbortGraceMs: int('VMRESTORE_STEP_ABORT_GRACE_MS', 60_000, 0, 3_600_000),
      dbWaitMs: int('VMRESTORE_DB_WAIT_MS', 10 * 60_000, 0, 24 * 3_600_000),
      orphanSweepIntervalMs: int('VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS', 15 * 60_000, 0, 7 * 24 * 3_600_000),
      orphanRequestPollMs: int('VMRESTORE_ORPHAN_REQUEST_POLL_MS', 10_000, 100, 3_600_000),
      orphanSweepTenantId: uuidOrNull('VMRESTORE_ORPHAN_SWEEP_TENANT'),
    },
    limits: {
      vcenterJobs: int('VMRESTORE_LIMIT_VCENTER_JOBS', 16, 0, 10_000),
      // VMware's documented NFC budget: 52 connections through one vCenter.
      vcenterNfc: int('VMRESTORE_LIMIT_VCENTER_NFC', 52, 0, 10_000),
      hostJobs: int('VMRESTORE_LIMIT_HOST_JOBS', 8, 0, 10_000),
      // NBD/NBDSSL connections one ESXi host serves at once (set to your ESXi version's limit).
      hostNfc: int('VMRESTORE_LIMIT_HOST_NFC', 28, 0, 10_000),
      datastoreJobs: int('VMRESTORE_LIMIT_DATASTORE_JOBS', 4, 0, 10_000),
      datastoreMBps: int('VMRESTORE_CAP_DATASTORE_MBPS', 0, 0, 1_000_000),
      tenantMBps: int('VMRESTORE_CAP_TENANT_MBPS', 0, 0, 1_000_000),
      retryMs: int('VMRESTORE_CAPACITY_RETRY_MS', 3_000, 50, 600_000),
      leaseMs: int('VMRESTORE_CAPACITY_LEASE_MS', 30_000, 1_000, 3_600_000),
    },
    backupRoots: (env.VMRESTORE_BACKUP_ROOTS ?? '').split(':').map((r) => r.trim()).filter(Boolean),
    restore: {
      datastorePaths: parseDatastorePaths(env.VMRESTORE_DATASTORE_PATHS ?? '', problems),
      vddkLibDir: env.VMRESTORE_VDDK_LIB_DIR || null,
      vddkConfigFile: env.VMRESTORE_VDDK_CONFIG || null,
      workDir: str('VMRESTORE_WORK_DIR', join(tmpdir(), 'vmrestore-work')),
      vsphereMaxSessions: int('VMRESTORE_VSPHERE_MAX_SESSIONS', 4, 1, 64),
      vsphereTaskTimeoutMs: int('VMRESTORE_VSPHERE_TASK_TIMEOUT_MS', 30 * 60_000, 1_000, 24 * 3600_000),
      vddkStallTimeoutMs: int('VMRESTORE_VDDK_STALL_TIMEOUT_MS', 5 * 60_000, 100, 24 * 3_600_000),
      backupReadTimeoutMs: int('VMRESTORE_BACKUP_READ_TIMEOUT_MS', 60_000, 100, 3_600_000),
      writeBatchExtents: int('VMRESTORE_WRITE_BATCH_EXTENTS', 4096, 1, 1_000_000),
      diskParallelism: int('VMRESTORE_DISK_PARALLELISM', 2, 1, 16),
      diskStreams: int('VMRESTORE_DISK_STREAMS', 1, 1, 16),
      fileDirectIo: oneOf('VMRESTORE_FILE_DIRECT_IO', ['auto', 'on', 'off'] as const, 'auto'),
      streamMinBytes: int('VMRESTORE_STREAM_MIN_MB', 1024, 1, 1024 * 1024) * 1024 * 1024,
      exportRoot: env.VMRESTORE_EXPORT_ROOT || null,
    },
    log: {
      level: str('LOG_LEVEL', 'info'),
      pretty: env.LOG_PRETTY === '1',
    },
    ops: {
      metricsToken: env.VMRESTORE_METRICS_TOKEN || null,
      workerMetricsHost: str('VMRESTORE_WORKER_METRICS_HOST', '127.0.0.1'),
      workerMetricsPort: int('VMRESTORE_WORKER_METRICS_PORT', 9464, 0, 65535),
      operatorTenant: str('VMRESTORE_OPERATOR_TENANT', 'default'),
    },
  };
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(config.log.level)) {
    problems.push(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`);
  }
  if (config.queue.stalledIntervalMs > config.queue.lockDurationMs) {
    problems.push('VMRESTORE_STALLED_INTERVAL_MS must not exceed VMRESTORE_LOCK_DURATION_MS');
  }
  if (config.restore.exportRoot && !config.restore.exportRoot.startsWith('/')) problems.push('VMRESTORE_EXPORT_ROOT must be an absolute path');
  for (const r of config.backupRoots) if (!r.startsWith('/')) problems.push(`VMRESTORE_BACKUP_ROOTS: "${r}" is not an absolute path`);
  if (isClusterUrl(config.redisUrl) && !clusterOptions(config.redisUrl)) problems.push('REDIS_URL must list the cluster nodes: redis-cluster://[user:password@]host1:port1,host2:port2');
  // Braces around the whole prefix only: a Redis Cluster hash tag (keyPrefix adds them there; given here, they are kept).
  if (!/^(\{[A-Za-z0-9:_-]+\}|[A-Za-z0-9:_-]+)$/.test(config.queue.prefix)) problems.push('VMRESTORE_QUEUE_PREFIX may hold letters, digits, :, _ and - only, optionally all in {braces}');
  // The token's value is never echoed, only its shape.
  if (config.ops.metricsToken !== null && !/^[\x21-\x7e]{16,256}$/.test(config.ops.metricsToken)) {
    problems.push('VMRESTORE_METRICS_TOKEN must be 16 to 256 printable characters without spaces');
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

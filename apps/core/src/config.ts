// Configuration is read from the environment once, at boot, into one typed
// object. Every problem is reported together, naming the variable, and the
// process refuses to start: nothing is silently defaulted that matters.

export interface Config {
  databaseUrl: string;
  redisUrl: string;
  api: { host: string; port: number; bodyLimitBytes: number; publicUrl: string | null };
  queue: {
    /** Redis key prefix; tests give each run its own. */
    prefix: string;
    attempts: number;
    backoffMs: number;
    /** How long a worker's lock on a job lasts without renewal: a dead worker's job is picked up after this. */
    lockDurationMs: number;
    stalledIntervalMs: number;
  };
  worker: { concurrency: number; cancelPollMs: number; requeueIntervalMs: number };
  /** Backup repository roots (absolute directories); empty = no repository configured. */
  backupRoots: string[];
  log: { level: string; pretty: boolean };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];

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

  const lockDurationMs = int('VMRESTORE_LOCK_DURATION_MS', 30_000, 1_000, 600_000);
  const config: Config = {
    databaseUrl: url('DATABASE_URL', ['postgresql:', 'postgres:']),
    redisUrl: url('REDIS_URL', ['redis:', 'rediss:']),
    api: {
      host: str('VMRESTORE_HOST', '127.0.0.1'),
      port: int('VMRESTORE_PORT', 8080, 0, 65535),
      bodyLimitBytes: int('VMRESTORE_BODY_LIMIT_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
      publicUrl: env.VMRESTORE_PUBLIC_URL || null,
    },
    queue: {
      prefix: str('VMRESTORE_QUEUE_PREFIX', 'vmrestore'),
      attempts: int('VMRESTORE_JOB_ATTEMPTS', 5, 1, 100),
      backoffMs: int('VMRESTORE_JOB_BACKOFF_MS', 5_000, 10, 3_600_000),
      lockDurationMs,
      stalledIntervalMs: int('VMRESTORE_STALLED_INTERVAL_MS', Math.min(30_000, lockDurationMs), 500, 600_000),
    },
    worker: {
      concurrency: int('VMRESTORE_WORKER_CONCURRENCY', 4, 1, 256),
      cancelPollMs: int('VMRESTORE_CANCEL_POLL_MS', 1_000, 50, 60_000),
      requeueIntervalMs: int('VMRESTORE_REQUEUE_INTERVAL_MS', 30_000, 100, 3_600_000),
    },
    backupRoots: (env.VMRESTORE_BACKUP_ROOTS ?? '').split(':').map((r) => r.trim()).filter(Boolean),
    log: {
      level: str('LOG_LEVEL', 'info'),
      pretty: env.LOG_PRETTY === '1',
    },
  };
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(config.log.level)) {
    problems.push(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`);
  }
  if (config.queue.stalledIntervalMs > config.queue.lockDurationMs) {
    problems.push('VMRESTORE_STALLED_INTERVAL_MS must not exceed VMRESTORE_LOCK_DURATION_MS');
  }
  for (const r of config.backupRoots) if (!r.startsWith('/')) problems.push(`VMRESTORE_BACKUP_ROOTS: "${r}" is not an absolute path`);
  if (!/^[A-Za-z0-9:_-]+$/.test(config.queue.prefix)) problems.push('VMRESTORE_QUEUE_PREFIX may hold letters, digits, :, _ and - only');
  if (problems.length) throw new ConfigError(problems);
  return config;
}

import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { loadConfig, type Config } from '@vmrestore/core';

export const ROOT = join(__dirname, '..', '..');

/** DATABASE_URL and REDIS_URL from the environment, or from .run/env written by scripts/services.sh. */
export function serviceEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  const file = join(process.env.VMRESTORE_RUN_DIR ?? join(ROOT, '.run'), 'env');
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!;
    }
  }
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'VMRESTORE_SECRET_KEYS']) if (process.env[k]) out[k] = process.env[k]!;
  if (!out.DATABASE_URL || !out.REDIS_URL) {
    throw new Error('integration tests need Postgres and Redis: run `bash scripts/services.sh start` (or `npm test`, which does it)');
  }
  return out;
}

/** A config of its own for one test file: its own queue prefix, quick stall detection. */
export function testConfig(extra: Record<string, string> = {}): Config {
  return loadConfig({
    ...serviceEnv(),
    VMRESTORE_QUEUE_PREFIX: `t${randomUUID().slice(0, 8)}`,
    VMRESTORE_JOB_BACKOFF_MS: '100',
    VMRESTORE_LOCK_DURATION_MS: '3000',
    VMRESTORE_STALLED_INTERVAL_MS: '1000',
    VMRESTORE_CANCEL_POLL_MS: '100',
    // Off: the periodic requeue and sweep scan the whole (shared) database;
    // tests that need them turn them on with a tenant of their own.
    VMRESTORE_REQUEUE_INTERVAL_MS: '0',
    VMRESTORE_SWEEP_INTERVAL_MS: '0',
    VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS: '0',
    LOG_LEVEL: 'silent',
    ...extra,
  });
}

export function envFor(config: Config, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    ...(process.env.VMRESTORE_SECRET_KEYS ? { VMRESTORE_SECRET_KEYS: process.env.VMRESTORE_SECRET_KEYS } : {}),
    VMRESTORE_QUEUE_PREFIX: config.queue.prefix,
    VMRESTORE_JOB_BACKOFF_MS: String(config.queue.backoffMs),
    VMRESTORE_LOCK_DURATION_MS: String(config.queue.lockDurationMs),
    VMRESTORE_STALLED_INTERVAL_MS: String(config.queue.stalledIntervalMs),
    VMRESTORE_CANCEL_POLL_MS: String(config.worker.cancelPollMs),
    VMRESTORE_REQUEUE_INTERVAL_MS: String(config.worker.requeueIntervalMs),
    VMRESTORE_SWEEP_INTERVAL_MS: String(config.worker.sweepIntervalMs),
    // Off: an orphan sweep would scan every vCenter of the shared database (docs/orphans.md); tests that sweep pass a tenant.
    VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS: '0',
    // Workers run side by side in the suite: no metrics listener unless a test asks for one.
    VMRESTORE_WORKER_METRICS_PORT: '0',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** A TCP port free on 127.0.0.1 right now (for a server a test starts itself). */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

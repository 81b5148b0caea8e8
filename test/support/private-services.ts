import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './env';

// A Postgres and a Redis of one test file's own (scripts/services.sh with
// VMRESTORE_RUN_DIR), migrated, for the tests that kill and restart them:
// the shared pair in .run/ serves every other test file running meanwhile.
// Loopback only; a restart keeps the ports, so clients reconnect to the same
// URLs. Redis runs with appendonly (fsync every second): a restart keeps
// the queues.

const run = promisify(execFile);

export interface PrivateServices {
  dir: string;
  databaseUrl: string;
  redisUrl: string;
  /** SIGKILL (no shutdown: a crash), then wait until the process is gone. */
  killRedis(): Promise<void>;
  startRedis(): Promise<void>;
  killPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  /** Stops both and removes the run directory. */
  close(): Promise<void>;
}

export async function startPrivateServices(): Promise<PrivateServices> {
  const dir = mkdtempSync(join(tmpdir(), 'vmrestore-svc-'));
  chmodSync(dir, 0o755); // Postgres runs as the postgres user when the tests run as root
  const env = { ...process.env, VMRESTORE_RUN_DIR: dir };
  const services = (cmd: string) => run('bash', [join(ROOT, 'scripts', 'services.sh'), cmd], { env, timeout: 120_000 });
  await services('start');
  const vars = Object.fromEntries(
    readFileSync(join(dir, 'env'), 'utf8')
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  const databaseUrl = vars.DATABASE_URL!;
  const redisUrl = vars.REDIS_URL!;
  await run(process.execPath, ['--no-warnings', '--experimental-wasm-modules', join(ROOT, 'scripts', 'migrate.mjs'), 'deploy'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    timeout: 120_000,
  });
  const pidOf = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : 0);
  const port = (url: string) => Number(new URL(url).port);
  const kill = async (pid: number, p: number): Promise<void> => {
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await until(() => !alive(pid), 10_000);
    }
    await until(async () => !(await listening(p)), 10_000);
  };
  // Started for real: listening on its old port again (a restart that only
  // thinks the server runs would make every later check meaningless).
  const restart = async (cmd: string, p: number) => {
    await services(cmd);
    await until(() => listening(p), 10_000);
  };
  return {
    dir,
    databaseUrl,
    redisUrl,
    killRedis: () => kill(pidOf(join(dir, 'redis', 'redis.pid')), port(redisUrl)),
    startRedis: () => restart('start-redis', port(redisUrl)),
    // The postmaster: its backends notice and exit on their own.
    killPostgres: () => kill(pidOf(join(dir, 'pg', 'data', 'postmaster.pid')), port(databaseUrl)),
    startPostgres: () => restart('start-pg', port(databaseUrl)),
    async close() {
      await services('stop').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is dead all the same.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function until(fn: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('private services: a process did not stop in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

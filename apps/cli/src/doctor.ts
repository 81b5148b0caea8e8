import { constants, existsSync, promises as fs, readdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import {
  ConfigError,
  createDb,
  createRedis,
  keyPrefix,
  loadConfig,
  loadKeyring,
  parseDatastorePaths,
  testVcenterConnection,
  type Db,
  type Keyring,
} from '@vmrestore/core';
import type { listVcenters } from '@vmrestore/core';

type VCenterConnection = Awaited<ReturnType<typeof listVcenters>>[number];
import { ApiClient, ApiError, UnreachableError } from './client';
import { CHECK_GROUPS, safeUrl, scrub, urlPassword, vddkVersion, type CheckGroup, type CheckResult } from './doctor-fns';

// `vmrestore doctor`: checks what a restore needs on this host, each check
// ok / warn / fail with the reason and a hint. Run it on the server host
// with the service's environment (like `admin`): it reads DATABASE_URL,
// REDIS_URL, VMRESTORE_SECRET_KEYS, the datastore and VDDK settings, and
// asks the API for /readyz. No check changes anything, apart from a
// temporary file written and removed in each directory that must be
// writable.

export interface DoctorOptions {
  env: Record<string, string | undefined>;
  apiUrl: string;
  apiKey?: string;
  /** Only vCenter connections of this tenant. */
  tenant?: string;
  only?: CheckGroup[];
  timeoutMs: number;
}

class Timeout extends Error {}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Timeout(`${what} did not answer within ${Math.round(ms / 100) / 10} s`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

const message = (e: unknown) => {
  const err = e as { message?: string; code?: string; cause?: { code?: string } };
  const code = err.cause?.code ?? (typeof err.code === 'string' ? err.code : undefined);
  const msg = (err.message ?? String(e)).split('\n').map((l) => l.trim()).filter(Boolean).slice(-1)[0] ?? String(e);
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
};

export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  const { env } = o;
  const want = (g: CheckGroup) => !o.only || o.only.includes(g);
  const secrets = [urlPassword(env.DATABASE_URL), urlPassword(env.REDIS_URL), o.apiKey];
  const results: CheckResult[] = [];
  const add = (r: CheckResult) => results.push({ ...r, detail: scrub(r.detail, secrets), ...(r.hint ? { hint: scrub(r.hint, secrets) } : {}) });

  if (want('config')) add(checkConfig(env));

  let db: Db | null = null;
  try {
    if (want('postgres') || want('vcenters')) db = await checkPostgres(env, o.timeoutMs, want('postgres') ? add : () => undefined);
    if (want('redis')) await checkRedis(env, o.timeoutMs, add);
    if (want('api')) await checkApi(o, add);
    if (want('vcenters')) await checkVcenters(db, env, o, add);
  } finally {
    // A stuck pool must not keep the command alive.
    await db?.$disconnect().catch(() => undefined);
  }
  if (want('vddk')) add(checkVddk(env));
  if (want('datastores')) for (const r of await checkDatastores(env)) add(r);
  if (want('backups')) for (const r of await checkBackupRoots(env)) add(r);
  if (want('workdir')) for (const r of await checkWorkDirs(env)) add(r);
  return results;
}

function checkConfig(env: DoctorOptions['env']): CheckResult {
  try {
    loadConfig(env);
    return { check: 'config', name: 'config', status: 'ok', detail: 'environment parses (apps/core config)' };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return { check: 'config', name: 'config', status: 'fail', detail: e.problems.join('; '), hint: 'the api and worker refuse to start with this environment: fix the variables named' };
  }
}

/** Postgres reachable, and every migration of prisma/migrations applied. Returns the connection for later checks. */
async function checkPostgres(env: DoctorOptions['env'], timeoutMs: number, add: (r: CheckResult) => void): Promise<Db | null> {
  const base = { check: 'postgres' } as const;
  const url = env.DATABASE_URL;
  if (!url) {
    add({ ...base, name: 'postgres', status: 'fail', detail: 'DATABASE_URL is not set', hint: 'run doctor with the service environment (DATABASE_URL=postgresql://user:pass@host:5432/db)' });
    return null;
  }
  const db = createDb(url, { max: 1 });
  try {
    await within(db.$queryRaw`SELECT 1`, timeoutMs, 'Postgres');
  } catch (e) {
    add({ ...base, name: 'postgres', status: 'fail', detail: `cannot query ${safeUrl(url)}: ${message(e)}`, hint: 'is Postgres running and DATABASE_URL right (host, port, user, password, database)?' });
    await db.$disconnect().catch(() => undefined);
    return null;
  }
  add({ ...base, name: 'postgres', status: 'ok', detail: `reachable at ${safeUrl(url)}` });

  const migrate = 'node --experimental-wasm-modules scripts/migrate.mjs deploy';
  let rows: Array<{ migration_name: string; finished_at: Date | null; rolled_back_at: Date | null }>;
  try {
    rows = await within(db.$queryRaw`SELECT migration_name, finished_at, rolled_back_at FROM _prisma_migrations`, timeoutMs, 'Postgres');
  } catch (e) {
    add({ ...base, name: 'postgres migrations', status: 'fail', detail: `no migration table: ${message(e)}`, hint: `the database was never migrated: run ${migrate}` });
    return db;
  }
  const applied = new Set(rows.filter((r) => r.finished_at && !r.rolled_back_at).map((r) => r.migration_name));
  const broken = rows.filter((r) => !r.finished_at && !r.rolled_back_at).map((r) => r.migration_name);
  const dir = migrationsDir();
  const known = dir ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
  const missing = known.filter((m) => !applied.has(m));
  if (broken.length) {
    add({ ...base, name: 'postgres migrations', status: 'fail', detail: `started but not finished: ${broken.join(', ')}`, hint: 'a migration failed half way: see docs/database.md before running deploy again' });
  } else if (missing.length) {
    add({ ...base, name: 'postgres migrations', status: 'fail', detail: `${missing.length} not applied: ${missing.join(', ')}`, hint: `run ${migrate}` });
  } else if (!dir) {
    add({ ...base, name: 'postgres migrations', status: 'warn', detail: `${applied.size} applied; prisma/migrations not found next to the CLI, so not compared`, hint: 'run doctor from the installed tree' });
  } else {
    add({ ...base, name: 'postgres migrations', status: 'ok', detail: `all ${known.length} applied` });
  }
  return db;
}

function migrationsDir(): string | null {
  // dist/doctor.js (or src/ under ts-jest) → apps/cli → repo root.
  const dir = resolve(__dirname, '..', '..', '..', 'prisma', 'migrations');
  return existsSync(dir) ? dir : null;
}

/** Redis reachable, maxmemory-policy noeviction (BullMQ loses jobs otherwise), persistence on, workers connected. */
async function checkRedis(env: DoctorOptions['env'], timeoutMs: number, add: (r: CheckResult) => void): Promise<void> {
  const base = { check: 'redis' } as const;
  const url = env.REDIS_URL;
  if (!url) {
    add({ ...base, name: 'redis', status: 'fail', detail: 'REDIS_URL is not set', hint: 'run doctor with the service environment (REDIS_URL=redis://host:6379)' });
    return;
  }
  const redis = createRedis(url, 'producer', { lazyConnect: true, retryStrategy: () => null, connectTimeout: timeoutMs });
  let lastError: unknown;
  redis.on('error', (e) => (lastError = e));
  try {
    try {
      await within(redis.connect().then(() => redis.ping()), timeoutMs, 'Redis');
    } catch (e) {
      add({ ...base, name: 'redis', status: 'fail', detail: `cannot reach ${safeUrl(url)}: ${message(lastError ?? e)}`, hint: 'is Redis running and REDIS_URL right?' });
      return;
    }
    add({ ...base, name: 'redis', status: 'ok', detail: `reachable at ${safeUrl(url)}` });
    let policy: string | undefined;
    let aof: string | undefined;
    let save: string | undefined;
    try {
      const get = async (k: string) => ((await within(redis.config('GET', k), timeoutMs, 'Redis')) as string[])[1];
      [policy, aof, save] = [await get('maxmemory-policy'), await get('appendonly'), await get('save')];
    } catch (e) {
      add({ ...base, name: 'redis config', status: 'warn', detail: `cannot read CONFIG: ${message(e)}`, hint: 'a managed Redis may hide CONFIG: make sure maxmemory-policy is noeviction and persistence is on' });
    }
    if (policy !== undefined) {
      add(
        policy === 'noeviction'
          ? { ...base, name: 'redis maxmemory-policy', status: 'ok', detail: 'noeviction' }
          : { ...base, name: 'redis maxmemory-policy', status: 'fail', detail: `${policy}: Redis may evict queue keys and lose jobs`, hint: 'set maxmemory-policy noeviction (redis.conf, or CONFIG SET maxmemory-policy noeviction)' },
      );
      const persistent = aof === 'yes' || Boolean(save?.trim());
      add(
        persistent
          ? { ...base, name: 'redis persistence', status: 'ok', detail: [aof === 'yes' ? 'appendonly' : null, save?.trim() ? `save "${save.trim()}"` : null].filter(Boolean).join(', ') }
          : { ...base, name: 'redis persistence', status: 'warn', detail: 'neither appendonly nor save snapshots: queued jobs are lost when Redis restarts', hint: 'turn on appendonly yes (the queue is re-filled from Postgres by the requeue sweep, but late)' },
      );
    }
    // The prefix the service uses: a hash tag in a Redis Cluster ({vmrestore}), as loadConfig makes it.
    const prefix = keyPrefix(env.VMRESTORE_QUEUE_PREFIX || 'vmrestore', url);
    const queue = new Queue('restore', { connection: redis, prefix });
    try {
      const n = await within(queue.getWorkersCount(), timeoutMs, 'Redis');
      add(
        n > 0
          ? { ...base, name: 'redis workers', status: 'ok', detail: `${n} worker connection${n === 1 ? '' : 's'} on queue ${prefix}:restore` }
          : { ...base, name: 'redis workers', status: 'warn', detail: `no worker is consuming queue ${prefix}:restore: restores stay queued`, hint: 'start a worker (node apps/worker/dist/main.js) with the same REDIS_URL and VMRESTORE_QUEUE_PREFIX' },
      );
    } catch (e) {
      add({ ...base, name: 'redis workers', status: 'warn', detail: `cannot list workers: ${message(e)}` });
    } finally {
      await queue.close().catch(() => undefined);
    }
  } finally {
    redis.disconnect();
  }
}

/** GET /readyz, then the key against an authenticated read. */
async function checkApi(o: DoctorOptions, add: (r: CheckResult) => void): Promise<void> {
  const base = { check: 'api' } as const;
  const api = new ApiClient(o.apiUrl, o.apiKey, o.timeoutMs);
  try {
    await api.request('GET', '/readyz');
    add({ ...base, name: 'api', status: 'ok', detail: `${safeUrl(o.apiUrl)} ready` });
  } catch (e) {
    if (e instanceof ApiError && e.status === 503) {
      add({ ...base, name: 'api', status: 'fail', detail: `${safeUrl(o.apiUrl)} is up but not ready: ${e.message}`, hint: 'the API cannot reach Postgres or Redis: see its log' });
    } else if (e instanceof UnreachableError) {
      add({ ...base, name: 'api', status: 'fail', detail: e.message, hint: 'is the API running? Set --api or VMRESTORE_API_URL' });
      return;
    } else {
      add({ ...base, name: 'api', status: 'fail', detail: `${safeUrl(o.apiUrl)}/readyz: ${(e as Error).message}`, hint: 'is this the vmrestore API?' });
      return;
    }
  }
  if (!o.apiKey) {
    add({ ...base, name: 'api key', status: 'warn', detail: 'no API key given: not checked', hint: 'set VMRESTORE_API_KEY (or --api-key) to check it' });
    return;
  }
  try {
    await api.request('GET', '/v1/restores?limit=1');
    add({ ...base, name: 'api key', status: 'ok', detail: 'accepted (restores:read)' });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) add({ ...base, name: 'api key', status: 'fail', detail: `refused: ${e.message}`, hint: 'the key is wrong, revoked or expired: make one with `vmrestore admin key create`' });
    else if (e instanceof ApiError && e.status === 403) add({ ...base, name: 'api key', status: 'warn', detail: 'valid, but without the restores:read scope', hint: 'watch and list need restores:read' });
    else add({ ...base, name: 'api key', status: 'fail', detail: message(e) });
  }
}

/** Every registered vCenter connection logs in, its certificate matching the pinned thumbprint. */
async function checkVcenters(db: Db | null, env: DoctorOptions['env'], o: DoctorOptions, add: (r: CheckResult) => void): Promise<void> {
  const base = { check: 'vcenters' } as const;
  if (!db) {
    add({ ...base, name: 'vcenters', status: 'fail', detail: 'not checked: the database is unreachable', hint: 'fix the postgres check first' });
    return;
  }
  let keyring: Keyring;
  try {
    keyring = loadKeyring(env);
  } catch (e) {
    add({ ...base, name: 'vcenters', status: 'fail', detail: `VMRESTORE_SECRET_KEYS: ${message(e)}`, hint: 'the worker needs the same keys as the API to decrypt vCenter passwords' });
    return;
  }
  const rows = await db.vCenterConnection.findMany({
    where: o.tenant ? { tenant: { name: o.tenant } } : {},
    include: { tenant: { select: { name: true } } },
    orderBy: [{ name: 'asc' }],
  });
  if (!rows.length) {
    add({ ...base, name: 'vcenters', status: 'ok', detail: `no vCenter connections registered${o.tenant ? ` for tenant ${o.tenant}` : ''}` });
    return;
  }
  // A few at a time (each may wait for its timeout), reported in order.
  const results: CheckResult[][] = rows.map(() => []);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < rows.length; i = next++) await checkOneVcenter(rows[i]!, keyring, o.timeoutMs, (r) => results[i]!.push(r));
  };
  await Promise.all([lane(), lane(), lane(), lane()]);
  results.flat().forEach(add);
}

async function checkOneVcenter(
  row: VCenterConnection & { tenant: { name: string } },
  keyring: Keyring,
  timeoutMs: number,
  add: (r: CheckResult) => void,
): Promise<void> {
  const base = { check: 'vcenters' } as const;
  {
    const name = `vcenter ${row.tenant.name}/${row.name}`;
    const where = safeUrl(row.url);
    if (!keyring.has(row.passwordKeyId)) {
      add({ ...base, name, status: 'fail', detail: `${where}: password encrypted with key "${row.passwordKeyId}", not in VMRESTORE_SECRET_KEYS`, hint: 'add that key back to VMRESTORE_SECRET_KEYS, or store the password again' });
      return;
    }
    const r = await testVcenterConnection(keyring, row, { timeoutMs }).catch((e: unknown) => ({ ok: false as const, latencyMs: 0, error: { code: (e as { code?: string }).code ?? 'ERROR', message: message(e) } }));
    if (r.ok) {
      const trust = row.thumbprint ? 'thumbprint matches' : row.caBundle ? 'certificate verified by the CA bundle' : 'certificate NOT verified (insecure)';
      add({
        ...base,
        name,
        status: row.insecure && !row.thumbprint && !row.caBundle ? 'warn' : 'ok',
        detail: `${where}: logged in (${r.latencyMs} ms${'apiVersion' in r && r.apiVersion ? `, API ${r.apiVersion}` : ''}), ${trust}`,
        ...(row.insecure && !row.thumbprint && !row.caBundle ? { hint: 'pin the certificate: set the connection thumbprint' } : {}),
      });
    } else {
      const code = r.error?.code ?? 'ERROR';
      const hint =
        code.endsWith('TLS_UNTRUSTED')
          ? 'the certificate is not the pinned one: if vCenter got a new certificate, update the connection thumbprint (PATCH /v1/vcenters/{id})'
          : code.endsWith('INVALID_LOGIN')
            ? 'wrong username or password: update the connection'
            : 'can this host reach vCenter (DNS, firewall, port 443)?';
      add({ ...base, name, status: 'fail', detail: `${where}: ${code}: ${r.error?.message ?? 'failed'}`, hint });
    }
  }
}

/** The VDDK library the addon will dlopen, and its version from its file name; the addon itself built. */
function checkVddk(env: DoctorOptions['env']): CheckResult {
  const base = { check: 'vddk', name: 'vddk' } as const;
  const addon = addonPath();
  const addonNote = addon ? '' : '; the native addon (native-vddk/build/Release/vddk.node) is not built';
  const dir = env.VMRESTORE_VDDK_LIB_DIR;
  if (!dir) {
    return {
      ...base,
      status: 'warn',
      detail: `VMRESTORE_VDDK_LIB_DIR is not set: the vddk target is unavailable, restores use the file target${addonNote}`,
      hint: 'install VMware VDDK and set VMRESTORE_VDDK_LIB_DIR to its lib64 directory (docs/native-vddk.md)',
    };
  }
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (e) {
    return { ...base, status: 'fail', detail: `VMRESTORE_VDDK_LIB_DIR ${dir}: ${message(e)}`, hint: 'point it at the lib64 directory of the VDDK installation' };
  }
  const resolved: Record<string, string> = {};
  for (const f of files) if (/^libvixDiskLib\.so\.\d+$/.test(f)) resolved[f] = safeRealpath(join(dir, f));
  const found = vddkVersion(files, resolved);
  if (!found) return { ...base, status: 'fail', detail: `no libvixDiskLib.so.8, .7 or .6 in ${dir}`, hint: 'point VMRESTORE_VDDK_LIB_DIR at the lib64 directory of VDDK 6.7, 7 or 8' };
  if (!addon) return { ...base, status: 'fail', detail: `${found.soname} (VDDK ${found.version}) in ${dir}${addonNote}`, hint: 'build it: npm run build:native -w native-vddk' };
  const cfg = env.VMRESTORE_VDDK_CONFIG;
  if (cfg && !existsSync(cfg)) return { ...base, status: 'fail', detail: `VMRESTORE_VDDK_CONFIG ${cfg} does not exist`, hint: 'fix the path or unset it' };
  return { ...base, status: 'ok', detail: `${found.soname} (VDDK ${found.version}) in ${dir}; addon ${addon}` };
}

function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

function addonPath(): string | null {
  try {
    const file = process.env.VMRESTORE_VDDK_ADDON ?? join(dirname(require.resolve('@vmrestore/native-vddk/package.json')), 'build', 'Release', 'vddk.node');
    return existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

/** Writes and removes a file: the real test of "writable" (read-only mounts, NFS root squash). */
async function writable(dir: string): Promise<string | null> {
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory()) return 'not a directory';
    const probe = join(dir, `.vmrestore-doctor-${process.pid}-${Date.now()}`);
    await fs.writeFile(probe, 'probe\n');
    await fs.rm(probe, { force: true });
    return null;
  } catch (e) {
    return message(e);
  }
}

async function checkDatastores(env: DoctorOptions['env']): Promise<CheckResult[]> {
  const problems: string[] = [];
  const paths = parseDatastorePaths(env.VMRESTORE_DATASTORE_PATHS ?? '', problems);
  const out: CheckResult[] = problems.map((p) => ({ check: 'datastores', name: 'datastores', status: 'fail', detail: p, hint: 'VMRESTORE_DATASTORE_PATHS is NAME=/dir;NAME2=/dir2' }));
  const names = Object.keys(paths);
  if (!names.length && !problems.length) {
    out.push({
      check: 'datastores',
      name: 'datastores',
      status: 'warn',
      detail: 'VMRESTORE_DATASTORE_PATHS is not set: the file target has no datastore mounts',
      hint: 'for the file target, mount each datastore (NFS or local) and set VMRESTORE_DATASTORE_PATHS=NAME=/mount;...',
    });
  }
  for (const name of names) {
    const dir = paths[name]!;
    const problem = await writable(dir);
    out.push(
      problem
        ? { check: 'datastores', name: `datastore ${name}`, status: 'fail', detail: `${dir}: ${problem}`, hint: 'mount the datastore there, writable by the worker user' }
        : { check: 'datastores', name: `datastore ${name}`, status: 'ok', detail: `${dir} mounted and writable` },
    );
  }
  return out;
}

async function checkBackupRoots(env: DoctorOptions['env']): Promise<CheckResult[]> {
  const roots = (env.VMRESTORE_BACKUP_ROOTS ?? '').split(':').map((r) => r.trim()).filter(Boolean);
  if (!roots.length) {
    return [{ check: 'backups', name: 'backups', status: 'warn', detail: 'VMRESTORE_BACKUP_ROOTS is not set: no restore points can be found', hint: 'set it to the backup repository directories (colon-separated)' }];
  }
  const out: CheckResult[] = [];
  for (const root of roots) {
    try {
      const st = await fs.stat(root);
      if (!st.isDirectory()) throw new Error('not a directory');
      await fs.access(root, constants.R_OK | constants.X_OK);
      const vms = (await fs.readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).length;
      out.push({ check: 'backups', name: `backup root ${root}`, status: 'ok', detail: `readable, ${vms} VM director${vms === 1 ? 'y' : 'ies'}` });
    } catch (e) {
      out.push({ check: 'backups', name: `backup root ${root}`, status: 'fail', detail: message(e), hint: 'mount the backup repository there, readable by the service user' });
    }
  }
  return out;
}

async function checkWorkDirs(env: DoctorOptions['env']): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const work = env.VMRESTORE_WORK_DIR;
  if (work) {
    await fs.mkdir(work, { recursive: true }).catch(() => undefined); // the worker makes it too
    const p = await writable(work);
    out.push(p ? { check: 'workdir', name: 'work dir', status: 'fail', detail: `${work}: ${p}`, hint: 'VMRESTORE_WORK_DIR must be writable by the worker' } : { check: 'workdir', name: 'work dir', status: 'ok', detail: `${work} writable` });
  }
  const exp = env.VMRESTORE_EXPORT_ROOT;
  if (exp) {
    const p = await writable(exp);
    out.push(p ? { check: 'workdir', name: 'export root', status: 'fail', detail: `${exp}: ${p}`, hint: 'VMRESTORE_EXPORT_ROOT must exist and be writable by the worker' } : { check: 'workdir', name: 'export root', status: 'ok', detail: `${exp} writable` });
  }
  return out;
}

export { CHECK_GROUPS };

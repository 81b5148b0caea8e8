// The processes of one bench/e2e section: the vcsim harness, the api and
// N workers from the built dist, against the project's Postgres/Redis (.run/env).
// Every child and temp directory is tracked and removed on exit, also on failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
export const core = require(join(ROOT, 'apps/core/dist'));

export const env = { ...process.env };
for (const line of readFileSync(join(ROOT, '.run', 'env'), 'utf8').split('\n')) {
  const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
  if (m && !env[m[1]]) env[m[1]] = m[2];
}

const children = new Set();
const dirs = new Set();
function cleanupAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));

/** A temp directory removed at exit (BENCH_DIR picks the file system, default the OS tmpdir). */
export function tempDir(prefix) {
  const d = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), prefix));
  dirs.add(d);
  return d;
}
export function removeDir(d) {
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Stops a child (SIGTERM, SIGKILL after graceMs) and waits for its exit. */
export function stop(child, graceMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts a node process; resolves with ready(output) once truthy. Output is drained, its tail kept for errors. */
function startNode(script, extraEnv, ready) {
  // BENCH_CPU_PROF=<dir>: each api and worker writes a V8 CPU profile there when it stops (open in Chrome DevTools).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = track(spawn(process.execPath, [...prof, script], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let tail = '';
  let isReady = false;
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      tail = (tail + d.toString()).slice(-8000);
      if (isReady) return;
      const v = ready(tail);
      if (v) {
        isReady = true;
        resolve({ child, value: v, tail: () => tail });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, sig) => {
      if (!isReady) reject(new Error(`${script} exited ${code ?? sig}:\n${tail.slice(-3000)}`));
      else if (!child.stopping) process.stderr.write(`warning: ${script} exited ${code ?? sig} during the bench:\n${tail.slice(-2000)}\n`);
    });
  });
}

let tenant;
/** One tenant and API key for the whole run. */
async function getTenant() {
  if (!tenant) {
    const db = core.createDb(env.DATABASE_URL);
    try {
      const t = await core.createTenant(db, `bench-e2e-${Date.now()}`);
      const { key } = await core.createApiKey(db, t.id, { name: 'bench-e2e', scopes: [...core.SCOPES] });
      tenant = { id: t.id, key };
    } finally {
      await db.$disconnect();
    }
  }
  return tenant;
}

let stackNo = 0;
/**
 * A harness (`vms` VMs with `diskMb` disks, in `dir`/ds), the api, `workers`
 * workers, the vCenter registered. `backups` is the backup root.
 */
export async function startStack({ dir, backups, diskMb, vms, workers = 1, appEnv: extra = {} }) {
  const n = ++stackNo;
  const harness = track(spawn(join(ROOT, 'test/vcsim/bin/vcsim-harness'), ['-dir', join(dir, 'ds'), '-disk-mb', String(diskMb), '-vms', String(vms), '-clusters', '0'], { stdio: ['ignore', 'pipe', 'ignore'] }));
  const sim = await new Promise((resolve, reject) => {
    createInterface({ input: harness.stdout }).once('line', (l) => resolve(JSON.parse(l)));
    harness.once('exit', (code) => reject(new Error(`harness exited ${code}`)));
  });
  harness.stdout.resume();
  const appEnv = {
    VMRESTORE_PORT: '0',
    VMRESTORE_QUEUE_PREFIX: `benche2e${Date.now()}x${n}`,
    VMRESTORE_BACKUP_ROOTS: backups,
    VMRESTORE_DATASTORE_PATHS: Object.entries(sim.datastores).map(([k, v]) => `${k}=${v}`).join(';'),
    VMRESTORE_WORK_DIR: join(dir, 'work'),
    VMRESTORE_REQUEUE_INTERVAL_MS: '0',
    VMRESTORE_SWEEP_INTERVAL_MS: '0',
    VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS: '0',
    VMRESTORE_WORKER_METRICS_PORT: '0',
    VMRESTORE_RATE_LIMIT_PER_MIN: '0',
    LOG_LEVEL: 'info',
    ...extra,
  };
  const api = await startNode(join(ROOT, 'apps/api/dist/server.js'), appEnv, (o) => /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(o)?.[1]);
  const stack = { sim, harness, apiUrl: api.value, api: api.child, workers: [], appEnv };
  await setWorkers(stack, workers);
  const { key } = await getTenant();
  stack.headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  stack.vcenter = `sim${n}`;
  stack.call = async (method, path, body) => {
    const r = await fetch(stack.apiUrl + path, { method, headers: stack.headers, ...(body ? { body: JSON.stringify(body) } : {}) });
    const json = await r.json();
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`);
    return json;
  };
  await stack.call('POST', '/v1/vcenters', { name: stack.vcenter, url: sim.url, username: sim.username, password: sim.password, thumbprint: sim.thumbprintSha256 });
  stack.client = await core.vsphere.VSphereClient.connect({ url: sim.url, username: sim.username, password: sim.password, thumbprint: sim.thumbprintSha256, keepAliveMs: 0 });
  return stack;
}

/** Runs exactly `count` workers (stopping or starting them). */
export async function setWorkers(stack, count) {
  while (stack.workers.length > count) {
    const w = stack.workers.pop();
    w.stopping = true;
    await stop(w);
  }
  const starting = [];
  for (let i = stack.workers.length; i < count; i++) {
    starting.push(startNode(join(ROOT, 'apps/worker/dist/main.js'), stack.appEnv, (o) => (o.includes('worker ready') ? true : null)).then((w) => w.child));
  }
  stack.workers.push(...(await Promise.all(starting)));
}

export async function stopStack(stack) {
  if (!stack) return;
  await stack.client?.close().catch(() => {});
  for (const c of [...stack.workers, stack.api]) c.stopping = true;
  await Promise.all([...stack.workers, stack.api].map((c) => stop(c)));
  await stop(stack.harness);
}

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'cleanup_pending'];
export const isTerminal = (s) => TERMINAL.includes(s);

/**
 * Submits one restore and waits for its end. Seconds from just before the
 * POST to the job's finishedAt (the server's clock: same host), and the job.
 */
export async function restoreTimed(stack, body) {
  const t0 = Date.now();
  let job = await stack.call('POST', '/v1/restores', body);
  while (!isTerminal(job.state)) {
    await new Promise((r) => setTimeout(r, 100));
    job = await stack.call('GET', `/v1/restores/${job.id}`);
  }
  if (job.state !== 'succeeded') throw new Error(`restore ${JSON.stringify(body.source)} ended ${job.state}: ${JSON.stringify(job.error)}`);
  return { seconds: (Date.parse(job.finishedAt) - t0) / 1000, job };
}

export const stepSeconds = (job, name) => {
  const s = job.steps.find((x) => x.name === name);
  return s?.startedAt && s?.finishedAt ? (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000 : NaN;
};

/** Every step of a job with its seconds, and the time before the first step and after the last (queue, pickup, end). */
export function stepsLine(job) {
  const ran = job.steps.filter((x) => x.startedAt && x.finishedAt);
  const parts = ran.map((x) => `${x.name} ${((Date.parse(x.finishedAt) - Date.parse(x.startedAt)) / 1000).toFixed(2)}`);
  if (ran.length && job.createdAt) parts.unshift(`before_first_step ${((Date.parse(ran[0].startedAt) - Date.parse(job.createdAt)) / 1000).toFixed(2)}`);
  if (ran.length && job.finishedAt) parts.push(`after_last_step ${((Date.parse(job.finishedAt) - Date.parse(ran.at(-1).finishedAt)) / 1000).toFixed(2)}`);
  return parts.join(', ');
}

/** The flat extent file of a VM disk (datastore path from the VM info). */
export function flatOf(sim, dsPath) {
  const m = /^\[([^\]]+)\]\s*(.+)$/.exec(dsPath);
  const descriptor = join(sim.datastores[m[1]], m[2]);
  return join(dirname(descriptor), /FLAT "([^"]+)"/.exec(readFileSync(descriptor, 'utf8'))[1]);
}

export async function vmByName(stack, name) {
  const all = await core.vsphere.findAll(stack.client, 'VirtualMachine', ['name']);
  const hit = all.find((o) => core.vsphere.propValue(o, 'name') === name);
  if (!hit) throw new Error(`no VM named ${name}`);
  return { ref: hit.obj, info: await core.vsphere.getVmInfo(stack.client, hit.obj) };
}

/** CPU seconds (user + system, and of its ended children) of a process, 0 if it is gone. */
function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100; // utime, stime, cutime, cstime in USER_HZ (100) ticks
  } catch {
    return 0;
  }
}

/** Processes named `comm` (postgres, redis-server). */
function pidsNamed(comm) {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/comm`, 'utf8').trim() === comm;
      } catch {
        return false;
      }
    });
}

/** CPU seconds so far of each part of the stack: the simulator, the API, the workers, Postgres, Redis, this bench. */
export function cpuByPart(stack) {
  const sum = (pids) => pids.reduce((s, p) => s + cpuOf(p), 0);
  return {
    vcsim: cpuOf(stack.harness.pid),
    api: cpuOf(stack.api.pid),
    workers: sum(stack.workers.map((w) => w.pid)),
    postgres: sum(pidsNamed('postgres')),
    redis: sum(pidsNamed('redis-server')),
    bench: cpuOf(process.pid),
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, vsphere, type Db } from '@vmrestore/core';
import { envFor, ROOT, testConfig, waitFor } from '../support/env';
import { startApi, startTestWorker, stop, type Proc } from '../support/processes';
import { createTenantWithKey, type TestTenant } from '../support/auth';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// The real `vmrestore` binary (apps/cli/dist/main.js, built by
// `npx tsc -b tsconfig.build.json`) against the real API and worker
// processes over Postgres and Redis. Workers run the test-only plans
// (test/support/test-plans.cjs), so a job's label makes it slow, blocked or
// failing; the last part restores a real VM in the vcsim harness.

const CLI = join(ROOT, 'apps/cli/dist/main.js');
const config = testConfig();
const dir = mkdtempSync(join(tmpdir(), 'vmrestore-cli-'));
const env = envFor(config, { TEST_PLAN_DIR: dir });
let api: Proc & { url: string };
let worker: Proc;
let db: Db;
let tenant: TestTenant;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Starts the CLI; the API URL and key come from the environment, as an operator would set them. */
function cli(args: string[], extraEnv: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, VMRESTORE_API_URL: api.url, VMRESTORE_API_KEY: tenant.key, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (err += String(d)));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout: out, stderr: err })));
  return { child, stdout: () => out, stderr: () => err, done };
}

const jsonLines = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
const logOf = (id: string) => (existsSync(join(dir, `${id}.log`)) ? readFileSync(join(dir, `${id}.log`), 'utf8') : '');
const blocked = (id: string, step: string) => waitFor(`step ${step} of ${id} to block`, async () => logOf(id).includes(`blocked ${step}`));
const release = (id: string, step: string) => writeFileSync(join(dir, `${id}.${step}.release`), '');

let vmSeq = Math.floor(Math.random() * 1e6) * 1000;
const submitArgs = (label: string) => ['submit', '--kind', 'in_place', '--vcenter', 'vc1', '--source-vm', 'web01', '--point', 'p1', '--target-vm', `vm-${++vmSeq}`, '--label', label];

/** Submits without watching; returns the job id. */
async function submitted(label: string): Promise<string> {
  const r = await cli([...submitArgs(label), '--json']).done;
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { id: string }).id;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The API server on a given port (startApi picks a free one): a restart must come back where clients look. */
async function startApiOn(port: number): Promise<Proc & { url: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'apps/api/dist/server.js')], { cwd: ROOT, env: { ...env, VMRESTORE_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor('the api to listen again', async () => out.includes('Server listening at'), 20_000);
  return { child, output: () => out, exited, url: `http://127.0.0.1:${port}` };
}

beforeAll(async () => {
  db = createDb(config.databaseUrl, { max: 2 });
  tenant = await createTenantWithKey(db, ['restores:read', 'restores:write']);
  api = await startApi(env);
  worker = await startTestWorker(env);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await db.$disconnect();
});

describe('vmrestore against the running api and worker', () => {
  it('submit --watch to a pipe: one plain line per change, the job at the end, exit 0', async () => {
    // The watcher shows the changes after it attaches: `prepare` leaves it time to (a warm worker starts the job at once).
    const r = await cli([...submitArgs('plan:steps=prepare,write,finish;slow=prepare:1500,write:400,finish:400'), '--watch']).done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^submitted: [0-9a-f-]{36}$/);
    // No terminal control codes when stdout is not a terminal.
    expect(r.stdout).not.toMatch(/[\r\x1b]/);
    const steps = lines.filter((l) => /^running\s+\[/.test(l)).map((l) => /%\s(\S+)/.exec(l)?.[1]);
    expect(steps).toEqual(expect.arrayContaining(['write', 'finish']));
    expect(steps.indexOf('write')).toBeLessThan(steps.indexOf('finish'));
    expect(r.stdout).toMatch(/^state:\s+succeeded$/m);
    expect(r.stdout).toMatch(/^\s+finish\s+succeeded/m);
  });

  it('watch --json prints one JSON object per line and the final job', async () => {
    const id = await submitted('plan:steps=a,b,c;slow=a:300,b:300,c:300');
    const r = await cli(['watch', id, '--json']).done;
    expect(r.code).toBe(0);
    const objs = jsonLines(r.stdout);
    expect(objs.slice(0, -1).every((o) => o.type === 'update' && o.id === id)).toBe(true);
    expect(objs.length).toBeGreaterThan(1);
    const end = objs.at(-1)!;
    expect(end.type).toBe('end');
    expect(end.job.id).toBe(id);
    expect(end.job.state).toBe('succeeded');
    expect(end.job.progress).toEqual({ bytesDone: 1, bytesTotal: 1, percent: 100 });
  });

  it('submit --file with a new_vm request; --file refuses body flags beside it', async () => {
    const file = join(dir, 'request.json');
    writeFileSync(file, JSON.stringify({ kind: 'new_vm', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { name: `restored-${++vmSeq}`, datastore: 'LocalDS_0' }, label: 'plan:steps=create,write' }));
    const r = await cli(['submit', '--file', file, '--watch', '--json']).done;
    expect(r.code).toBe(0);
    const objs = jsonLines(r.stdout);
    expect(objs[0]!.type).toBe('submitted');
    expect(objs[0]!.job.kind).toBe('new_vm');
    expect(objs.at(-1)!.job.state).toBe('succeeded');
    expect(objs.at(-1)!.job.request.target.name).toMatch(/^restored-/);

    const clash = await cli(['submit', '--file', file, '--kind', 'in_place']).done;
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain('--file holds the whole request');
  });

  it('a failed job: exit 1 with its error', async () => {
    const r = await cli([...submitArgs('plan:steps=a,b;permanent=b'), '--watch']).done;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^state:\s+failed$/m);
    expect(r.stdout).toContain('TEST_PERMANENT');
  });

  it('a cancelled job: the watcher and cancel --watch both exit 1', async () => {
    const id = await submitted('plan:steps=a,b,c;block=b;cleanup=release_lock');
    await blocked(id, 'b');
    const watcher = cli(['watch', id]);
    await waitFor('the watcher to show step b', async () => /running .* b/.test(watcher.stdout()));
    const cancel = await cli(['cancel', id, '--watch', '--json']).done;
    expect(cancel.code).toBe(1);
    const end = jsonLines(cancel.stdout).at(-1)!;
    expect(end.type).toBe('end');
    expect(end.job.state).toBe('cancelled');
    const w = await watcher.done;
    expect(w.code).toBe(1);
    expect(w.stdout).toMatch(/\(cancelling\)/);
    expect(w.stdout).toMatch(/^state:\s+cancelled$/m);
  });

  it('list filters by state, and --json is the API page', async () => {
    const r = await cli(['list', '--state', 'cancelled', '--json']).done;
    expect(r.code).toBe(0);
    const page = JSON.parse(r.stdout) as { items: Array<{ state: string }> };
    expect(page.items.length).toBeGreaterThanOrEqual(1);
    expect(page.items.every((j) => j.state === 'cancelled')).toBe(true);
    const human = await cli(['list', '--state', 'succeeded']).done;
    expect(human.stdout.split('\n')[0]).toMatch(/^ID\s+KIND\s+STATE/);
    const bad = await cli(['list', '--state', 'done']).done;
    expect(bad.code).toBe(2);
  });

  it('exit codes: 3 when the API refuses, 4 when it is unreachable, 2 on usage errors', async () => {
    const refused = await cli(['get', '00000000-0000-4000-8000-000000000000']).done;
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/NOT_FOUND/);
    const badKey = await cli(['list'], { VMRESTORE_API_KEY: 'vmr_nope_nope' }).done;
    expect(badKey.code).toBe(3);
    expect(badKey.stderr).not.toContain('vmr_nope_nope');

    const port = await closedPort();
    const down = await cli(['list', '--api', `http://127.0.0.1:${port}`]).done;
    expect(down.code).toBe(4);
    expect(down.stderr).toMatch(/cannot reach the vmrestore API .*ECONNREFUSED/);
    const watchDown = await cli(['watch', '00000000-0000-4000-8000-000000000000', '--api', `http://127.0.0.1:${port}`]).done;
    expect(watchDown.code).toBe(4);

    expect((await cli(['frobnicate']).done).code).toBe(2);
    expect((await cli(['submit', '--kind', 'in_place']).done).code).toBe(2);
    expect((await cli(['watch', 'x', '--reconnect-timeout', 'soon']).done).code).toBe(2);
  });

  it('watch rides out an API restart mid-job and ends with the job’s exit code', async () => {
    const id = await submitted('plan:steps=a,b,c;block=b;slow=c:200');
    await blocked(id, 'b');
    const watcher = cli(['watch', id, '--json', '--reconnect-timeout', '60s']);
    await waitFor('the watcher to see step b', async () => watcher.stdout().includes('"step":"b"'));

    const port = Number(new URL(api.url).port);
    await stop(api);
    await waitFor('the watcher to notice', async () => watcher.stdout().includes('"type":"reconnecting"'));
    api = await startApiOn(port);
    await waitFor('the watcher to reconnect', async () => watcher.stdout().includes('"type":"reconnected"'), 30_000);
    release(id, 'b');

    const w = await watcher.done;
    expect(w.code).toBe(0);
    const objs = jsonLines(w.stdout);
    const types = objs.map((o) => o.type);
    expect(types.indexOf('reconnecting')).toBeLessThan(types.indexOf('reconnected'));
    // Step c ran after the reconnect, and the stream delivered it.
    const after = objs.slice(types.indexOf('reconnected'));
    expect(after.some((o) => o.type === 'update' && o.step === 'c')).toBe(true);
    expect(objs.at(-1)!.job.state).toBe('succeeded');
  });

  it('watch gives up with exit 4 after --reconnect-timeout', async () => {
    const id = await submitted('plan:steps=a,b;block=a');
    await blocked(id, 'a');
    const watcher = cli(['watch', id, '--reconnect-timeout', '2s']);
    await waitFor('the watcher to start', async () => watcher.stdout().includes('running'));
    const port = Number(new URL(api.url).port);
    await stop(api);
    const w = await watcher.done;
    expect(w.code).toBe(4);
    expect(w.stdout).toContain('reconnecting:');
    expect(w.stderr).toMatch(/gave up after 2 s/);
    api = await startApiOn(port);
    release(id, 'a');
  });
});

describe('a real restore into the vcsim harness, watched by the CLI', () => {
  let renv: RestoreEnv;
  let rapi: Proc & { url: string };
  let rworker: Proc | undefined;

  beforeAll(async () => {
    renv = await startRestoreEnv();
    rapi = await startApi(renv.env);
    rworker = await startWorkerProcess(renv.env);
  });
  afterAll(async () => {
    await stop(rworker, 'SIGKILL');
    await stop(rapi);
    await renv?.close();
  });

  it('submit --watch --json: progress with bytes, then succeeded, exit 0', async () => {
    const c = await renv.client();
    let moref: string;
    try {
      moref = (await vsphere.findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' })).value;
    } finally {
      await c.close();
    }
    const chain = await renv.backupFor(moref, 'cli-vm', { incrementals: 1, seed: 5 });
    const point = chain.points.at(-1)!.pointId;
    const key = renv.headers.authorization.slice('Bearer '.length);
    const child = spawn(process.execPath, [CLI, 'submit', '--kind', 'in_place', '--vcenter', renv.vcenterName, '--source-vm', 'cli-vm', '--point', point, '--target-vm', moref, '--watch', '--json'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, VMRESTORE_API_URL: rapi.url, VMRESTORE_API_KEY: key },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(err).toBe('');
    expect(code).toBe(0);
    const objs = jsonLines(out);
    const end = objs.at(-1)!;
    expect(end.job.state).toBe('succeeded');
    expect(objs.some((o) => o.type === 'update' && o.progress.bytesDone > 0)).toBe(true);
    expect(end.job.progress.bytesTotal).toBeGreaterThan(0);
    expect(end.job.progress.bytesDone).toBe(end.job.progress.bytesTotal);
    expect(end.job.steps.map((s: { name: string }) => s.name)).toContain('power_on');
    // The key never shows in the output.
    expect(out).not.toContain(key);
  });
});

import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envFor, testConfig, waitFor } from '../support/env';
import { checkContract } from '../support/contract';
import { startApi, startTestWorker, stop, type Proc } from '../support/processes';
import { createTenantWithKey, type TestTenant } from '../support/auth';
import { createDb, type Db } from '@vmrestore/core';

// Through the real processes: the API server and worker processes running
// the test-only plans, over real Postgres and Redis. Workers are killed and
// stopped mid-job; the job must finish without redoing a recorded step.

const config = testConfig();
const dir = mkdtempSync(join(tmpdir(), 'vmrestore-e2e-'));
const env = envFor(config, { TEST_PLAN_DIR: dir });
let api: Proc & { url: string };
const workers: Proc[] = [];
let db: Db;
let tenant: TestTenant;

async function http(method: 'GET' | 'POST', path: string, template: string, body?: unknown) {
  const res = await fetch(api.url + path, { method, headers: { ...tenant.headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  const headers = Object.fromEntries(res.headers.entries());
  return { status: res.status, headers, body: checkContract(method, template, { statusCode: res.status, headers, body: text }) as Record<string, any> };
}
let vmSeq = Math.floor(Math.random() * 1e6) * 1000;
const submit = (label: string) =>
  http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { vm: `vm-${++vmSeq}` }, label });
const getJob = (id: string) => http('GET', `/v1/restores/${id}`, '/v1/restores/{id}');
const logOf = (id: string) => (existsSync(join(dir, `${id}.log`)) ? readFileSync(join(dir, `${id}.log`), 'utf8') : '');
const runLines = (id: string) => logOf(id).trim().split('\n').filter((l) => l.startsWith('run '));
const blocked = (id: string, step: string) => waitFor(`step ${step} to block`, async () => logOf(id).includes(`blocked ${step}`));
const ended = (id: string) =>
  waitFor(`job ${id} to end`, async () => {
    const r = await getJob(id);
    return ['succeeded', 'failed', 'cancelled'].includes(r.body.state) ? r.body : null;
  }, 30_000, 100);

beforeAll(async () => {
  db = createDb(config.databaseUrl, { max: 2 });
  tenant = await createTenantWithKey(db, ['restores:read', 'restores:write']);
  api = await startApi(env);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => stop(w, 'SIGKILL')));
  await stop(api);
  await db.$disconnect();
});

it('submit → run → GET shows each step and the final state', async () => {
  workers.push(await startTestWorker(env));
  const created = await submit('plan:steps=preflight,write,power_on;cleanup=release_lock');
  expect(created.status).toBe(202);
  const job = await ended(created.body.id);
  expect(job.state).toBe('succeeded');
  expect(job.steps.map((s: any) => `${s.phase}:${s.name}:${s.state}`)).toEqual([
    'main:preflight:succeeded',
    'main:write:succeeded',
    'main:power_on:succeeded',
    'cleanup:release_lock:succeeded',
  ]);
  expect(job.progress).toEqual({ bytesDone: 1, bytesTotal: 1, percent: 100 });
  const events = await http('GET', `/v1/restores/${job.id}/events`, '/v1/restores/{id}/events');
  expect(events.body.items[0].type).toBe('job.queued');
  expect(events.body.items.at(-1).type).toBe('job.succeeded');
});

it('a SIGKILLed worker’s job is finished by another worker without rerunning a recorded step', async () => {
  for (const w of workers.splice(0)) await stop(w);
  const first = await startTestWorker(env);
  const created = await submit('plan:steps=a,b,c;block=b');
  const id = created.body.id;
  await blocked(id, 'b');
  await stop(first, 'SIGKILL');
  const mid = await getJob(id);
  expect(mid.body.state).toBe('running'); // the dead worker could not say otherwise
  expect(mid.body.steps.map((s: any) => s.state)).toEqual(['succeeded', 'running', 'pending']);

  writeFileSync(join(dir, `${id}.b.release`), '');
  const second = await startTestWorker(env);
  workers.push(second);
  const job = await ended(id);
  expect(job.state).toBe('succeeded');
  const lines = runLines(id);
  expect(lines.filter((l) => l.startsWith('run main a '))).toHaveLength(1);
  expect(lines.map((l) => l.split(' ')[2])).toEqual(['a', 'b', 'b', 'c']);
  expect(lines[0]).toContain(` ${first.child.pid}`);
  expect(lines.at(-1)).toContain(` ${second.child.pid}`);
}, 60_000);

it('SIGTERM mid-job exits cleanly and leaves the job resumable', async () => {
  for (const w of workers.splice(0)) await stop(w);
  const first = await startTestWorker(env);
  const created = await submit('plan:steps=a,b,c;block=b');
  const id = created.body.id;
  await blocked(id, 'b');
  expect(await stop(first, 'SIGTERM')).toBe(0);
  const mid = await getJob(id);
  expect(mid.body.state).toBe('queued');
  expect(mid.body.steps.map((s: any) => s.state)).toEqual(['succeeded', 'pending', 'pending']);

  writeFileSync(join(dir, `${id}.b.release`), '');
  workers.push(await startTestWorker(env));
  const job = await ended(id);
  expect(job.state).toBe('succeeded');
  expect(runLines(id).map((l) => l.split(' ')[2])).toEqual(['a', 'b', 'b', 'c']);
}, 60_000);

it('cancel through the API stops a running job and runs its cleanup', async () => {
  if (!workers.length) workers.push(await startTestWorker(env));
  const created = await submit('plan:steps=a,b,c;block=b;cleanup=remove_snapshot');
  const id = created.body.id;
  await blocked(id, 'b');
  const cancel = await http('POST', `/v1/restores/${id}/cancel`, '/v1/restores/{id}/cancel');
  expect(cancel.status).toBe(202);
  expect(cancel.body.cancelRequested).toBe(true);
  const job = await ended(id);
  expect(job.state).toBe('cancelled');
  expect(job.error.code).toBe('CANCELLED');
  expect(runLines(id).map((l) => l.split(' ')[2])).toEqual(['a', 'b', 'remove_snapshot']);
}, 60_000);

describe('the vmrestore CLI against the running API', () => {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(__dirname, '../../apps/cli/dist/main.js'), '--api', api.url, '--api-key', tenant.key, ...args], { encoding: 'utf8', timeout: 60_000 });

  it('submits with --watch, prints progress and exits 0 when the job succeeds', async () => {
    if (!workers.length) workers.push(await startTestWorker(env));
    const r = cli('submit', '--kind', 'in_place', '--vcenter', 'vc1', '--source-vm', 'web01', '--point', 'p1', '--target-vm', `vm-${++vmSeq}`, '--label', 'plan:steps=a,b;slow=a:300', '--watch', '--interval', '100');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^submitted: [0-9a-f-]{36}$/m);
    expect(r.stdout).toMatch(/succeeded .*100\.0%/);
    expect(r.stdout).toMatch(/steps:\n\s+a\s+succeeded/);
  }, 60_000);

  it('exits 1 when the watched job fails, 3 when the API refuses, 4 when it is unreachable, 2 on usage errors', async () => {
    if (!workers.length) workers.push(await startTestWorker(env));
    const failed = cli('submit', '--kind', 'in_place', '--vcenter', 'vc1', '--source-vm', 'w', '--point', 'p', '--target-vm', `vm-${++vmSeq}`, '--label', 'plan:steps=a;permanent=a', '--watch', '--interval', '100');
    expect(failed.status).toBe(1);
    expect(failed.stdout).toMatch(/error:\s+TEST_PERMANENT/);
    const refused = cli('submit', '--kind', 'in_place', '--vcenter', 'vc1', '--source-vm', 'w', '--point', 'p');
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/VALIDATION_FAILED.*target\.vm/);
    const unreachable = spawnSync(process.execPath, [join(__dirname, '../../apps/cli/dist/main.js'), '--api', 'http://127.0.0.1:1', 'list'], { encoding: 'utf8' });
    expect(unreachable.status).toBe(4);
    expect(cli('frobnicate').status).toBe(2);
  }, 60_000);

  it('takes the key from VMRESTORE_API_KEY, and exits 3 with UNAUTHENTICATED without one', async () => {
    const main = join(__dirname, '../../apps/cli/dist/main.js');
    const bare = { ...process.env, VMRESTORE_API_KEY: '' };
    const viaEnv = spawnSync(process.execPath, [main, '--api', api.url, 'list', '--limit', '1'], { encoding: 'utf8', env: { ...bare, VMRESTORE_API_KEY: tenant.key } });
    expect(viaEnv.status).toBe(0);
    const none = spawnSync(process.execPath, [main, '--api', api.url, 'list'], { encoding: 'utf8', env: bare });
    expect(none.status).toBe(3);
    expect(none.stderr).toMatch(/UNAUTHENTICATED/);
    expect(none.stderr + none.stdout).not.toContain(tenant.key);
  }, 60_000);

  it('lists, gets and cancels, with --json for scripts', async () => {
    const created = await submit('plan:steps=a');
    const list = cli('list', '--vm', 'web01', '--limit', '200', '--json');
    expect(list.status).toBe(0);
    expect(JSON.parse(list.stdout).items.map((j: { id: string }) => j.id)).toContain(created.body.id);
    const get = cli('get', created.body.id);
    expect(get.stdout).toContain(`id:       ${created.body.id}`);
    const done = await ended(created.body.id).catch(() => null);
    if (!done) expect(cli('cancel', created.body.id).status).toBe(0);
  }, 60_000);
});

it('the API finishes in-flight requests and exits 0 on SIGTERM', async () => {
  const second = await startApi(env);
  const inflight = fetch(`${second.url}/v1/restores?limit=1`, { headers: { ...tenant.headers, 'x-request-id': 'sigterm-inflight' } });
  // SIGTERM once the request has arrived: one arriving after close began gets Fastify's 503.
  await waitFor('the request to arrive', async () => second.output().includes('"requestId":"sigterm-inflight"'), 10_000, 5);
  second.child.kill('SIGTERM');
  const res = await inflight.catch(() => null);
  if (res) expect([res.status, res.status === 200 ? '' : await res.text()]).toEqual([200, '']);
  const code = await second.exited;
  if (code !== 0) throw new Error(`api exited ${code}:\n${second.output().slice(-3000)}`);
  expect(second.output()).toMatch(/"msg":"shutting down"/);
});

import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ensureDefaultTenant, vsphere } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { createKey, createTenantWithKey } from '../support/auth';
import { checkContract } from '../support/contract';
import { waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// Issue #10, metrics part: a real restore through the api and the production
// worker into vcsim, then both processes' /metrics scraped (with the scrape
// token) and checked for what the restore must have moved; an injected
// vCenter fault shows in the fault counter; Bull Board admits only an admin
// key of the operator tenant.

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
let workerMetricsUrl: string;
const token = `scrape-${randomBytes(12).toString('hex')}`;
const vms: Record<string, string> = {};
const created: string[] = []; // keys made in the shared default tenant, removed afterwards

const { http, ended } = apiCalls(() => api.url, () => renv.headers);
const restore = (vm: string, source: { vm: string; point: string }, options: Record<string, unknown>) =>
  http('POST', '/v1/restores', '/v1/restores', { kind: 'in_place', vcenter: renv.vcenterName, source, target: { vm }, options });

/** A free TCP port on 127.0.0.1 for the worker's metrics listener. */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

type Samples = Map<string, number>;

/** Prometheus text format → "name{a="x",b="y"}" (labels sorted) → value. */
function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}

/** The value of one series, labels given in any order (0 when absent: counters start there). */
function sample(s: Samples, name: string, labels: Record<string, string> = {}): number {
  const key = `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`;
  return s.get(key) ?? 0;
}

async function scrape(url: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }): Promise<{ status: number; type: string; text: string; samples: Samples }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, samples: res.status === 200 ? parseMetrics(text) : new Map() };
}

beforeAll(async () => {
  renv = await startRestoreEnv([], { VMRESTORE_WEBHOOK_ALLOW_PRIVATE: 'true', VMRESTORE_METRICS_TOKEN: token });
  const c = await renv.client();
  try {
    for (const name of ['DC0_H0_VM0', 'DC0_H0_VM1']) vms[name] = (await vsphere.findVm(c, { inventoryPath: `DC0/vm/${name}` })).value;
  } finally {
    await c.close();
  }
  api = await startApi(renv.env);
  worker = await startWorkerProcess({ ...renv.env, VMRESTORE_WORKER_METRICS_PORT: String(await freePort()) });
  const w = worker;
  workerMetricsUrl = await waitFor('the worker to log its metrics URL', async () => /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"[^\n]*metrics listening/.exec(w.output())?.[1]);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  if (renv) {
    await renv.db.apiKey.deleteMany({ where: { id: { in: created } } });
    await renv.close();
  }
});

describe('/metrics after a restore', () => {
  let jobId: string;
  let writeResult: { bytes: number; transport: string };
  let before: Samples;

  beforeAll(async () => {
    before = (await scrape(workerMetricsUrl)).samples;
    // A webhook receiver, so a delivery outcome is counted too.
    const received: string[] = [];
    const receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(JSON.parse(body).type);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const hook = await http('POST', '/v1/webhooks', '/v1/webhooks', { url: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`, events: ['job.succeeded'] });
      expect(hook.status).toBe(201);
      await renv.backupFor(vms.DC0_H0_VM0!, 'metrics-vm0', { incrementals: 1, seed: 21 });
      const r = await restore(vms.DC0_H0_VM0!, { vm: 'metrics-vm0', point: 'p1' }, { transports: ['file'] });
      expect(r.status).toBe(202);
      const job = await ended(r.body.id);
      expect([job.state, job.error]).toEqual(['succeeded', null]);
      jobId = job.id;
      writeResult = job.steps.find((s: any) => s.name === 'write_disks').result;
      await waitFor('job.succeeded delivered', async () => received.includes('job.succeeded'), 30_000, 100);
    } finally {
      receiver.close();
    }
  });

  it('the worker counts the finished job, its step durations, bytes per transport, queue wait, vCenter calls and the webhook delivery', async () => {
    // The delivery is counted after the receiver answered: wait for the counter, not a time.
    const after = await waitFor('the delivery to be counted', async () => {
      const s = (await scrape(workerMetricsUrl)).samples;
      return sample(s, 'vmrestore_webhook_deliveries_total', { outcome: 'delivered' }) > sample(before, 'vmrestore_webhook_deliveries_total', { outcome: 'delivered' }) ? s : null;
    });
    const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('vmrestore_jobs_finished_total', { kind: 'in_place', state: 'succeeded' })).toBe(1);
    for (const step of ['preflight', 'power_off', 'write_disks', 'power_on']) {
      expect([step, delta('vmrestore_step_duration_seconds_count', { kind: 'in_place', step, phase: 'main', outcome: 'succeeded' })]).toEqual([step, 1]);
    }
    // The whole histogram: every step sample falls in the +Inf bucket, and the sum moved.
    expect(delta('vmrestore_step_duration_seconds_bucket', { kind: 'in_place', step: 'write_disks', phase: 'main', outcome: 'succeeded', le: '+Inf' })).toBe(1);
    expect(delta('vmrestore_step_duration_seconds_sum', { kind: 'in_place', step: 'write_disks', phase: 'main', outcome: 'succeeded' })).toBeGreaterThan(0);

    expect(writeResult.transport).toBe('file');
    expect(writeResult.bytes).toBeGreaterThan(0);
    expect(delta('vmrestore_bytes_written_total', { kind: 'in_place', transport: 'file' })).toBe(writeResult.bytes);
    expect(delta('vmrestore_write_throughput_bytes_per_second_count', { transport: 'file' })).toBe(1);

    expect(delta('vmrestore_queue_wait_seconds_count', { queue: 'restore' })).toBe(1);
    expect(delta('vmrestore_queue_wait_seconds_count', { queue: 'webhooks' })).toBeGreaterThanOrEqual(1);
    for (const method of ['PowerOffVM_Task', 'PowerOnVM_Task', 'RetrievePropertiesEx']) {
      expect([method, delta('vmrestore_vsphere_call_duration_seconds_count', { method }) >= 1]).toEqual([method, true]);
    }
    expect(sample(after, 'vmrestore_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('the api exposes jobs by state from Postgres, queue depth and HTTP timings by route template', async () => {
    const s = await scrape(`${api.url}/metrics`);
    expect(s.status).toBe(200);
    expect(s.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(s.samples, 'vmrestore_jobs', { kind: 'in_place', state: 'succeeded' })).toBeGreaterThanOrEqual(1);
    expect(s.samples.has('vmrestore_jobs{kind="new_vm",state="cleanup_pending"}')).toBe(true);
    for (const queue of ['restore', 'webhooks']) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) expect(s.samples.has(`vmrestore_queue_jobs{queue="${queue}",state="${state}"}`)).toBe(true);
    }
    expect(sample(s.samples, 'vmrestore_http_request_duration_seconds_count', { method: 'POST', route: '/v1/restores', status_code: '202' })).toBeGreaterThanOrEqual(1);
    expect(sample(s.samples, 'vmrestore_http_request_duration_seconds_count', { method: 'GET', route: '/v1/restores/{id}', status_code: '200' })).toBeGreaterThanOrEqual(1);
    // Bounded labels: no job id, tenant, key or vCenter name anywhere.
    const worker = (await scrape(workerMetricsUrl)).text;
    const tenant = await renv.db.tenant.findUniqueOrThrow({ where: { id: renv.tenantId } });
    for (const text of [s.text, worker]) {
      for (const secret of [jobId, renv.tenantId, tenant.name, renv.vcenterName, renv.headers.authorization.slice(7), token, vms.DC0_H0_VM0!]) {
        expect(text.includes(secret)).toBe(false);
      }
    }
  });

  it('needs the scrape token on both processes when one is set: 401 without it, never echoing it', async () => {
    const res = await fetch(`${api.url}/metrics`);
    const body = await res.text();
    const problem = checkContract('GET', '/metrics', { statusCode: res.status, headers: Object.fromEntries(res.headers.entries()), body }) as { code: string };
    expect([res.status, problem.code, res.headers.get('www-authenticate')]).toEqual([401, 'UNAUTHENTICATED', 'Bearer realm="vmrestore metrics"']);
    expect((await scrape(`${api.url}/metrics`, { authorization: `Bearer ${token}-not` })).status).toBe(401);
    expect((await scrape(workerMetricsUrl, {})).status).toBe(401);
    expect((await scrape(`${api.url}/metrics`, renv.headers)).status).toBe(401); // an API key is not the scrape token
    expect(api.output()).not.toContain(token);
    expect(worker!.output()).not.toContain(token);
  });
});

it('counts vCenter faults by method and code: a task fault and an expired session', async () => {
  const vm = vms.DC0_H0_VM1!;
  await renv.backupFor(vm, 'metrics-vm1', { incrementals: 1, seed: 23 });
  const before = (await scrape(workerMetricsUrl)).samples;
  // The worker keeps its vSphere sessions between jobs: expire them, so its
  // next call is refused with NotAuthenticated (a SOAP fault) and logs in again.
  expect(await renv.sim.expireSessions()).toBeGreaterThan(0);
  await renv.sim.injectFault({ method: 'PowerOffVM_Task', moref: vm, fault: 'NoPermission', count: -1 });
  try {
    const job = await ended((await restore(vm, { vm: 'metrics-vm1', point: 'p1' }, { transports: ['file'] })).body.id);
    expect([job.state, job.error.code]).toEqual(['failed', 'VSPHERE_NO_PERMISSION']);
  } finally {
    await renv.sim.clearFaults();
  }
  const after = (await scrape(workerMetricsUrl)).samples;
  const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
  expect(delta('vmrestore_vsphere_faults_total', { method: 'PowerOffVM_Task', code: 'VSPHERE_NO_PERMISSION' })).toBe(1);
  const expired = [...after].filter(([k]) => k.startsWith('vmrestore_vsphere_faults_total{') && k.includes('code="VSPHERE_NOT_AUTHENTICATED"'));
  expect(expired.reduce((n, [k, v]) => n + v - (before.get(k) ?? 0), 0)).toBeGreaterThanOrEqual(1);
  expect(delta('vmrestore_jobs_finished_total', { kind: 'in_place', state: 'failed' })).toBe(1);
  expect(delta('vmrestore_step_duration_seconds_count', { kind: 'in_place', step: 'power_off', phase: 'main', outcome: 'failed' })).toBe(1);
});

describe('Bull Board at /admin/queues', () => {
  const board = (path: string, headers: Record<string, string> = {}) => fetch(`${api.url}/admin/queues${path}`, { headers });
  const basic = (key: string) => ({ authorization: `Basic ${Buffer.from(`ops:${key}`).toString('base64')}` });

  it('asks a browser for credentials without a key, as a problem', async () => {
    const res = await board('');
    expect([res.status, res.headers.get('www-authenticate'), res.headers.get('content-type')]).toEqual([401, 'Basic realm="vmrestore queues", charset="UTF-8"', 'application/problem+json; charset=utf-8']);
    expect(((await res.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
    expect((await board('/api/queues', basic('vmr_not_a_key'))).status).toBe(401);
  });

  it('refuses a key without admin, and an admin key of another tenant than the operator one', async () => {
    const defaultTenant = await ensureDefaultTenant(renv.db);
    const reader = await createKey(renv.db, defaultTenant, ['restores:read', 'restores:write', 'backups:read']);
    created.push(reader.keyId);
    const other = await createTenantWithKey(renv.db, ['admin']);
    for (const headers of [reader.headers, basic(reader.key), other.headers, basic(other.key)]) {
      const res = await board('/api/queues', headers);
      expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([403, 'FORBIDDEN_SCOPE']);
    }
  });

  it('shows the restore and webhook queues to an admin key of the operator tenant (HTTP Basic or Bearer), never logging the key', async () => {
    const admin = await createKey(renv.db, await ensureDefaultTenant(renv.db), ['admin']);
    created.push(admin.keyId);
    const page = await board('', basic(admin.key));
    expect([page.status, page.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/html/)]);
    const html = await page.text();
    expect(html).toContain('<title>vmrestore queues</title>');
    expect(html).toContain('<base href="/admin/queues/" />');
    // Its scripts load through the same guard; nothing outside the board's static directory is served.
    const script = /src="(static\/js\/main\.[0-9a-f]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const js = await board(`/${script}`, basic(admin.key));
    expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect((await board(`/${script}`)).status).toBe(401);
    expect((await board('/static/..%2F..%2F..%2Fpackage.json', basic(admin.key))).status).toBe(404);
    const res = await board('/api/queues?activeQueue=restore&status=latest&page=1', admin.headers);
    expect(res.status).toBe(200);
    const names = ((await res.json()) as { queues: Array<{ name: string }> }).queues.map((q) => q.name).sort();
    expect(names).toEqual(['restore', 'webhooks']);
    expect(api.output()).not.toContain(admin.key);
  });
});

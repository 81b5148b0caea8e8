import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  codeLabel,
  exposedMetricNames,
  METRIC_LABELS,
  methodLabel,
  metrics,
  metricsAuthorized,
  observeDiskWrites,
  observeQueueWait,
  observeVsphereCall,
  setJobCounts,
  startMetricsServer,
  transportLabel,
  writesOf,
} from './metrics';

const DASHBOARD = join(__dirname, '..', '..', '..', 'ops', 'grafana', 'vmrestore-dashboard.json');

/** The value of one labelled series of a counter or gauge (0 when absent). */
async function valueOf(metric: { get(): Promise<{ values: Array<{ labels: Record<string, unknown>; value: number; metricName?: string }> }> }, labels: Record<string, string>, metricName?: string) {
  const { values } = await metric.get();
  const hit = values.find((v) => (!metricName || v.metricName === metricName) && Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x));
  return hit?.value ?? 0;
}

describe('writesOf (the write_disks step result)', () => {
  it('sums bytes per transport, skips empty disks, and flags a resumed disk', () => {
    const r = writesOf({
      bytes: 3072,
      transport: 'nbdssl',
      disks: [
        { key: 2000, transport: 'nbdssl', bytes: 2048, resumedFrom: 0 },
        { key: 2001, transport: 'nbdssl', bytes: 1024, resumedFrom: 3 },
        { key: 2002, transport: null, bytes: 0, resumedFrom: 0 },
      ],
    });
    expect(r).toEqual({ perTransport: [{ transport: 'nbdssl', bytes: 3072 }], total: 3072, resumed: true });
  });
  it('falls back to the step totals without a disk list, and never lets an unknown transport become a label', () => {
    expect(writesOf({ bytes: 512, transport: 'file' })).toEqual({ perTransport: [{ transport: 'file', bytes: 512 }], total: 512, resumed: false });
    expect(writesOf({ disks: [{ transport: 'vm-42 secret', bytes: 5 }] }).perTransport).toEqual([{ transport: 'other', bytes: 5 }]);
    expect(writesOf({})).toEqual({ perTransport: [], total: 0, resumed: false });
  });
});

describe('observations', () => {
  it('counts bytes per kind and transport, and a rate only for a run that wrote everything itself', async () => {
    const before = await valueOf(metrics.bytesWritten, { kind: 'export', transport: 'hotadd' });
    const rates = async () => (await valueOf(metrics.writeThroughput, { transport: 'hotadd' }, 'vmrestore_write_throughput_bytes_per_second_count'));
    const ratesBefore = await rates();
    observeDiskWrites('export', { disks: [{ transport: 'hotadd', bytes: 4 * 1024 * 1024, resumedFrom: 0 }] }, 2);
    observeDiskWrites('export', { disks: [{ transport: 'hotadd', bytes: 1024, resumedFrom: 7 }] }, 2);
    expect((await valueOf(metrics.bytesWritten, { kind: 'export', transport: 'hotadd' })) - before).toBe(4 * 1024 * 1024 + 1024);
    expect((await rates()) - ratesBefore).toBe(1);
    // 4 MiB in 2 s: 2 MiB/s lands in the 4 MiB/s bucket, not the 1 MiB/s one.
    const { values } = await metrics.writeThroughput.get();
    const bucket = (le: number) => values.find((v) => v.metricName?.endsWith('_bucket') && v.labels.transport === 'hotadd' && (v.labels as Record<string, unknown>).le === le)?.value;
    expect(bucket(1024 * 1024)).toBe(0);
    expect(bucket(4 * 1024 * 1024)).toBe(1);
  });

  it('times vSphere calls by method and counts faults by method and code, with bounded labels', async () => {
    const faults = () => valueOf(metrics.vsphereFaults, { method: 'other', code: 'other' });
    const before = await faults();
    observeVsphereCall('PowerOnVM_Task', 0.02);
    observeVsphereCall('vm-17; drop table', 0.02, 'not a code');
    expect((await faults()) - before).toBe(1);
    expect(await valueOf(metrics.vsphereCallDuration, { method: 'PowerOnVM_Task' }, 'vmrestore_vsphere_call_duration_seconds_count')).toBeGreaterThanOrEqual(1);
  });

  it('observes the queue wait of first attempts only', async () => {
    const count = () => valueOf(metrics.queueWait, { queue: 'unit' }, 'vmrestore_queue_wait_seconds_count');
    const sum = () => valueOf(metrics.queueWait, { queue: 'unit' }, 'vmrestore_queue_wait_seconds_sum');
    const [c0, s0] = [await count(), await sum()];
    observeQueueWait('unit', { timestamp: 1_000, processedOn: 3_500, attemptsMade: 0 });
    observeQueueWait('unit', { timestamp: 1_000, processedOn: 90_000, attemptsMade: 2 });
    observeQueueWait('unit', { timestamp: 1_000, attemptsMade: 0 });
    expect([(await count()) - c0, (await sum()) - s0]).toEqual([1, 2.5]);
  });

  it('sets the jobs gauge for every state, zeros included', async () => {
    setJobCounts([{ kind: 'in_place', state: 'running', count: 3 }]);
    expect(await valueOf(metrics.jobs, { kind: 'in_place', state: 'running' })).toBe(3);
    const { values } = await metrics.jobs.get();
    expect(values.find((v) => v.labels.kind === 'new_vm' && v.labels.state === 'cleanup_pending')?.value).toBe(0);
    setJobCounts([]);
    expect(await valueOf(metrics.jobs, { kind: 'in_place', state: 'running' })).toBe(0);
  });

  it('keeps label values to a small, fixed alphabet whatever comes in', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(['file', 'san', 'hotadd', 'nbdssl', 'nbd', 'other']).toContain(transportLabel(s));
        expect(methodLabel(s)).toMatch(/^[A-Za-z][A-Za-z0-9_]{0,79}$/);
        expect(codeLabel(s)).toMatch(/^([A-Z][A-Z0-9_]{0,79}|other)$/);
      }),
    );
  });
});

describe('scrape access', () => {
  it('admits any scrape without a token, and only the exact bearer token with one', () => {
    expect(metricsAuthorized(undefined, null)).toBe(true);
    const token = 'scrape-token-0123456789';
    expect(metricsAuthorized(`Bearer ${token}`, token)).toBe(true);
    expect(metricsAuthorized(`bearer ${token}`, token)).toBe(true);
    expect(metricsAuthorized(undefined, token)).toBe(false);
    expect(metricsAuthorized(`Bearer ${token}x`, token)).toBe(false);
    expect(metricsAuthorized(`Basic ${Buffer.from(`x:${token}`).toString('base64')}`, token)).toBe(false);
  });

  it('serves /metrics over HTTP (the worker listener): 401 without the token, 200 with it, 404 elsewhere', async () => {
    const token = 'scrape-token-0123456789';
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0, token });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const refused = await fetch(server.url);
      expect([refused.status, refused.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="vmrestore metrics"']);
      expect(await refused.text()).not.toContain(token);
      const ok = await fetch(server.url, { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await ok.text();
      expect(text).toContain('# TYPE vmrestore_step_duration_seconds histogram');
      expect(text).toContain('vmrestore_process_cpu_user_seconds_total');
      expect((await fetch(server.url.replace('/metrics', '/other'), { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('ops/grafana/vmrestore-dashboard.json', () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>; templating: { list: Array<{ query?: unknown; definition?: string }> } };
  const exprs = [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr }))),
    ...dash.templating.list.filter((v) => v.definition).map((v) => ({ where: 'templating', expr: v.definition! })),
  ];

  it('is a dashboard whose every graph panel queries something', () => {
    expect(dash.uid).toBe('vmrestore-ops');
    const graphs = dash.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(10);
    for (const p of graphs) expect([p.title, (p.targets ?? []).length]).not.toEqual([p.title, 0]);
  });

  it('references only metric names the registry defines, grouped only by their labels', async () => {
    const names = await exposedMetricNames();
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
    for (const { where, expr } of exprs) {
      const used = expr.match(/\bvmrestore_[A-Za-z0-9_]+/g) ?? [];
      expect([where, used.length]).not.toEqual([where, 0]);
      for (const n of used) expect([where, n, names.has(n)]).toEqual([where, n, true]);
      // `by (...)` labels must exist on the metrics the expression reads (le for histograms; job/instance from Prometheus).
      const allowed = new Set(['le', 'job', 'instance', ...used.flatMap((n) => METRIC_LABELS[n] ?? METRIC_LABELS[base(n)] ?? [])]);
      for (const group of expr.matchAll(/\bby \(([^)]*)\)/g)) {
        for (const label of group[1]!.split(',').map((l) => l.trim())) expect([where, label, allowed.has(label)]).toEqual([where, label, true]);
      }
    }
  });

  it('covers what the issue asks for: jobs by state, throughput per transport, steps, queues, vCenter, webhooks', () => {
    const all = exprs.map((e) => e.expr).join('\n');
    for (const n of [
      'vmrestore_jobs',
      'vmrestore_bytes_written_total',
      'vmrestore_step_duration_seconds_bucket',
      'vmrestore_queue_jobs',
      'vmrestore_queue_wait_seconds_bucket',
      'vmrestore_vsphere_call_duration_seconds_bucket',
      'vmrestore_vsphere_faults_total',
      'vmrestore_webhook_deliveries_total',
    ]) {
      expect(all).toMatch(new RegExp(`\\b${n}\\b`));
    }
    expect(all).toMatch(/histogram_quantile\(0\.5, sum by \(le, step\)/);
    expect(all).toMatch(/histogram_quantile\(0\.95, sum by \(le, step\)/);
  });
});

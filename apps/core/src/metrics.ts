import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { JobState, RestoreKind } from './generated/prisma/enums';

// Prometheus metrics (docs/metrics.md): one registry and every metric
// definition, shared by the api and worker processes so both expose the same
// names. Each process fills the metrics it observes: the api the scrape-time
// gauges (jobs by state, queue depth) and HTTP timings, the worker the step,
// write, queue-wait and webhook metrics; both time their vCenter calls.
//
// Labels have bounded values only (kinds, states, step and vim25 method
// names, error codes, transports): never a job id, a tenant, a VM or a URL.

export const METRICS_PREFIX = 'vmrestore_';
export const metricsRegistry = new Registry();
const registers = [metricsRegistry];

const MiB = 1024 * 1024;

/** Each metric's label names, by metric name (dashboards may group by these). */
export const METRIC_LABELS: Record<string, readonly string[]> = {};
const def = <T extends { name: string; labelNames?: readonly string[] }>(cfg: T): T => {
  METRIC_LABELS[cfg.name] = cfg.labelNames ?? [];
  return cfg;
};

export const metrics = {
  jobs: new Gauge(
    def({
      name: 'vmrestore_jobs',
      help: 'Restore jobs in Postgres by kind and state, read at scrape time (api)',
      labelNames: ['kind', 'state'] as const,
      registers,
    }),
  ),
  queueJobs: new Gauge(
    def({
      name: 'vmrestore_queue_jobs',
      help: 'BullMQ jobs by queue and queue state, read at scrape time (api)',
      labelNames: ['queue', 'state'] as const,
      registers,
    }),
  ),
  httpRequestDuration: new Histogram(
    def({
      name: 'vmrestore_http_request_duration_seconds',
      help: 'API request duration by method, route template and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  ),
  stepDuration: new Histogram(
    def({
      name: 'vmrestore_step_duration_seconds',
      help: 'Duration of one run of a job step by plan kind, step, phase (main/cleanup) and outcome (succeeded/failed/interrupted)',
      labelNames: ['kind', 'step', 'phase', 'outcome'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400],
      registers,
    }),
  ),
  jobsFinished: new Counter(
    def({
      name: 'vmrestore_jobs_finished_total',
      help: 'Jobs this worker brought to an end, by kind and final state',
      labelNames: ['kind', 'state'] as const,
      registers,
    }),
  ),
  bytesWritten: new Counter(
    def({
      name: 'vmrestore_bytes_written_total',
      help: 'Bytes written to target disks by finished write_disks steps, by job kind and transport',
      labelNames: ['kind', 'transport'] as const,
      registers,
    }),
  ),
  writeThroughput: new Histogram(
    def({
      name: 'vmrestore_write_throughput_bytes_per_second',
      help: 'Write rate of one write_disks step (bytes / step duration), by transport; resumed steps are not observed',
      labelNames: ['transport'] as const,
      buckets: [1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096].map((m) => m * MiB),
      registers,
    }),
  ),
  queueWait: new Histogram(
    def({
      name: 'vmrestore_queue_wait_seconds',
      help: 'Time from enqueue to the first pick by a worker, by queue',
      labelNames: ['queue'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    }),
  ),
  vsphereCallDuration: new Histogram(
    def({
      name: 'vmrestore_vsphere_call_duration_seconds',
      help: 'vSphere SOAP call latency by vim25 method (faults included)',
      labelNames: ['method'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  ),
  vsphereFaults: new Counter(
    def({
      name: 'vmrestore_vsphere_faults_total',
      help: 'vSphere faults by vim25 method and stable error code (SOAP faults, task errors, timeouts, network errors)',
      labelNames: ['method', 'code'] as const,
      registers,
    }),
  ),
  webhookDeliveries: new Counter(
    def({
      name: 'vmrestore_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (delivered/retry/failed/skipped/error)',
      labelNames: ['outcome'] as const,
      registers,
    }),
  ),
  orphans: new Counter(
    def({
      name: 'vmrestore_orphans_total',
      help: 'Orphans found by the sweeper (docs/orphans.md) by kind (snapshot/vm/lock/vcenter) and action (removed/reverted_removed/consolidated/destroyed/deleted/left)',
      labelNames: ['kind', 'action'] as const,
      registers,
    }),
  ),
};

let defaultsOn = false;
/** Process metrics (CPU, memory, event loop, GC) under the vmrestore_ prefix; once per process. */
export function enableDefaultMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: metricsRegistry, prefix: METRICS_PREFIX });
}

/**
 * Every series name the registry can expose (histograms with their _bucket,
 * _sum and _count series), default process metrics included: what a
 * dashboard's PromQL may reference.
 */
export async function exposedMetricNames(): Promise<Set<string>> {
  enableDefaultMetrics();
  const names = new Set<string>();
  for (const m of await metricsRegistry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    if (String(m.type) === 'summary') for (const s of ['_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

// ---------------------------------------------------------------- label hygiene

const TRANSPORTS = new Set(['file', 'san', 'hotadd', 'nbdssl', 'nbd']);
/** A transport label: one of the known transports, else `other`. */
export const transportLabel = (t: unknown): string => (typeof t === 'string' && TRANSPORTS.has(t) ? t : 'other');

/** A vim25 method name label (they are identifiers; anything else is `other`). */
export const methodLabel = (m: unknown): string => (typeof m === 'string' && /^[A-Za-z][A-Za-z0-9_]{0,79}$/.test(m) ? m : 'other');

/** An error code label (UPPER_SNAKE codes; anything else is `other`). */
export const codeLabel = (c: unknown): string => (typeof c === 'string' && /^[A-Z][A-Z0-9_]{0,79}$/.test(c) ? c : 'other');

// ---------------------------------------------------------------- observations

/** One vSphere SOAP call ended (ok, or with the error's code). */
export function observeVsphereCall(method: string, seconds: number, errorCode?: string): void {
  const m = methodLabel(method);
  metrics.vsphereCallDuration.observe({ method: m }, seconds);
  if (errorCode !== undefined) metrics.vsphereFaults.inc({ method: m, code: codeLabel(errorCode) });
}

export interface WriteObservation {
  transport: string;
  bytes: number;
}

/**
 * What a write_disks step result ({bytes, transport, disks: [{transport,
 * bytes, resumedFrom}]}) says was written, per transport; `resumed` when a
 * disk continued from a checkpoint (its bytes were not all written in this
 * run, so no rate can be derived from this run's duration).
 */
export function writesOf(result: Record<string, unknown>): { perTransport: WriteObservation[]; total: number; resumed: boolean } {
  const byTransport = new Map<string, number>();
  let resumed = false;
  const disks = Array.isArray(result.disks) ? (result.disks as Array<Record<string, unknown>>) : [];
  for (const d of disks) {
    const bytes = typeof d.bytes === 'number' && Number.isFinite(d.bytes) && d.bytes > 0 ? d.bytes : 0;
    if (typeof d.resumedFrom === 'number' && d.resumedFrom > 0) resumed = true;
    if (bytes === 0) continue;
    const t = transportLabel(d.transport);
    byTransport.set(t, (byTransport.get(t) ?? 0) + bytes);
  }
  if (disks.length === 0 && typeof result.bytes === 'number' && result.bytes > 0) {
    byTransport.set(transportLabel(result.transport), result.bytes);
  }
  const perTransport = [...byTransport].map(([transport, bytes]) => ({ transport, bytes }));
  return { perTransport, total: perTransport.reduce((s, w) => s + w.bytes, 0), resumed };
}

/** A write_disks step succeeded: bytes per transport, and its rate when the run wrote everything itself. */
export function observeDiskWrites(kind: string, result: Record<string, unknown>, seconds: number): void {
  const w = writesOf(result);
  for (const { transport, bytes } of w.perTransport) metrics.bytesWritten.inc({ kind, transport }, bytes);
  if (!w.resumed && seconds > 0 && w.perTransport.length === 1 && w.total > 0) {
    metrics.writeThroughput.observe({ transport: w.perTransport[0]!.transport }, w.total / seconds);
  }
}

/** A worker picked a job; BullMQ's `timestamp` (added) and `processedOn` (picked) in ms. First attempts only. */
export function observeQueueWait(queue: string, job: { timestamp?: number; processedOn?: number; attemptsMade?: number }): void {
  if ((job.attemptsMade ?? 0) > 0 || !job.timestamp || !job.processedOn) return;
  metrics.queueWait.observe({ queue }, Math.max(0, job.processedOn - job.timestamp) / 1000);
}

/**
 * The jobs gauge from one GROUP BY: every state of each kind (zeros
 * included, so a state that emptied reads 0, not its last value).
 */
export function setJobCounts(rows: Array<{ kind: string; state: string; count: number }>): void {
  const kinds = new Set<string>([...Object.values(RestoreKind), ...rows.map((r) => r.kind)]);
  const states = new Set<string>([...Object.values(JobState), ...rows.map((r) => r.state)]);
  metrics.jobs.reset();
  for (const kind of kinds) for (const state of states) metrics.jobs.set({ kind, state }, 0);
  for (const r of rows) metrics.jobs.set({ kind: r.kind, state: r.state }, r.count);
}

export const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed'] as const;

/** The queue depth gauge from a queue's getJobCounts(...QUEUE_STATES). */
export function setQueueCounts(queue: string, counts: Record<string, number>): void {
  for (const state of QUEUE_STATES) metrics.queueJobs.set({ queue, state }, counts[state] ?? 0);
}

// ---------------------------------------------------------------- scrape access

/**
 * Whether an Authorization header admits a scrape: always when no token is
 * configured, else only `Bearer <token>` (compared in constant time).
 */
export function metricsAuthorized(authorization: string | undefined, token: string | null): boolean {
  if (!token) return true;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(m[1]!), digest(token));
}

export interface MetricsServer {
  /** Where it listens (http://host:port/metrics). */
  url: string;
  close(): Promise<void>;
}

/** A bare HTTP server answering GET /metrics (the worker's: it has no Fastify). */
export async function startMetricsServer(opts: { host: string; port: number; token: string | null }): Promise<MetricsServer> {
  enableDefaultMetrics();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (!metricsAuthorized(req.headers.authorization, opts.token)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="vmrestore metrics"' }).end('a bearer token is required\n');
      return;
    }
    metricsRegistry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metricsRegistry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

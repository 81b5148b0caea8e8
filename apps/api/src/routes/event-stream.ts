import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { findJob, isTerminal, toEventView, type JobEvent } from '@vmrestore/core';

// GET /v1/restores/{id}/events with `Accept: text/event-stream`: the job's
// timeline as Server-Sent Events, live. Postgres is polled (every pollMs) for
// events after the last one sent; each goes out with `id:` (the event id, so
// a reconnecting client's Last-Event-ID resumes exactly after it), `event:`
// (its type) and `data:` (the JSON event; progress events get rate and ETA).
// A comment line every heartbeatMs keeps proxies from closing an idle
// stream. The stream ends after the job's end event (job.succeeded, ...
// without a step), or once the job has been ended for END_GRACE_MS.

export interface SseOptions {
  pollMs: number;
  heartbeatMs: number;
}

export const SSE_DEFAULTS: SseOptions = { pollMs: 250, heartbeatMs: 15_000 };
const TERMINAL_EVENTS = new Set(['job.succeeded', 'job.failed', 'job.cancelled', 'job.cleanup_pending']);
const BATCH = 500;
/** How long after a job's end its end event may still be on its way. */
const END_GRACE_MS = 3_000;

export function wantsEventStream(req: FastifyRequest): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}

/** Where to resume: Last-Event-ID (a reconnect) wins over ?after=. */
export function resumeAfter(req: FastifyRequest, after: number | undefined): number {
  const raw = req.headers['last-event-id'];
  if (typeof raw === 'string' && /^\d{1,18}$/.test(raw.trim())) return Number(raw.trim());
  return after ?? 0;
}

interface ProgressPoint {
  at: number;
  bytes: number;
}

/** Rate (bytes/s) and ETA (s) between two progress points; null until computable. */
export function rateAndEta(prev: ProgressPoint | null, now: ProgressPoint, total: number): { rateBytesPerSec: number | null; etaSeconds: number | null } {
  if (!prev || now.at <= prev.at || now.bytes < prev.bytes) return { rateBytesPerSec: null, etaSeconds: null };
  const rate = ((now.bytes - prev.bytes) * 1000) / (now.at - prev.at);
  if (!Number.isFinite(rate)) return { rateBytesPerSec: null, etaSeconds: null };
  const eta = rate > 0 && total >= now.bytes ? (total - now.bytes) / rate : null;
  return { rateBytesPerSec: Math.round(rate), etaSeconds: eta === null ? null : Math.round(eta * 10) / 10 };
}

/** Streams are ended when the app closes (else close() would wait for every client). */
export function sseRegistry(app: FastifyInstance) {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });
  return open;
}

export async function streamEvents(
  app: FastifyInstance,
  req: FastifyRequest,
  reply: FastifyReply,
  args: { tenantId: string; jobId: string; after: number; opts: SseOptions; open: Set<() => void> },
): Promise<void> {
  const { tenantId, jobId, opts, open } = args;
  const job = await findJob(app.db, tenantId, jobId); // 404 before any byte is sent
  let last = args.after;
  // Rate: from the previous progress event seen on this stream, or, for the
  // first one, from the job's start.
  let prev: ProgressPoint | null = job.startedAt ? { at: job.startedAt.getTime(), bytes: 0 } : null;

  reply.hijack();
  const res = reply.raw;
  const headers: Record<string, string> = {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': String(req.id),
  };
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = String(v);
  res.writeHead(200, headers);
  res.write(`retry: 2000\n\n`);

  let ended = false;
  let timer: NodeJS.Timeout | undefined;
  const heartbeat = setInterval(() => {
    if (!ended) res.write(': ping\n\n');
  }, opts.heartbeatMs);
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    if (timer) clearTimeout(timer);
    open.delete(end);
    res.end();
  };
  open.add(end);
  req.raw.on('close', end);
  res.on('close', end);

  const send = (e: JobEvent) => {
    const view = toEventView(e) as { id: number; at: string; type: string; step: string | null; data: Record<string, unknown> | null };
    if (e.type === 'progress' && view.data) {
      const bytesDone = Number(view.data.bytesDone ?? 0);
      const bytesTotal = Number(view.data.bytesTotal ?? 0);
      const now = { at: e.at.getTime(), bytes: bytesDone };
      const percent = typeof view.data.percent === 'number' ? view.data.percent : bytesTotal > 0 ? Math.round((bytesDone / bytesTotal) * 1000) / 10 : 0;
      view.data = { ...view.data, bytesDone, bytesTotal, percent, ...rateAndEta(prev, now, bytesTotal) };
      prev = now;
    }
    res.write(`id: ${view.id}\nevent: ${view.type}\ndata: ${JSON.stringify(view)}\n\n`);
    last = view.id;
  };

  const tick = async () => {
    timer = undefined;
    if (ended) return;
    try {
      let sawTerminal = false;
      for (;;) {
        const rows = await app.db.jobEvent.findMany({ where: { jobId, id: { gt: BigInt(last) } }, orderBy: { id: 'asc' }, take: BATCH });
        if (ended) return;
        for (const e of rows) {
          send(e);
          // The job's own end event (no step): a cleanup step's
          // job.cleanup_pending comes with its step, before the end.
          if (TERMINAL_EVENTS.has(e.type) && e.step === null) sawTerminal = true;
        }
        if (rows.length < BATCH) break;
      }
      if (!sawTerminal) {
        const row = await app.db.restoreJob.findUnique({ where: { id: jobId }, select: { state: true, finishedAt: true } });
        // The runner records the end state, then the end event. A job gone,
        // or ended a while ago without that event (older jobs): one more read,
        // then the stream is complete.
        const settled = !row || (isTerminal(row.state) && (!row.finishedAt || Date.now() - row.finishedAt.getTime() > END_GRACE_MS));
        if (settled) {
          const rest = await app.db.jobEvent.findMany({ where: { jobId, id: { gt: BigInt(last) } }, orderBy: { id: 'asc' } });
          if (!ended) rest.forEach(send);
          sawTerminal = true;
        }
      }
      if (sawTerminal) return end();
    } catch (err) {
      req.log.warn({ err: (err as Error).message, jobId }, 'event stream poll failed; retrying');
    }
    if (!ended) timer = setTimeout(() => void tick(), opts.pollMs);
  };
  req.log.info({ jobId, after: last }, 'event stream opened');
  await tick();
}

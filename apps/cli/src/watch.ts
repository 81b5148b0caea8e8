import { ApiClient, ApiError, UnreachableError } from './client';
import type { JobLike } from './format';
import { SseParser } from './sse';
import { EXIT } from './spec';
import { applyEvent, isEndEvent, TERMINAL_STATES, viewFromJob, WatchRenderer, watchMode, type StreamEvent, type WatchView } from './watch-view';

// `vmrestore watch ID`: follows a job until it ends, through the API's event
// stream (GET /v1/restores/{id}/events, text/event-stream), resuming with
// Last-Event-ID after a reconnect so no event is lost or shown twice. When
// the API goes away (connection refused or reset, 5xx, a stream silent for
// too long) it retries with exponential backoff for up to
// reconnectTimeoutMs, keeping the progress where it was. An API that offers
// no event stream is polled instead. The exit code is the job's outcome.

export interface WatchOptions {
  json?: boolean;
  /** How long an unreachable API is retried before giving up (exit 4). */
  reconnectTimeoutMs: number;
  /** Polling interval, when the API has no event stream. */
  pollIntervalMs: number;
  /** A stream with no byte (not even a ping, every 15 s) for this long is dropped and reopened. */
  idleTimeoutMs?: number;
  backoffMs?: { initial: number; max: number };
}

interface Out {
  write(s: string): void;
  isTTY?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jobPath = (id: string) => `/v1/restores/${encodeURIComponent(id)}`;

function isTransient(e: unknown): boolean {
  return e instanceof UnreachableError || (e instanceof ApiError && e.transient);
}

export async function watchJob(api: ApiClient, id: string, out: Out, opts: WatchOptions): Promise<number> {
  const render = new WatchRenderer(watchMode(out.isTTY, opts.json), (s) => out.write(s));
  const backoff = opts.backoffMs ?? { initial: 500, max: 10_000 };
  const idleMs = opts.idleTimeoutMs ?? 45_000;

  // Outages are timed from the first failure until something succeeds again.
  let outageSince: number | null = null;
  let delay = backoff.initial;
  const ok = () => {
    if (outageSince !== null) render.reconnected();
    outageSince = null;
    delay = backoff.initial;
  };
  const failed = async (e: unknown) => {
    if (!isTransient(e)) throw e;
    outageSince ??= Date.now();
    if (Date.now() - outageSince > opts.reconnectTimeoutMs) {
      throw e instanceof ApiError ? e : new UnreachableError(`${(e as Error).message} (gave up after ${Math.round(opts.reconnectTimeoutMs / 1000)} s)`);
    }
    render.reconnecting((e as Error).message);
    await sleep(delay);
    delay = Math.min(delay * 2, backoff.max);
  };
  const getJob = async (): Promise<JobLike> => {
    for (;;) {
      try {
        const job = (await api.request<JobLike>('GET', jobPath(id))).body;
        ok();
        return job;
      } catch (e) {
        await failed(e);
      }
    }
  };
  const finish = (job: JobLike) => {
    render.end(job);
    return job.state === 'succeeded' ? EXIT.OK : EXIT.JOB_FAILED;
  };

  // Where the stream starts: after the job's last event so far (read before
  // the job, so nothing between the two reads is missed). A first failure is
  // not retried: a wrong URL or id should fail at once.
  let lastEventId = await latestEventId(api, id);
  let view: WatchView = viewFromJob((await api.request<JobLike>('GET', jobPath(id))).body);
  render.update(view);
  if (TERMINAL_STATES.includes(view.state)) return finish(await getJob());

  let polling = false;
  for (;;) {
    if (polling) {
      await sleep(opts.pollIntervalMs);
      const job = await getJob();
      if (TERMINAL_STATES.includes(job.state)) return finish(job);
      view = viewFromJob(job, view);
      render.update(view);
      continue;
    }
    let sawEnd = false;
    try {
      const r = await readStream(api, id, lastEventId, idleMs, () => ok(), (e) => {
        lastEventId = e.id;
        view = applyEvent(view, e);
        if (isEndEvent(e)) sawEnd = true;
        else render.update(view);
      });
      if (r === 'not-a-stream') polling = true;
    } catch (e) {
      await failed(e);
    }
    // The stream ended: the job ended, or the API is shutting down, or the
    // connection broke. The job says which.
    if (!sawEnd && polling) continue;
    const job = await getJob();
    if (TERMINAL_STATES.includes(job.state)) return finish(job);
    // An end event before the end state: let it settle. A stream the server
    // ended early (shutting down): a short pause, not a busy loop.
    await sleep(sawEnd ? opts.pollIntervalMs : 250);
  }
}

/** The id of the job's newest event (0 when it has none). */
async function latestEventId(api: ApiClient, id: string): Promise<number> {
  let after = 0;
  for (;;) {
    const page = (await api.request<{ items: Array<{ id: number }> }>('GET', `${jobPath(id)}/events?after=${after}&limit=1000`)).body;
    if (page.items.length) after = page.items[page.items.length - 1]!.id;
    if (page.items.length < 1000) return after;
  }
}

/**
 * Reads one event stream until the server ends it. Throws UnreachableError
 * when the connection breaks or stays silent longer than idleMs.
 */
async function readStream(
  api: ApiClient,
  id: string,
  after: number,
  idleMs: number,
  onOpen: () => void,
  onEvent: (e: StreamEvent) => void,
): Promise<'ended' | 'not-a-stream'> {
  const ac = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  let timedOut = false;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, idleMs);
  };
  try {
    const res = await api.stream(`${jobPath(id)}/events`, { accept: 'text/event-stream', 'last-event-id': String(after) }, ac.signal);
    if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      await res.body?.cancel().catch(() => undefined);
      return 'not-a-stream';
    }
    onOpen();
    arm();
    const parser = new SseParser();
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      arm();
      for (const m of parser.push(decoder.decode(chunk, { stream: true }))) {
        if (!m.id) continue;
        onEvent(JSON.parse(m.data) as StreamEvent);
      }
    }
    return 'ended';
  } catch (e) {
    if (e instanceof ApiError || e instanceof UnreachableError) throw e;
    throw new UnreachableError(timedOut ? `the event stream was silent for ${Math.round(idleMs / 1000)} s` : `the event stream broke: ${(e as Error).message}`);
  } finally {
    clearTimeout(idle);
    ac.abort();
  }
}

/** "90s", "5m", "1h", "1500ms" or plain seconds → ms. */
export function parseDuration(raw: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(n * unit);
}

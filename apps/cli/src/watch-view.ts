import { jobDetail, statusLine, type JobLike } from './format';

// What `vmrestore watch` shows, as pure functions: the job's view is built
// from the job (GET) and updated by its events (the SSE stream); a renderer
// turns views into output for a terminal, for a log (one line per change)
// or for scripts (JSON lines).

export const TERMINAL_STATES = ['succeeded', 'failed', 'cancelled', 'cleanup_pending'];
const END_EVENTS = new Set(['job.succeeded', 'job.failed', 'job.cancelled', 'job.cleanup_pending']);

export interface WatchView {
  id: string;
  state: string;
  currentStep: string | null;
  progress: { bytesDone: number; bytesTotal: number; percent: number };
  cancelRequested: boolean;
  /** Bytes per second, when known. */
  rate: number | null;
  etaMs: number | null;
}

export interface StreamEvent {
  id: number;
  at: string;
  type: string;
  step: string | null;
  data: Record<string, unknown> | null;
}

export function viewFromJob(job: JobLike & { cancelRequested?: boolean }, prev?: WatchView): WatchView {
  return {
    id: job.id,
    state: job.state,
    currentStep: job.currentStep,
    progress: { ...job.progress },
    cancelRequested: Boolean(job.cancelRequested),
    rate: prev?.rate ?? null,
    etaMs: prev?.etaMs ?? null,
  };
}

/** The job's own end event (a cleanup step's job.cleanup_pending carries its step). */
export function isEndEvent(e: Pick<StreamEvent, 'type' | 'step'>): boolean {
  return END_EVENTS.has(e.type) && e.step === null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function applyEvent(view: WatchView, e: StreamEvent): WatchView {
  switch (e.type) {
    case 'progress': {
      const d = e.data ?? {};
      const bytesDone = num(d.bytesDone) ?? view.progress.bytesDone;
      const bytesTotal = num(d.bytesTotal) ?? view.progress.bytesTotal;
      const percent = num(d.percent) ?? (bytesTotal > 0 ? Math.min(100, (bytesDone / bytesTotal) * 100) : 0);
      const rate = num(d.rateBytesPerSec);
      const eta = num(d.etaSeconds);
      return { ...view, state: 'running', currentStep: e.step ?? view.currentStep, progress: { bytesDone, bytesTotal, percent }, rate, etaMs: eta === null ? null : eta * 1000 };
    }
    case 'job.started':
      return { ...view, state: 'running' };
    case 'step.started':
      return { ...view, state: 'running', currentStep: e.step ?? view.currentStep, rate: null, etaMs: null };
    case 'job.retry_scheduled':
      return { ...view, state: 'queued', rate: null, etaMs: null };
    case 'job.cancel_requested':
      return { ...view, cancelRequested: true };
    default:
      if (isEndEvent(e)) return { ...view, state: e.type.slice('job.'.length), rate: null, etaMs: null };
      return view;
  }
}

export type WatchMode = 'tty' | 'lines' | 'json';

export function watchMode(isTTY: boolean | undefined, json: boolean | undefined): WatchMode {
  return json ? 'json' : isTTY ? 'tty' : 'lines';
}

function asJobLike(v: WatchView): JobLike {
  return { ...v, kind: '', vcenter: '', source: { vm: '', point: '' }, target: { vm: null }, error: null, createdAt: '' };
}

export function viewLine(v: WatchView): string {
  const line = statusLine(asJobLike(v), v.rate ?? 0, v.etaMs ?? NaN);
  return v.cancelRequested && !TERMINAL_STATES.includes(v.state) ? `${line} (cancelling)` : line;
}

/** The JSON line for a view: stable field names, documented in docs/cli.md. */
export function viewJson(v: WatchView): Record<string, unknown> {
  return {
    type: 'update',
    id: v.id,
    state: v.state,
    step: v.currentStep,
    progress: v.progress,
    rateBytesPerSec: v.rate,
    etaSeconds: v.etaMs === null ? null : Math.round(v.etaMs / 100) / 10,
    cancelRequested: v.cancelRequested,
  };
}

/**
 * Turns views into output. tty: one status line redrawn in place; lines: a
 * line when the state, the step or the whole percent changes; json: an
 * object per line on the same changes, then {"type":"end","job":...}.
 */
export class WatchRenderer {
  private last: { state: string; step: string | null; percent: number; cancel: boolean; bytes: number } | null = null;
  private current: WatchView | null = null;
  private outage = false;

  constructor(readonly mode: WatchMode, private readonly write: (s: string) => void) {}

  update(v: WatchView): void {
    this.current = v;
    const key = { state: v.state, step: v.currentStep, percent: Math.floor(v.progress.percent), cancel: v.cancelRequested, bytes: v.progress.bytesDone };
    const l = this.last;
    const changed = !l || l.state !== key.state || l.step !== key.step || l.percent !== key.percent || l.cancel !== key.cancel;
    if (this.mode === 'tty') {
      this.write(`\r\x1b[2K${viewLine(v)}`);
    } else if (this.mode === 'lines') {
      if (changed) this.write(`${viewLine(v)}\n`);
    } else if (changed || l?.bytes !== key.bytes) {
      this.write(`${JSON.stringify(viewJson(v))}\n`);
    }
    this.last = key;
  }

  /** The API went away; said once per outage (tty: on every retry, with the reason). */
  reconnecting(reason: string): void {
    const first = !this.outage;
    this.outage = true;
    if (this.mode === 'tty') this.write(`\r\x1b[2K${this.current ? `${viewLine(this.current)}  ` : ''}reconnecting… (${reason})`);
    else if (!first) return;
    else if (this.mode === 'lines') this.write(`reconnecting: ${reason}\n`);
    else this.write(`${JSON.stringify({ type: 'reconnecting', reason })}\n`);
  }

  reconnected(): void {
    if (!this.outage) return;
    this.outage = false;
    if (this.mode === 'tty') {
      if (this.current) this.write(`\r\x1b[2K${viewLine(this.current)}`);
    } else if (this.mode === 'lines') this.write('reconnected\n');
    else this.write(`${JSON.stringify({ type: 'reconnected' })}\n`);
  }

  end(job: JobLike): void {
    this.reconnected();
    this.update(viewFromJob(job, this.current ?? undefined));
    if (this.mode === 'json') this.write(`${JSON.stringify({ type: 'end', job })}\n`);
    else this.write(`${this.mode === 'tty' ? '\n' : ''}${jobDetail(job)}\n`);
  }
}

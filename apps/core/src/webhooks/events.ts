import type { RestoreJob } from '../generated/prisma/client';
import { percent } from '../jobs/view';

// The events a webhook can subscribe to, and the payload every delivery carries:
//   { id, type, createdAt, tenantId, data: { job: {...} } }
// `id` is the event id: the same for every webhook, attempt and redelivery of
// one event, and sent as the webhook-id header.

export const WEBHOOK_EVENT_TYPES = [
  'job.started',
  'job.step_changed',
  'job.progress',
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'job.cleanup_pending',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Subscribes to every event type, including ones added later. */
export const ALL_EVENTS = '*';

export const isWebhookEventType = (t: string): t is WebhookEventType => (WEBHOOK_EVENT_TYPES as readonly string[]).includes(t);

export interface JobEventData {
  job: {
    id: string;
    kind: string;
    state: string;
    label: string | null;
    currentStep: string | null;
    progress: { percent: number; bytesDone: number; bytesTotal: number };
    error: { code: string; message: string } | null;
    createdAt: string;
    startedAt: string | null;
    finishedAt: string | null;
  };
  /** job.step_changed: the step that started (and the one before, if any). */
  step?: { name: string; phase: string; previous: string | null };
}

export interface WebhookEvent<D = JobEventData> {
  id: string;
  type: WebhookEventType;
  createdAt: string;
  tenantId: string;
  data: D;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The job part of an event's data, from the database row: no request body, nothing secret. */
export function jobEventData(job: RestoreJob, extra: Omit<JobEventData, 'job'> = {}): JobEventData {
  return {
    job: {
      id: job.id,
      kind: job.kind,
      state: job.state,
      label: job.label,
      currentStep: job.currentStep,
      progress: { percent: percent(job.bytesDone, job.bytesTotal), bytesDone: Number(job.bytesDone), bytesTotal: Number(job.bytesTotal) },
      error: job.errorCode ? { code: job.errorCode, message: job.errorMessage ?? '' } : null,
      createdAt: job.createdAt.toISOString(),
      startedAt: iso(job.startedAt),
      finishedAt: iso(job.finishedAt),
    },
    ...extra,
  };
}

export const DEFAULT_PROGRESS_STEP = 10;

/**
 * Whether a job.progress event at `percent` goes out to a webhook that last
 * got one at `lastPercent` (null: none yet), sending every `step` percent:
 * when percent reaches a multiple of step that the last one had not, and
 * 100 once. Going backwards (a step re-run) sends nothing.
 */
export function shouldSendProgress(lastPercent: number | null, percentNow: number, step: number = DEFAULT_PROGRESS_STEP): boolean {
  const s = Number.isFinite(step) && step >= 1 ? Math.min(100, Math.floor(step)) : DEFAULT_PROGRESS_STEP;
  const last = lastPercent ?? 0;
  if (!Number.isFinite(percentNow) || percentNow <= last) return false;
  if (percentNow >= 100) return last < 100;
  return Math.floor(percentNow / s) > Math.floor(last / s);
}

// A webhook's own progress step is kept in its `events` column as the entry
// "job.progress:N" (the schema has no column for it); the helpers below are
// the only code that reads or writes that encoding.
const PROGRESS_STEP_PREFIX = 'job.progress:';

export function encodeSubscriptions(events: readonly string[], progressStep: number | null): string[] {
  const out = events.filter((e) => !e.startsWith(PROGRESS_STEP_PREFIX));
  if (progressStep !== null) out.push(`${PROGRESS_STEP_PREFIX}${progressStep}`);
  return out;
}

export function decodeSubscriptions(stored: readonly string[]): { events: string[]; progressStep: number | null } {
  let progressStep: number | null = null;
  const events: string[] = [];
  for (const e of stored) {
    if (e.startsWith(PROGRESS_STEP_PREFIX)) {
      const n = Number(e.slice(PROGRESS_STEP_PREFIX.length));
      if (Number.isInteger(n) && n >= 1 && n <= 100) progressStep = n;
    } else events.push(e);
  }
  return { events, progressStep };
}

export function subscribes(stored: readonly string[], type: string): boolean {
  return stored.includes(ALL_EVENTS) || stored.includes(type);
}

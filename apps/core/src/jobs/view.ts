import type { RestoreJob, JobStep, JobEvent } from '../generated/prisma/client';
import { priorityClass, type PriorityClass } from './priority';

// How jobs look through the API (openapi.yaml RestoreJob, StepView, JobEvent).
// Pure: rows in, plain JSON out.

export interface StepView {
  name: string;
  phase: 'main' | 'cleanup';
  state: string;
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

export interface RestoreJobView {
  id: string;
  kind: 'in_place' | 'new_vm' | 'verify' | 'export';
  state: string;
  label: string | null;
  vcenter: string | null;
  source: { vm: string; point: string };
  target: { vm: string | null };
  currentStep: string | null;
  progress: { bytesDone: number; bytesTotal: number; percent: number };
  error: { code: string; message: string } | null;
  attempt: number;
  /** The priority class (the queue orders by class, then lets tenants take turns). */
  priority: PriorityClass;
  /** waiting_for_capacity: the limit it waits for. */
  waitingFor?: string | null;
  cancelRequested: boolean;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  request: Record<string, unknown>;
  steps?: StepView[];
  links: { self: string; events: string; cancel: string };
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function percent(done: bigint | number, total: bigint | number): number {
  const t = Number(total);
  if (t <= 0) return 0;
  return Math.min(100, Math.floor((Number(done) / t) * 10_000) / 100);
}

/**
 * A step result as the API shows it. A new VM's ConfigSpec carries the saved
 * extraConfig, whose guestinfo.* values often hold cloud-init data or
 * passwords: they are shown as redacted. A quick rollback's changed-area
 * lists are left out (the step's `disks` summary stays).
 */
export function redactResult(result: unknown): Record<string, unknown> | null {
  if (!result || typeof result !== 'object') return null;
  let r = result as Record<string, unknown>;
  if ('changedAreas' in r) {
    // A quick rollback's area lists (possibly millions of numbers) are for the worker; the API shows their counts.
    const { changedAreas: _areas, ...rest } = r;
    r = rest;
  }
  const spec = r.spec as { extraConfig?: Array<{ key?: unknown; value?: unknown }> } | undefined;
  if (!spec?.extraConfig) return r;
  const extraConfig = spec.extraConfig.map((o) => (typeof o.key === 'string' && o.key.startsWith('guestinfo.') ? { ...o, value: '[redacted]' } : o));
  return { ...r, spec: { ...spec, extraConfig } };
}

export function toStepView(s: JobStep): StepView {
  return {
    name: s.name,
    phase: s.phase === 'cleanup' ? 'cleanup' : 'main',
    state: s.state,
    attempt: s.attempt,
    startedAt: iso(s.startedAt),
    finishedAt: iso(s.finishedAt),
    result: redactResult(s.result),
    error: s.errorCode ? { code: s.errorCode, message: s.errorMessage ?? '' } : null,
  };
}

export function toJobView(job: RestoreJob, steps?: JobStep[]): RestoreJobView {
  const self = `/v1/restores/${job.id}`;
  const view: RestoreJobView = {
    id: job.id,
    kind: job.kind,
    state: job.state,
    label: job.label,
    vcenter: job.vcenter,
    source: { vm: job.sourceVm, point: job.sourcePoint },
    target: { vm: job.targetVm },
    currentStep: job.currentStep,
    progress: { bytesDone: Number(job.bytesDone), bytesTotal: Number(job.bytesTotal), percent: percent(job.bytesDone, job.bytesTotal) },
    error: job.errorCode ? { code: job.errorCode, message: job.errorMessage ?? '' } : null,
    attempt: job.attempt,
    priority: priorityClass(job.priority),
    waitingFor: job.state === 'waiting_for_capacity' ? job.waitReason : null,
    cancelRequested: job.cancelRequestedAt !== null,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    request: job.request as Record<string, unknown>,
    links: { self, events: `${self}/events`, cancel: `${self}/cancel` },
  };
  if (steps) {
    view.steps = [...steps]
      .sort((a, b) => (a.phase === b.phase ? a.seq - b.seq : a.phase === 'main' ? -1 : 1))
      .map(toStepView);
  }
  return view;
}

export interface JobEventView {
  id: number;
  at: string;
  type: string;
  step: string | null;
  data: Record<string, unknown> | null;
}

export function toEventView(e: JobEvent): JobEventView {
  return { id: Number(e.id), at: e.at.toISOString(), type: e.type, step: e.step, data: (e.data as Record<string, unknown> | null) ?? null };
}

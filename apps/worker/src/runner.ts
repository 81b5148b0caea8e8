import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { appendEvent, isTerminal, JobError, JOB_ERROR_CODES, metrics, observeDiskWrites, Prisma, type Db, type JobStep, type RestoreJob } from '@vmrestore/core';
import type { Plan, PlanRegistry, StepContext, StepDef } from './plan';

// The step runner. It owns the job's state in Postgres: every step's start,
// result and failure is recorded (with an event) before the next step
// starts, so a job whose worker dies resumes on another worker from its last
// recorded step, and a recorded step never runs twice.

export interface RunnerDeps {
  db: Db;
  plans: PlanRegistry;
  log: Logger;
  cancelPollMs: number;
  /** Aborted when this worker is shutting down (SIGTERM). */
  shutdown: AbortSignal;
  /** Tells the outside world (webhooks) about a job event; never fails the job. */
  notify?: Notify;
}

export type NotifyType = 'job.started' | 'job.step_changed' | 'job.progress' | 'job.succeeded' | 'job.failed' | 'job.cancelled' | 'job.cleanup_pending';
export type Notify = (jobId: string, type: NotifyType, extra?: Record<string, unknown>) => Promise<void>;

function notifier(deps: RunnerDeps, log: Logger) {
  return (jobId: string, type: NotifyType, extra?: Record<string, unknown>) => {
    if (!deps.notify) return;
    // Fire and forget: a webhook problem must never slow or fail a restore.
    deps.notify(jobId, type, extra).catch((err) => log.warn({ type, err: (err as Error).message }, 'webhook dispatch failed'));
  };
}

export interface RunInfo {
  /** 1-based BullMQ attempt of this run. */
  attempt: number;
  /** No retry follows this run: a transient failure now fails the job. */
  lastAttempt: boolean;
}

/** What a run ended with, for the BullMQ processor to act on. */
export type RunOutcome =
  | { kind: 'finished'; state: 'succeeded' | 'failed' | 'cancelled' | 'cleanup_pending' }
  | { kind: 'skipped'; reason: string }
  | { kind: 'retry'; error: JobError }
  | { kind: 'shutdown' };

const CLEANUP_TRIES = 3;
const WORKER_ID = `${hostname()}:${process.pid}`;

export function toJobError(err: unknown): JobError {
  if (err instanceof JobError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // Unknown errors are treated as transient: retrying an idempotent step is
  // safe, and attempts are bounded.
  return new JobError(JOB_ERROR_CODES.STEP_FAILED, message, false, { cause: err });
}

type StopReason = 'cancel' | 'shutdown';

export async function runJob(deps: RunnerDeps, jobId: string, info: RunInfo): Promise<RunOutcome> {
  const { db } = deps;
  const log = deps.log.child({ jobId });
  const existing = await db.restoreJob.findUnique({ where: { id: jobId } });
  if (!existing) return { kind: 'skipped', reason: 'job does not exist' };
  if (existing.state === 'cleanup_pending') return retryCleanup(deps, log, existing);
  if (isTerminal(existing.state)) return { kind: 'skipped', reason: `job already ${existing.state}` };

  const planFactory = deps.plans[existing.kind];
  const started = await db.restoreJob.updateMany({
    where: { id: jobId, state: { in: ['queued', 'running'] } },
    data: { state: 'running', attempt: { increment: 1 }, startedAt: existing.startedAt ?? new Date() },
  });
  if (started.count === 0) return { kind: 'skipped', reason: 'job ended meanwhile' };
  const job = (await db.restoreJob.findUniqueOrThrow({ where: { id: jobId } })) as RestoreJob;
  await appendEvent(db, jobId, 'job.started', null, { attempt: job.attempt, worker: WORKER_ID });
  log.info({ attempt: job.attempt, kind: job.kind }, 'job started');
  const notify = notifier(deps, log);
  notify(jobId, 'job.started', { attempt: job.attempt });

  if (!planFactory) {
    return finish(deps, log, job, 'failed', new JobError(JOB_ERROR_CODES.UNKNOWN_PLAN, `no plan for kind ${job.kind}`, true));
  }
  const plan = planFactory(job);
  const steps = await ensureStepRows(db, jobId, plan);

  // Cancel and shutdown both abort the running step through one signal; the
  // reason says which.
  const controller = new AbortController();
  let stopReason: StopReason | null = null;
  const stop = (reason: StopReason) => {
    if (stopReason) return;
    stopReason = reason;
    controller.abort(reason);
  };
  const onShutdown = () => stop('shutdown');
  deps.shutdown.addEventListener('abort', onShutdown);
  if (deps.shutdown.aborted) stop('shutdown');
  const poll = setInterval(() => {
    db.restoreJob
      .findUnique({ where: { id: jobId }, select: { cancelRequestedAt: true } })
      .then((r) => r?.cancelRequestedAt && stop('cancel'))
      .catch(() => undefined);
  }, deps.cancelPollMs);
  poll.unref();

  const results: Record<string, Record<string, unknown>> = {};
  for (const row of steps.values()) if (row.state === 'succeeded' && row.phase === 'main') results[row.name] = (row.result as Record<string, unknown>) ?? {};

  let failure: JobError | null = null;
  try {
    if (job.cancelRequestedAt) stop('cancel');
    for (const step of plan.steps) {
      const row = steps.get(key('main', step.name))!;
      if (row.state === 'succeeded') continue; // recorded: never again
      if (stopReason === null && (await cancelRequested(db, jobId))) stop('cancel');
      if (stopReason) break;
      try {
        results[step.name] = await runStep(deps, log, job, row, step, controller.signal, results);
      } catch (err) {
        if (stopReason) {
          await markStep(db, row.id, { state: 'pending', finishedAt: new Date() });
          await appendEvent(db, jobId, 'step.interrupted', step.name, { reason: stopReason });
          break;
        }
        const je = toJobError(err);
        await markStep(db, row.id, { state: 'failed', finishedAt: new Date(), errorCode: je.code, errorMessage: je.message });
        await appendEvent(db, jobId, 'step.failed', step.name, { code: je.code, message: je.message, permanent: je.permanent });
        log.warn({ step: step.name, code: je.code, err: je.message, permanent: je.permanent }, 'step failed');
        if (je.permanent) {
          failure = je;
          break;
        }
        if (info.lastAttempt) {
          failure = new JobError(je.code, `${je.message} (gave up after ${info.attempt} attempts)`, true, { cause: je });
          break;
        }
        await db.restoreJob.update({ where: { id: jobId }, data: { state: 'queued', errorCode: je.code, errorMessage: je.message } });
        await appendEvent(db, jobId, 'job.retry_scheduled', step.name, { code: je.code, attempt: info.attempt });
        return { kind: 'retry', error: je };
      }
    }
  } finally {
    clearInterval(poll);
    deps.shutdown.removeEventListener('abort', onShutdown);
  }

  if (stopReason === 'shutdown') {
    // Leave the job resumable: queued again, nothing recorded as done that was not.
    await db.restoreJob.update({ where: { id: jobId }, data: { state: 'queued' } });
    await appendEvent(db, jobId, 'worker.shutdown', null, { worker: WORKER_ID });
    log.info('worker shutting down; job left to resume');
    return { kind: 'shutdown' };
  }

  // A cancel that arrives once every step is done changes nothing: the job succeeded.
  const allDone = !failure && plan.steps.every((st) => steps.get(key('main', st.name))?.state === 'succeeded' || results[st.name] !== undefined);
  const outcome: 'succeeded' | 'failed' | 'cancelled' = allDone ? 'succeeded' : stopReason === 'cancel' ? 'cancelled' : failure ? 'failed' : 'succeeded';
  const cleanupError = await runCleanup(deps, log, job, plan, steps, results, outcome);
  if (cleanupError) {
    // Something is left behind (e.g. the temporary snapshot): the job ends
    // cleanup_pending, with the first error kept, and the sweeper retries.
    const why = failure ? `${failure.message}; then cleanup failed: ${cleanupError.message}` : `cleanup failed: ${cleanupError.message}`;
    return finish(deps, log, job, 'cleanup_pending', new JobError(failure?.code ?? JOB_ERROR_CODES.CLEANUP_FAILED, why, true));
  }
  if (outcome === 'cancelled') return finish(deps, log, job, 'cancelled', new JobError(JOB_ERROR_CODES.CANCELLED, 'cancelled by request', true));
  return finish(deps, log, job, outcome, failure);
}

/**
 * The sweeper's second chance for a cleanup_pending job: run its cleanup
 * steps again; when they pass, the job takes the state its main steps earned.
 */
async function retryCleanup(deps: RunnerDeps, log: Logger, job: RestoreJob): Promise<RunOutcome> {
  const planFactory = deps.plans[job.kind];
  if (!planFactory) return { kind: 'skipped', reason: `no plan for kind ${job.kind}` };
  const plan = planFactory(job);
  const steps = await ensureStepRows(deps.db, job.id, plan);
  const results: Record<string, Record<string, unknown>> = {};
  for (const row of steps.values()) if (row.state === 'succeeded' && row.phase === 'main') results[row.name] = (row.result as Record<string, unknown>) ?? {};
  await appendEvent(deps.db, job.id, 'job.cleanup_retry', null, { worker: WORKER_ID });
  const mainDone = plan.steps.every((s) => steps.get(key('main', s.name))?.state === 'succeeded');
  const err = await runCleanup(deps, log, job, plan, steps, results, mainDone ? 'succeeded' : job.cancelRequestedAt ? 'cancelled' : 'failed');
  if (err) {
    log.warn({ code: err.code, err: err.message }, 'cleanup still failing');
    return { kind: 'finished', state: 'cleanup_pending' };
  }
  const mainOk = plan.steps.every((s) => steps.get(key('main', s.name))?.state === 'succeeded');
  if (job.cancelRequestedAt && !mainOk) return finish(deps, log, job, 'cancelled', new JobError(JOB_ERROR_CODES.CANCELLED, 'cancelled by request', true));
  if (mainOk) return finish(deps, log, job, 'succeeded', null);
  const code = job.errorCode && job.errorCode !== JOB_ERROR_CODES.CLEANUP_FAILED ? job.errorCode : JOB_ERROR_CODES.STEP_FAILED;
  return finish(deps, log, job, 'failed', new JobError(code, (job.errorMessage ?? '').replace(/; then cleanup failed: .*$/, ''), true));
}

const key = (phase: string, name: string) => `${phase}:${name}`;

async function ensureStepRows(db: Db, jobId: string, plan: Plan): Promise<Map<string, JobStep>> {
  const wanted = [
    ...plan.steps.map((s, i) => ({ jobId, seq: i, name: s.name, phase: 'main' })),
    ...plan.cleanup.map((s, i) => ({ jobId, seq: i, name: s.name, phase: 'cleanup' })),
  ];
  const names = new Set<string>();
  for (const w of wanted) {
    const k = key(w.phase, w.name);
    if (names.has(k)) throw new Error(`plan has two ${w.phase} steps named ${w.name}`);
    names.add(k);
  }
  await db.jobStep.createMany({ data: wanted, skipDuplicates: true });
  const rows = await db.jobStep.findMany({ where: { jobId } });
  return new Map(rows.map((r) => [key(r.phase, r.name), r]));
}

async function markStep(db: Db, id: string, data: Prisma.JobStepUpdateInput) {
  await db.jobStep.update({ where: { id }, data });
}

async function cancelRequested(db: Db, jobId: string): Promise<boolean> {
  const r = await db.restoreJob.findUnique({ where: { id: jobId }, select: { cancelRequestedAt: true } });
  return Boolean(r?.cancelRequestedAt);
}

async function runStep(
  deps: RunnerDeps,
  log: Logger,
  job: RestoreJob,
  row: JobStep,
  step: StepDef,
  signal: AbortSignal,
  results: Record<string, Record<string, unknown>>,
  outcome?: StepContext['outcome'],
): Promise<Record<string, unknown>> {
  const { db } = deps;
  const attempt = row.attempt + 1;
  await markStep(db, row.id, { state: 'running', attempt, startedAt: new Date(), finishedAt: null, errorCode: null, errorMessage: null });
  if (row.phase === 'main') await db.restoreJob.update({ where: { id: job.id }, data: { currentStep: step.name } });
  await appendEvent(db, job.id, 'step.started', step.name, { phase: row.phase, attempt });
  notifier(deps, log)(job.id, 'job.step_changed', { step: step.name, phase: row.phase });
  const stepLog = log.child({ step: step.name });
  stepLog.info({ attempt, phase: row.phase }, 'step started');
  const t0 = Date.now();
  const ctx = makeContext(deps, stepLog, job, signal, results, attempt, step.name);
  if (outcome) ctx.outcome = outcome;
  // Step timings (and the bytes of write_disks) for /metrics.
  const labels = { kind: job.kind, step: step.name, phase: row.phase };
  let result: Record<string, unknown>;
  try {
    result = (await step.run(ctx)) ?? {};
  } catch (err) {
    metrics.stepDuration.observe({ ...labels, outcome: signal.aborted ? 'interrupted' : 'failed' }, (Date.now() - t0) / 1000);
    throw err;
  }
  const durationMs = Date.now() - t0;
  metrics.stepDuration.observe({ ...labels, outcome: 'succeeded' }, durationMs / 1000);
  if (step.name === 'write_disks') observeDiskWrites(job.kind, result, durationMs / 1000);
  await markStep(db, row.id, { state: 'succeeded', finishedAt: new Date(), result: result as Prisma.InputJsonValue });
  await appendEvent(db, job.id, 'step.succeeded', step.name, { phase: row.phase, durationMs });
  stepLog.info({ durationMs }, 'step succeeded');
  return result;
}

function makeContext(
  deps: RunnerDeps,
  log: Logger,
  job: RestoreJob,
  signal: AbortSignal,
  results: Record<string, Record<string, unknown>>,
  attempt: number,
  stepName: string,
): StepContext {
  const { db } = deps;
  let lastWrite = 0;
  let lastPercentEvent = -1;
  return {
    job,
    jobId: job.id,
    db,
    log,
    signal,
    results,
    attempt,
    async progress(bytesDone, bytesTotal) {
      const now = Date.now();
      const done = bytesDone >= bytesTotal;
      if (!done && now - lastWrite < 500) return; // throttled: progress is frequent, rows are not free
      lastWrite = now;
      await db.restoreJob.update({ where: { id: job.id }, data: { bytesDone: BigInt(bytesDone), bytesTotal: BigInt(bytesTotal) } });
      const pct = bytesTotal > 0 ? Math.floor((bytesDone / bytesTotal) * 20) * 5 : 0; // an event every 5 %
      if (pct !== lastPercentEvent) {
        lastPercentEvent = pct;
        await appendEvent(db, job.id, 'progress', stepName, { bytesDone, bytesTotal, percent: pct });
        notifier(deps, log)(job.id, 'job.progress', { percent: pct });
      }
    },
    recordTask(task, method) {
      appendEvent(db, job.id, 'vcenter.task', stepName, { task, method }).catch((err) => log.warn({ err: (err as Error).message }, 'could not record a vCenter task'));
    },
    checkpoint: {
      async load(diskKey) {
        const cp = await db.diskCheckpoint.findUnique({ where: { jobId_diskKey: { jobId: job.id, diskKey } } });
        if (!cp) return null;
        return { bytesDone: Number(cp.bytesDone), bytesTotal: Number(cp.bytesTotal), nextExtent: cp.nextExtent, state: (cp.state as Record<string, unknown>) ?? null };
      },
      async save(diskKey, cp) {
        const data = {
          bytesDone: BigInt(cp.bytesDone),
          bytesTotal: BigInt(cp.bytesTotal),
          nextExtent: cp.nextExtent,
          state: (cp.state ?? Prisma.DbNull) as Prisma.InputJsonValue,
        };
        await db.diskCheckpoint.upsert({ where: { jobId_diskKey: { jobId: job.id, diskKey } }, create: { jobId: job.id, diskKey, ...data }, update: data });
      },
    },
  };
}

/**
 * Cleanup steps run after success, failure and cancel, each retried a few
 * times. They get a signal of their own: a cancel must not stop the cleanup
 * it asked for. Returns the first error that survived its retries.
 */
async function runCleanup(
  deps: RunnerDeps,
  log: Logger,
  job: RestoreJob,
  plan: Plan,
  steps: Map<string, JobStep>,
  results: Record<string, Record<string, unknown>>,
  outcome: NonNullable<StepContext['outcome']>,
): Promise<JobError | null> {
  let firstError: JobError | null = null;
  for (const step of plan.cleanup) {
    let row = steps.get(key('cleanup', step.name))!;
    if (row.state === 'succeeded') continue;
    for (let tryNo = 1; ; tryNo++) {
      try {
        await runStep(deps, log, job, row, step, new AbortController().signal, results, outcome);
        break;
      } catch (err) {
        const je = toJobError(err);
        await markStep(deps.db, row.id, { state: 'failed', finishedAt: new Date(), errorCode: je.code, errorMessage: je.message });
        await appendEvent(deps.db, job.id, 'step.failed', step.name, { phase: 'cleanup', code: je.code, message: je.message, try: tryNo });
        if (je.permanent || tryNo >= CLEANUP_TRIES) {
          await appendEvent(deps.db, job.id, 'job.cleanup_pending', step.name, { code: je.code, message: je.message });
          log.error({ step: step.name, code: je.code, err: je.message }, 'cleanup step failed; left for the sweeper');
          firstError ??= je;
          break;
        }
        await new Promise((r) => setTimeout(r, 200 * 2 ** tryNo));
        row = (await deps.db.jobStep.findUniqueOrThrow({ where: { id: row.id } })) as JobStep;
      }
    }
  }
  return firstError;
}

async function finish(deps: RunnerDeps, log: Logger, job: RestoreJob, state: 'succeeded' | 'failed' | 'cancelled' | 'cleanup_pending', error: JobError | null): Promise<RunOutcome> {
  const { db } = deps;
  await db.restoreJob.update({
    where: { id: job.id },
    data: {
      state,
      finishedAt: new Date(),
      currentStep: null,
      errorCode: state === 'succeeded' ? null : (error?.code ?? null),
      errorMessage: state === 'succeeded' ? null : (error?.message ?? null),
    },
  });
  await appendEvent(db, job.id, `job.${state}`, null, error && state !== 'succeeded' ? { code: error.code, message: error.message } : undefined);
  log.info({ state, code: error?.code }, `job ${state}`);
  metrics.jobsFinished.inc({ kind: job.kind, state });
  notifier(deps, log)(job.id, `job.${state}` as NotifyType);
  return { kind: 'finished', state };
}

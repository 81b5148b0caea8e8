import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { CapacityWait, appendEvent, isDbUnavailable, isTerminal, JobError, JOB_ERROR_CODES, metrics, observeDiskWrites, Prisma, type Db, type JobStep, type RestoreJob } from '@vmrestore/core';
import type { Plan, PlanRegistry, StepContext, StepDef } from './plan';
import { MAX_REQUEUES } from './reconcile';

// The step runner. It owns the job's state in Postgres: every step's start,
// result and failure is recorded (with an event) before the next step
// starts, so a job whose worker dies resumes on another worker from its last
// recorded step, and a recorded step never runs twice.
//
// Nothing waits forever (docs/resilience.md): every step runs under a
// deadline, or, once it reports progress, under a stall rule; a step that
// passes either is aborted and fails with STEP_TIMEOUT, and the job runs its
// cleanup. When Postgres is unreachable the runner does not fail the job and
// does not go on without recording: it waits, with backoff, and resumes.

export interface RunnerDeps {
  db: Db;
  plans: PlanRegistry;
  log: Logger;
  cancelPollMs: number;
  /** Aborted when this worker is shutting down (SIGTERM). */
  shutdown: AbortSignal;
  /** Tells the outside world (webhooks) about a job event; never fails the job. */
  notify?: Notify;
  /** Step deadlines and the wait for Postgres; defaults as in apps/core/src/config.ts. */
  timeouts?: Partial<RunnerTimeouts>;
}

export interface RunnerTimeouts {
  /** Deadline of one step (VMRESTORE_STEP_TIMEOUT_MS). */
  stepMs: number;
  /** Once a step reports progress: the longest time without new progress (VMRESTORE_STALL_TIMEOUT_MS). */
  stallMs: number;
  /** How long an aborted step gets to stop before the runner goes on without it (VMRESTORE_STEP_ABORT_GRACE_MS). */
  graceMs: number;
  /** How long the runner waits for Postgres before giving the attempt up (VMRESTORE_DB_WAIT_MS). */
  dbWaitMs: number;
}

const DEFAULT_TIMEOUTS: RunnerTimeouts = { stepMs: 30 * 60_000, stallMs: 10 * 60_000, graceMs: 60_000, dbWaitMs: 10 * 60_000 };
const timeoutsOf = (deps: RunnerDeps): RunnerTimeouts => ({ ...DEFAULT_TIMEOUTS, ...deps.timeouts });

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
  /** Set by the reconciler (reconcile.ts): run no step, clean up, end the job failed with WORKER_LOST. */
  abandon?: string;
}

/** What a run ended with, for the BullMQ processor to act on. */
export type RunOutcome =
  | { kind: 'finished'; state: 'succeeded' | 'failed' | 'cancelled' | 'cleanup_pending' }
  | { kind: 'skipped'; reason: string }
  | { kind: 'retry'; error: JobError }
  | { kind: 'shutdown' }
  /** A limit is full (CapacityWait): back to the queue, delayed, no attempt spent. */
  | { kind: 'wait'; delayMs: number };

const CLEANUP_TRIES = 3;
const WORKER_ID = `${hostname()}:${process.pid}`;

export function toJobError(err: unknown): JobError {
  if (err instanceof JobError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // Unknown errors are treated as transient: retrying an idempotent step is
  // safe, and attempts are bounded.
  return new JobError(JOB_ERROR_CODES.STEP_FAILED, message, false, { cause: err });
}

// 'superseded': another run of this job claimed it (its BullMQ lock was
// lost, e.g. Redis was down longer than the lock lasts): this run stops at
// once and records nothing more.
type StopReason = 'cancel' | 'shutdown' | 'superseded';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a recording (a write or read of the job's state) and, while Postgres
 * is unreachable, waits and tries again with backoff, up to dbWaitMs; a
 * worker shutdown ends the wait. The job neither fails nor moves on
 * meanwhile: nothing happens that is not recorded.
 */
type Recorder = <T>(what: string, fn: () => Promise<T>) => Promise<T>;
function recorder(deps: RunnerDeps, log: Logger): Recorder {
  const { dbWaitMs } = timeoutsOf(deps);
  return async (what, fn) => {
    const end = Date.now() + dbWaitMs;
    let delay = 100;
    let waited = false;
    for (;;) {
      try {
        const v = await fn();
        if (waited) log.info({ what }, 'postgres is back');
        return v;
      } catch (err) {
        if (!isDbUnavailable(err) || Date.now() + delay > end || deps.shutdown.aborted) throw err;
        if (!waited) log.warn({ what, err: lastLine(err) }, 'postgres unavailable: waiting to record');
        waited = true;
        await sleep(delay);
        delay = Math.min(delay * 2, 5_000);
      }
    }
  };
}

const lastLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).trim().split('\n').at(-1);

/** How often one run re-runs a step that failed because Postgres went away under it. */
const DB_STEP_REPEATS = 20;

export async function runJob(deps: RunnerDeps, jobId: string, info: RunInfo): Promise<RunOutcome> {
  const { db } = deps;
  const log = deps.log.child({ jobId });
  const rec = recorder(deps, log);
  const existing = await rec('load job', () => db.restoreJob.findUnique({ where: { id: jobId } }));
  if (!existing) return { kind: 'skipped', reason: 'job does not exist' };
  if (existing.state === 'cleanup_pending') return retryCleanup(deps, log, existing);
  if (isTerminal(existing.state)) return { kind: 'skipped', reason: `job already ${existing.state}` };

  const planFactory = deps.plans[existing.kind];
  // The claim: `attempt` is this run's fencing token. A run that finds it
  // changed has been superseded by another claim and stops.
  const started = await rec('claim job', () => claimJob(db, jobId, existing.startedAt ?? new Date()));
  if (started.count === 0) return { kind: 'skipped', reason: 'job ended meanwhile' };
  const job = (await rec('load job', () => db.restoreJob.findUniqueOrThrow({ where: { id: jobId } }))) as RestoreJob;
  // Back from waiting for capacity: the same run of the job going on, not a new start (no event, no webhook).
  // An abandoned job is not starting either: it only runs its cleanup.
  const resumed = existing.state === 'waiting_for_capacity' || info.abandon !== undefined;
  if (!resumed) await rec('job.started', () => appendEvent(db, jobId, 'job.started', null, { attempt: job.attempt, worker: WORKER_ID }));
  log.info({ attempt: job.attempt, kind: job.kind, resumed }, info.abandon ? 'job abandoned: cleaning up' : resumed ? 'job resumed after waiting for capacity' : 'job started');
  const notify = notifier(deps, log);
  if (!resumed) notify(jobId, 'job.started', { attempt: job.attempt });

  if (!planFactory) {
    return finish(deps, log, job, 'failed', new JobError(JOB_ERROR_CODES.UNKNOWN_PLAN, `no plan for kind ${job.kind}`, true));
  }
  const plan = planFactory(job);
  const steps = await rec('step rows', () => ensureStepRows(db, jobId, plan));

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
      .findUnique(jobSignals(jobId))
      .then((r) => {
        if (r && r.attempt !== job.attempt) stop('superseded');
        else if (r?.cancelRequestedAt) stop('cancel');
      })
      .catch(() => undefined);
  }, deps.cancelPollMs);
  poll.unref();

  const results: Record<string, Record<string, unknown>> = {};
  for (const row of steps.values()) if (row.state === 'succeeded' && row.phase === 'main') results[row.name] = (row.result as Record<string, unknown>) ?? {};

  let failure: JobError | null = null;
  // Abandoned: no more steps run. A job whose main steps all did run ends as they earned (succeeded).
  if (info.abandon && !mainStepsSucceeded(plan, steps)) {
    failure = new JobError(JOB_ERROR_CODES.WORKER_LOST, `the job lost its worker too often (${info.abandon}); abandoned after ${MAX_REQUEUES} requeues`, true);
  }
  let dbRepeats = 0;
  try {
    if (job.cancelRequestedAt) stop('cancel');
    for (let i = 0; i < plan.steps.length && !info.abandon; i++) {
      const step = plan.steps[i]!;
      const row = steps.get(key('main', step.name))!;
      if (row.state === 'succeeded') continue; // recorded: never again
      const now = await rec('step boundary', () => db.restoreJob.findUnique(jobSignals(jobId)));
      if (now?.attempt !== job.attempt) stop('superseded');
      if (stopReason === null && now?.cancelRequestedAt) stop('cancel');
      if (stopReason) break;
      try {
        results[step.name] = await runStep(deps, log, job, row, step, controller.signal, results);
      } catch (err) {
        if (stopReason === 'superseded') break;
        if (stopReason) {
          await rec('step.interrupted', () => markStep(db, row.id, { state: 'pending', finishedAt: new Date() }));
          await rec('step.interrupted', () => appendEvent(db, jobId, 'step.interrupted', step.name, { reason: stopReason }));
          break;
        }
        if (isDbUnavailable(err) && dbRepeats < DB_STEP_REPEATS) {
          // Postgres went away under the step (a checkpoint it could not
          // save): not the step's fault. Wait for it, then run the step again;
          // steps are idempotent and resume from their last checkpoint.
          dbRepeats++;
          log.warn({ step: step.name, err: lastLine(err) }, 'postgres unavailable during a step: waiting, then running it again');
          await rec('step.interrupted', () => markStep(db, row.id, { state: 'pending', finishedAt: new Date() }));
          await rec('step.interrupted', () => appendEvent(db, jobId, 'step.interrupted', step.name, { reason: 'database_unavailable' }));
          steps.set(key('main', step.name), (await rec('step row', () => db.jobStep.findUniqueOrThrow({ where: { id: row.id } }))) as JobStep);
          i--;
          continue;
        }
        if (err instanceof CapacityWait) {
          // Not a failure: the step runs again when the job comes back from the queue.
          await rec('capacity.wait', () => markStep(db, row.id, { state: 'pending', finishedAt: new Date() }));
          await rec('capacity.wait', () => db.restoreJob.update({ where: { id: jobId }, data: { state: 'waiting_for_capacity', waitReason: err.reason } }));
          const last = await rec('capacity.wait', () => db.jobEvent.findFirst({ where: { jobId, type: 'capacity.wait' }, orderBy: { id: 'desc' } }));
          if ((last?.data as { reason?: string } | null)?.reason !== err.reason) {
            await rec('capacity.wait', () => appendEvent(db, jobId, 'capacity.wait', step.name, { reason: err.reason, resource: err.resource }));
          }
          log.info({ step: step.name, reason: err.reason }, 'waiting for capacity');
          return { kind: 'wait', delayMs: err.retryMs };
        }
        const je = toJobError(err);
        await rec('step.failed', () => markStep(db, row.id, { state: 'failed', finishedAt: new Date(), errorCode: je.code, errorMessage: je.message }));
        await rec('step.failed', () => appendEvent(db, jobId, 'step.failed', step.name, { code: je.code, message: je.message, permanent: je.permanent }));
        log.warn({ step: step.name, code: je.code, err: je.message, permanent: je.permanent }, 'step failed');
        if (je.permanent) {
          failure = je;
          break;
        }
        if (info.lastAttempt) {
          failure = new JobError(je.code, `${je.message} (gave up after ${info.attempt} attempts)`, true, { cause: je });
          break;
        }
        await rec('job.retry_scheduled', () => db.restoreJob.update({ where: { id: jobId }, data: { state: 'queued', errorCode: je.code, errorMessage: je.message } }));
        await rec('job.retry_scheduled', () => appendEvent(db, jobId, 'job.retry_scheduled', step.name, { code: je.code, attempt: info.attempt }));
        return { kind: 'retry', error: je };
      }
    }
  } finally {
    clearInterval(poll);
    deps.shutdown.removeEventListener('abort', onShutdown);
  }

  if (stopReason === 'superseded') {
    log.warn({ attempt: job.attempt }, 'another run claimed this job: stopping without recording more');
    return { kind: 'skipped', reason: 'superseded by another run of the job' };
  }
  if (stopReason === 'shutdown') {
    // Leave the job resumable: queued again, nothing recorded as done that was not.
    await rec('worker.shutdown', () => db.restoreJob.update({ where: { id: jobId }, data: { state: 'queued' } }));
    await rec('worker.shutdown', () => appendEvent(db, jobId, 'worker.shutdown', null, { worker: WORKER_ID }));
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
  const rec = recorder(deps, log);
  const steps = await rec('step rows', () => ensureStepRows(deps.db, job.id, plan));
  const results: Record<string, Record<string, unknown>> = {};
  for (const row of steps.values()) if (row.state === 'succeeded' && row.phase === 'main') results[row.name] = (row.result as Record<string, unknown>) ?? {};
  await rec('job.cleanup_retry', () => appendEvent(deps.db, job.id, 'job.cleanup_retry', null, { worker: WORKER_ID }));
  // Cleanup touches only cleanup rows: the main steps' record is the same before and after it.
  const mainOk = mainStepsSucceeded(plan, steps);
  const err = await runCleanup(deps, log, job, plan, steps, results, mainOk ? 'succeeded' : job.cancelRequestedAt ? 'cancelled' : 'failed');
  if (err) {
    log.warn({ code: err.code, err: err.message }, 'cleanup still failing');
    return { kind: 'finished', state: 'cleanup_pending' };
  }
  if (job.cancelRequestedAt && !mainOk) return finish(deps, log, job, 'cancelled', new JobError(JOB_ERROR_CODES.CANCELLED, 'cancelled by request', true));
  if (mainOk) return finish(deps, log, job, 'succeeded', null);
  const code = job.errorCode && job.errorCode !== JOB_ERROR_CODES.CLEANUP_FAILED ? job.errorCode : JOB_ERROR_CODES.STEP_FAILED;
  return finish(deps, log, job, 'failed', new JobError(code, (job.errorMessage ?? '').replace(/; then cleanup failed: .*$/, ''), true));
}

const key = (phase: string, name: string) => `${phase}:${name}`;

/** Every main step of the plan is recorded succeeded. */
const mainStepsSucceeded = (plan: Plan, steps: Map<string, JobStep>) => plan.steps.every((s) => steps.get(key('main', s.name))?.state === 'succeeded');

/** The claim: a job still on (queued, running, waiting) becomes running under a new attempt, its fencing token. */
function claimJob(db: Db, jobId: string, startedAt: Date) {
  return db.restoreJob.updateMany({
    where: { id: jobId, state: { in: ['queued', 'running', 'waiting_for_capacity'] } },
    data: { state: 'running', waitReason: null, attempt: { increment: 1 }, startedAt },
  });
}

/** What a running job polls: a cancel request, and whether its attempt was superseded. */
const jobSignals = (jobId: string) => ({ where: { id: jobId }, select: { cancelRequestedAt: true, attempt: true } }) as const;

/**
 * Runs, for a job id that matches nothing, the queries that start a job, so
 * the first job after a worker starts (the first of a site-wide restore,
 * often) does not pay for the database pool's first connections and each
 * query's first preparation (measured in bench/e2e: 0.43-1.05 s from the
 * request to the first step on a fresh worker, 0.10-0.15 s warmed). Bounded
 * by `maxMs`; a database that does not answer is the runner's business
 * later, not here.
 */
export async function warmUp(db: Db, maxMs = 5_000): Promise<void> {
  const none = '00000000-0000-0000-0000-000000000000';
  const queries = (async () => {
    await db.restoreJob.findUnique({ where: { id: none } });
    await claimJob(db, none, new Date());
    await db.jobStep.findMany({ where: { jobId: none } });
    await db.restoreJob.findUnique(jobSignals(none));
  })().catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([queries, new Promise<void>((r) => (timer = setTimeout(r, maxMs)))]);
  clearTimeout(timer);
}

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

/**
 * A step's own deadline, and the job's signal (cancel, shutdown) combined
 * into the one signal the step sees. The deadline is the step timeout until
 * the step reports progress; from then on, the stall timeout counted from
 * the latest progress. When either passes the signal is aborted; a step
 * that does not stop within the grace period is left behind (`expired`
 * rejects) so that no job waits on it forever.
 */
function stepDeadline(t: RunnerTimeouts, parent: AbortSignal, stepName: string) {
  const ctl = new AbortController();
  let timedOut: JobError | null = null;
  let rejectExpired: (e: unknown) => void = () => undefined;
  const expired = new Promise<never>((_, reject) => (rejectExpired = reject));
  expired.catch(() => undefined);
  let grace: NodeJS.Timeout | undefined;
  const startGrace = (err: unknown) => {
    grace ??= setTimeout(() => rejectExpired(err), t.graceMs);
    grace.unref();
  };
  let stalling = false;
  let lastBytes = -1;
  const fire = () => {
    timedOut = new JobError(
      JOB_ERROR_CODES.STEP_TIMEOUT,
      stalling ? `step ${stepName}: no progress for ${t.stallMs} ms (VMRESTORE_STALL_TIMEOUT_MS)` : `step ${stepName}: not finished within ${t.stepMs} ms (VMRESTORE_STEP_TIMEOUT_MS)`,
      true,
    );
    ctl.abort(timedOut);
    startGrace(timedOut);
  };
  let timer = setTimeout(fire, t.stepMs);
  timer.unref();
  const onParent = () => {
    ctl.abort(parent.reason);
    startGrace(new Error(`step ${stepName} did not stop within ${t.graceMs} ms of ${String(parent.reason)}`));
  };
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  return {
    signal: ctl.signal,
    expired,
    timedOut: () => timedOut,
    /** Progress: bytes done so far; more than before re-arms the stall rule. */
    alive(bytesDone: number) {
      if (timedOut || bytesDone <= lastBytes) return;
      lastBytes = bytesDone;
      stalling = true;
      clearTimeout(timer);
      timer = setTimeout(fire, t.stallMs);
      timer.unref();
    },
    dispose() {
      clearTimeout(timer);
      if (grace) clearTimeout(grace);
      parent.removeEventListener('abort', onParent);
    },
  };
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
  const rec = recorder(deps, log);
  const attempt = row.attempt + 1;
  // Recorded before the step does anything: a step never acts unrecorded.
  await rec('step.started', () => markStep(db, row.id, { state: 'running', attempt, startedAt: new Date(), finishedAt: null, errorCode: null, errorMessage: null }));
  if (row.phase === 'main') await rec('step.started', () => db.restoreJob.update({ where: { id: job.id }, data: { currentStep: step.name } }));
  await rec('step.started', () => appendEvent(db, job.id, 'step.started', step.name, { phase: row.phase, attempt }));
  notifier(deps, log)(job.id, 'job.step_changed', { step: step.name, phase: row.phase });
  const stepLog = log.child({ step: step.name });
  stepLog.info({ attempt, phase: row.phase }, 'step started');
  const t0 = Date.now();
  const deadline = stepDeadline(timeoutsOf(deps), signal, step.name);
  const ctx = makeContext(deps, stepLog, job, deadline.signal, results, attempt, step.name, deadline.alive);
  if (outcome) ctx.outcome = outcome;
  // Step timings (and the bytes of write_disks) for /metrics.
  const labels = { kind: job.kind, step: step.name, phase: row.phase };
  let result: Record<string, unknown>;
  try {
    result = (await Promise.race([step.run(ctx), deadline.expired])) ?? {};
  } catch (err) {
    const timedOut = deadline.timedOut();
    metrics.stepDuration.observe({ ...labels, outcome: timedOut ? 'timed_out' : signal.aborted ? 'interrupted' : 'failed' }, (Date.now() - t0) / 1000);
    if (timedOut) stepLog.warn({ code: timedOut.code, err: timedOut.message }, 'step timed out');
    throw timedOut ? new JobError(timedOut.code, timedOut.message, timedOut.permanent, { cause: err }) : err;
  } finally {
    deadline.dispose();
  }
  const durationMs = Date.now() - t0;
  metrics.stepDuration.observe({ ...labels, outcome: 'succeeded' }, durationMs / 1000);
  if (step.name === 'write_disks') observeDiskWrites(job.kind, result, durationMs / 1000);
  await rec('step.succeeded', () => markStep(db, row.id, { state: 'succeeded', finishedAt: new Date(), result: result as Prisma.InputJsonValue }));
  await rec('step.succeeded', () => appendEvent(db, job.id, 'step.succeeded', step.name, { phase: row.phase, durationMs }));
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
  alive: (bytesDone: number) => void,
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
      alive(bytesDone); // feeds the stall rule, before any throttling
      const now = Date.now();
      const done = bytesDone >= bytesTotal;
      if (!done && now - lastWrite < 500) return; // throttled: progress is frequent, rows are not free
      lastWrite = now;
      try {
        await db.restoreJob.update({ where: { id: job.id }, data: { bytesDone: BigInt(bytesDone), bytesTotal: BigInt(bytesTotal) } });
        const pct = bytesTotal > 0 ? Math.floor((bytesDone / bytesTotal) * 20) * 5 : 0; // an event every 5 %
        if (pct !== lastPercentEvent) {
          lastPercentEvent = pct;
          await appendEvent(db, job.id, 'progress', stepName, { bytesDone, bytesTotal, percent: pct });
          notifier(deps, log)(job.id, 'job.progress', { percent: pct });
        }
      } catch (err) {
        // Progress is for watchers: losing one report to a Postgres outage
        // must not fail the write (its checkpoints are what must be recorded).
        if (!isDbUnavailable(err)) throw err;
        lastWrite = 0;
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
  let dbRepeats = 0;
  const rec = recorder(deps, log);
  for (const step of plan.cleanup) {
    let row = steps.get(key('cleanup', step.name))!;
    if (row.state === 'succeeded') continue;
    for (let tryNo = 1; ; tryNo++) {
      try {
        await runStep(deps, log, job, row, step, new AbortController().signal, results, outcome);
        break;
      } catch (err) {
        const je = toJobError(err);
        await rec('step.failed', () => markStep(deps.db, row.id, { state: 'failed', finishedAt: new Date(), errorCode: je.code, errorMessage: je.message }));
        await rec('step.failed', () => appendEvent(deps.db, job.id, 'step.failed', step.name, { phase: 'cleanup', code: je.code, message: je.message, try: tryNo }));
        // Postgres gone under a cleanup step (it came back: the recordings
        // above waited for it): try again without spending a try.
        if (isDbUnavailable(err) && dbRepeats++ < DB_STEP_REPEATS) {
          tryNo--;
          row = (await rec('step row', () => deps.db.jobStep.findUniqueOrThrow({ where: { id: row.id } }))) as JobStep;
          continue;
        }
        if (je.permanent || tryNo >= CLEANUP_TRIES) {
          await rec('job.cleanup_pending', () => appendEvent(deps.db, job.id, 'job.cleanup_pending', step.name, { code: je.code, message: je.message }));
          log.error({ step: step.name, code: je.code, err: je.message }, 'cleanup step failed; left for the sweeper');
          firstError ??= je;
          break;
        }
        await sleep(200 * 2 ** tryNo);
        row = (await rec('step row', () => deps.db.jobStep.findUniqueOrThrow({ where: { id: row.id } }))) as JobStep;
      }
    }
  }
  return firstError;
}

async function finish(deps: RunnerDeps, log: Logger, job: RestoreJob, state: 'succeeded' | 'failed' | 'cancelled' | 'cleanup_pending', error: JobError | null): Promise<RunOutcome> {
  const { db } = deps;
  const rec = recorder(deps, log);
  // Fenced by the claim's attempt: a superseded run cannot end the job.
  const ended = await rec(`job.${state}`, () =>
    db.restoreJob.updateMany({
      where: { id: job.id, attempt: job.attempt },
      data: {
        state,
        finishedAt: new Date(),
        currentStep: null,
        errorCode: state === 'succeeded' ? null : (error?.code ?? null),
        errorMessage: state === 'succeeded' ? null : (error?.message ?? null),
      },
    }),
  );
  if (ended.count === 0) {
    log.warn({ state }, 'another run claimed this job: its end is not recorded by this one');
    return { kind: 'skipped', reason: 'superseded by another run of the job' };
  }
  await rec(`job.${state}`, () => appendEvent(db, job.id, `job.${state}`, null, error && state !== 'succeeded' ? { code: error.code, message: error.message } : undefined));
  log.info({ state, code: error?.code }, `job ${state}`);
  metrics.jobsFinished.inc({ kind: job.kind, state });
  notifier(deps, log)(job.id, `job.${state}` as NotifyType);
  return { kind: 'finished', state };
}

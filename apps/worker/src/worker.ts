import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import {
  createDb,
  createRedis,
  createRestoreQueue,
  createWebhookQueue,
  dispatchEvent,
  jobEventData,
  observeQueueWait,
  QUEUE_CONTRACT,
  type Config,
  type Db,
  type QueuePayloads,
} from '@vmrestore/core';
import type { PlanRegistry } from './plan';
import { runJob, warmUp, type Notify } from './runner';
import { startOrphanSweeper } from './orphans';
import { reconcileQueue } from './reconcile';

export interface WorkerOptions {
  config: Config;
  plans: PlanRegistry;
  log: Logger;
  /** Called last when the worker closes (plans' own resources). */
  onClose?: () => Promise<void> | void;
  /** Only requeue and sweep this tenant's jobs (tests sharing one database). */
  scopeTenantId?: string;
}

export interface RunningWorker {
  /** Stops taking jobs, lets the running ones reach a step boundary, closes connections. */
  close(): Promise<void>;
  readonly db: Db;
}

type Handler = (job: Job<QueuePayloads['restore']>, token: string | undefined) => Promise<unknown>;

export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const { config, plans, log } = opts;
  const db = createDb(config.databaseUrl);
  await warmUp(db);
  const connection = createRedis(config.redisUrl, 'worker');
  const producer = createRedis(config.redisUrl, 'producer');
  const queue = createRestoreQueue(producer, config);
  queue.on('error', () => undefined);
  const webhooks = createWebhookQueue(producer, config);
  webhooks.on('error', () => undefined);
  const shutdown = new AbortController();
  // Job events → webhook deliveries (sent by the webhook worker, signed, retried).
  const notify: Notify = async (jobId, type, extra) => {
    const job = await db.restoreJob.findUnique({ where: { id: jobId } });
    if (job) await dispatchEvent(db, webhooks, job.tenantId, type, jobEventData(job, extra));
  };

  const handlers: Record<string, Handler> = {
    [QUEUE_CONTRACT.restore.jobName]: async (job, token) => {
      const attempts = job.opts.attempts ?? 1;
      const outcome = await runJob(
        {
          db,
          plans,
          log,
          cancelPollMs: config.worker.cancelPollMs,
          shutdown: shutdown.signal,
          notify,
          timeouts: { stepMs: config.worker.stepTimeoutMs, stallMs: config.worker.stallTimeoutMs, graceMs: config.worker.stepAbortGraceMs, dbWaitMs: config.worker.dbWaitMs },
        },
        job.data.jobId,
        { attempt: job.attemptsMade + 1, lastAttempt: job.attemptsMade + 1 >= attempts, ...(job.data.abandon ? { abandon: job.data.abandon } : {}) },
      );
      switch (outcome.kind) {
        case 'retry':
          throw new Error(`${outcome.error.code}: ${outcome.error.message}`); // BullMQ retries with backoff
        case 'shutdown':
          // Back to the queue without spending an attempt, for any worker to resume.
          await job.moveToDelayed(Date.now() + 100, token);
          throw new DelayedError();
        case 'wait':
          // A limit is full: back to the queue for a while (jittered, so waiting jobs do not all wake at once).
          await job.moveToDelayed(Date.now() + Math.round(outcome.delayMs * (0.75 + Math.random() / 2)), token);
          throw new DelayedError();
        default:
          return outcome;
      }
    },
  };
  // Refuse to start when the contract names a job this worker cannot run.
  for (const q of Object.values(QUEUE_CONTRACT)) {
    if (!handlers[q.jobName]) throw new Error(`worker has no handler for job ${q.jobName}`);
  }

  const worker = new Worker<QueuePayloads['restore']>(
    'restore',
    async (job, token) => {
      observeQueueWait('restore', job);
      const handler = handlers[job.name];
      if (!handler) throw new UnrecoverableError(`no handler for job ${job.name}`);
      return handler(job, token);
    },
    {
      connection,
      prefix: config.queue.prefix,
      concurrency: config.worker.concurrency,
      lockDuration: config.queue.lockDurationMs,
      stalledInterval: config.queue.stalledIntervalMs,
      // Each crash of a worker mid-job counts as a stall; a job survives several.
      maxStalledCount: 5,
    },
  );
  worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));
  worker.on('failed', (job, err) => log.warn({ jobId: job?.data.jobId, err: err.message }, 'queue attempt failed'));

  // The reconciler (reconcile.ts): a job Postgres has on (queued, running,
  // waiting) but the queue does not (enqueue failed, entry lost, or ended
  // without the job's end recorded) is queued again.
  const scope = opts.scopeTenantId ? { tenantId: opts.scopeTenantId } : {};
  const every = (ms: number, fn: () => void) => {
    if (ms <= 0) return null;
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  };
  let reconciling = false;
  const requeue = every(config.worker.requeueIntervalMs, () => {
    if (reconciling) return;
    reconciling = true;
    reconcileQueue({ db, queue, log, tenantId: opts.scopeTenantId })
      .catch((err) => log.warn({ err: (err as Error).message }, 'requeue sweep failed'))
      .finally(() => (reconciling = false));
  });

  // The sweeper: jobs whose cleanup kept failing (a temporary snapshot left
  // behind) get their cleanup steps run again, until they pass.
  const sweep = every(config.worker.sweepIntervalMs, () => {
    db.restoreJob
      .findMany({ where: { ...scope, state: 'cleanup_pending', updatedAt: { lt: new Date(Date.now() - config.worker.sweepIntervalMs / 2) } }, select: { id: true }, take: 100 })
      .then(async (rows) => {
        for (const r of rows) {
          await db.restoreJob.update({ where: { id: r.id }, data: { updatedAt: new Date() } });
          await queue.add(QUEUE_CONTRACT.restore.jobName, { jobId: r.id }, { jobId: `${r.id}.sweep.${Date.now()}`, attempts: 1 });
          log.info({ jobId: r.id }, 'sweeper: retrying cleanup');
        }
      })
      .catch((err) => log.warn({ err: (err as Error).message }, 'sweep failed'));
  });

  await worker.waitUntilReady();
  // What jobs that died left in vCenter and vm_locks (docs/orphans.md): one worker at a time, under a lease.
  const orphans = startOrphanSweeper({ config, db, log, tenantId: opts.scopeTenantId ?? config.worker.orphanSweepTenantId });
  log.info({ concurrency: config.worker.concurrency, prefix: config.queue.prefix }, 'worker ready');

  return {
    db,
    async close() {
      if (requeue) clearInterval(requeue);
      if (sweep) clearInterval(sweep);
      shutdown.abort();
      await orphans.close();
      await worker.close();
      await queue.close().catch(() => undefined);
      await webhooks.close().catch(() => undefined);
      connection.disconnect();
      producer.disconnect();
      await db.$disconnect();
      await opts.onClose?.();
    },
  };
}

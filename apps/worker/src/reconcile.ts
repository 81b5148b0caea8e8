import type { Logger } from 'pino';
import { appendEvent, enqueueRestore, type Db, type RestoreQueue } from '@vmrestore/core';

// The reconciler (docs/resilience.md): Postgres says what each job is, the
// queue says which worker runs it. The two can disagree after a crash:
//
// - a job recorded `queued` whose enqueue failed (Redis down at that moment);
// - a job `running` or `waiting_for_capacity` whose queue entry is gone
//   (Redis lost its last second of writes) or has ended while the row did
//   not: its run's final write was lost (Postgres crashed with that commit
//   unflushed), or BullMQ failed the entry (stalled more often than allowed:
//   workers kept dying under it).
//
// Such a job is queued again: a run resumes from its recorded steps, so
// running it again is safe. A job requeued MAX_REQUEUES times is not given
// another full run: it is queued to be abandoned (the runner runs its cleanup
// and ends it `failed` with WORKER_LOST), so a job that kills its workers
// cannot loop forever.

/** Full runs given back to a job whose queue entry ended without its end recorded. */
export const MAX_REQUEUES = 3;
/** A row younger than this is left alone: its enqueue may still be on its way. */
const MIN_AGE_MS = 5_000;
const ACTIVE = ['queued', 'running', 'waiting_for_capacity'] as const;
/** Queue states in which a worker has the job or will take it. */
const LIVE = new Set(['active', 'waiting', 'waiting-children', 'delayed', 'prioritized']);

export interface ReconcileResult {
  requeued: string[];
  abandoned: string[];
}

export async function reconcileQueue(opts: { db: Db; queue: RestoreQueue; log: Logger; tenantId?: string; now?: Date }): Promise<ReconcileResult> {
  const { db, queue, log } = opts;
  const now = opts.now ?? new Date();
  const rows = await db.restoreJob.findMany({
    where: { ...(opts.tenantId ? { tenantId: opts.tenantId } : {}), state: { in: [...ACTIVE] }, updatedAt: { lt: new Date(now.getTime() - MIN_AGE_MS) } },
    select: { id: true, priority: true, state: true, attempt: true, updatedAt: true },
    orderBy: { createdAt: 'asc' },
    take: 500,
  });
  const result: ReconcileResult = { requeued: [], abandoned: [] };
  for (const r of rows) {
    const entry = await queue.getJob(r.id);
    const entryState = entry ? await entry.getState() : 'missing';
    if (LIVE.has(entryState)) continue;
    // A `queued` row without an entry is the enqueue that failed: the plain requeue, no bookkeeping.
    if (r.state === 'queued' && entryState === 'missing') {
      await enqueueRestore(queue, r.id, r.priority);
      log.info({ jobId: r.id }, 'requeued job missing from the queue');
      result.requeued.push(r.id);
      continue;
    }
    // The entry ended (or vanished) while the row says the job is on. Read the
    // row again: a run that just ended writes its row before its entry ends,
    // so a row still unchanged now was not ended by any run.
    const again = await db.restoreJob.findUnique({ where: { id: r.id }, select: { state: true, attempt: true, updatedAt: true } });
    if (!again || again.state !== r.state || again.attempt !== r.attempt || again.updatedAt.getTime() !== r.updatedAt.getTime()) continue;
    const previous = await db.jobEvent.count({ where: { jobId: r.id, type: 'job.requeued' } });
    const abandon = previous >= MAX_REQUEUES;
    const reason = entryState === 'missing' ? 'queue_entry_missing' : entryState === 'failed' ? 'queue_entry_failed' : 'end_not_recorded';
    const failedReason = entryState === 'failed' ? entry?.failedReason : undefined;
    if (entry) await entry.remove().catch(() => undefined);
    await appendEvent(db, r.id, 'job.requeued', null, { reason, queueState: entryState, ...(failedReason ? { queueError: failedReason } : {}), requeues: previous + 1, abandon });
    await enqueueRestore(queue, r.id, r.priority, abandon ? { abandon: reason } : {});
    if (abandon) {
      log.warn({ jobId: r.id, reason, queueState: entryState, requeues: previous }, 'job lost its run too often: queued to be abandoned (cleanup, then failed WORKER_LOST)');
      result.abandoned.push(r.id);
    } else {
      log.warn({ jobId: r.id, reason, queueState: entryState, state: r.state }, 'job on in the database but not in the queue: queued again');
      result.requeued.push(r.id);
    }
  }
  return result;
}

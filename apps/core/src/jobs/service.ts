import type { Db } from '../db';
import { Prisma } from '../generated/prisma/client';
import type { RestoreJob, JobStep, JobEvent } from '../generated/prisma/client';
import { AppError } from '../errors';
import { decodeCursor, encodeCursor } from './cursor';
import { requestHash } from './request-hash';
import { fairPriority, type PriorityClass } from './priority';

// Restore jobs as the API sees them: create (idempotent), read, list, cancel,
// and the event timeline. The worker's side (steps, checkpoints) is in
// apps/worker. Every query is scoped by tenant: another tenant's job is
// indistinguishable from a job that does not exist.

export interface RestoreRequestBody {
  kind: 'in_place' | 'new_vm';
  vcenter: string;
  source: { vm: string; point: string };
  target?: { vm?: string; name?: string; folder?: string; resourcePool?: string; host?: string; datastore?: string };
  options?: Record<string, unknown>;
  label?: string;
  /** dr before normal before test; tenants take turns within a class (priority.ts). */
  priority?: PriorityClass;
  dryRun?: boolean;
}

export const TERMINAL_STATES = ['succeeded', 'failed', 'cancelled', 'cleanup_pending'] as const;
/** A job in these states still holds (or will hold) its VM: one active in-place restore per VM (the partial unique index lists them too). */
export const ACTIVE_STATES = ['queued', 'running', 'cleanup_pending', 'waiting_for_capacity'] as const;
export const isTerminal = (state: string) => (TERMINAL_STATES as readonly string[]).includes(state);

/** Rules across fields that a JSON schema cannot say clearly. */
export function checkRestoreRequest(body: RestoreRequestBody): void {
  if (body.kind === 'in_place' && !body.target?.vm) {
    throw new AppError('VALIDATION_FAILED', 'an in_place restore needs target.vm, the VM to restore', [
      { in: 'body', field: 'target.vm', message: 'is required when kind is in_place' },
    ]);
  }
  if (body.kind === 'new_vm' && body.options?.mode === 'quick_rollback') {
    throw new AppError('VALIDATION_FAILED', 'a quick rollback rewrites what changed on an existing VM; a new VM has nothing to roll back', [
      { in: 'body', field: 'options.mode', message: 'quick_rollback needs kind in_place' },
    ]);
  }
  if (body.kind === 'new_vm' && body.options?.verifyBackup !== undefined) {
    throw new AppError('VALIDATION_FAILED', 'verifyBackup guards an existing VM before its power off; a new VM has none (a failed new VM is removed)', [
      { in: 'body', field: 'options.verifyBackup', message: 'only for kind in_place' },
    ]);
  }
  if (body.kind === 'new_vm' && body.target?.vm) {
    throw new AppError('VALIDATION_FAILED', 'a new_vm restore creates its VM; target.vm names an existing one', [
      { in: 'body', field: 'target.vm', message: 'must not be set when kind is new_vm (use target.name)' },
    ]);
  }
}

export interface CreateResult {
  job: RestoreJob;
  replayed: boolean;
}

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002';
}

async function replay(db: Db, tenantId: string, key: string, hash: string): Promise<CreateResult | null> {
  const existing = await db.idempotencyKey.findUnique({ where: { tenantId_key: { tenantId, key } }, include: { job: true } });
  if (!existing) return null;
  if (existing.requestHash !== hash) {
    throw new AppError('IDEMPOTENCY_KEY_REUSED', `Idempotency-Key "${key}" was first used with a different request body`, [
      { in: 'header', field: 'Idempotency-Key', message: 'was already used with a different body' },
    ]);
  }
  return { job: existing.job, replayed: true };
}

export async function createRestoreJob(db: Db, tenantId: string, body: RestoreRequestBody, idempotencyKey?: string): Promise<CreateResult> {
  checkRestoreRequest(body);
  const hash = requestHash(body);
  if (idempotencyKey) {
    const prior = await replay(db, tenantId, idempotencyKey, hash);
    if (prior) return prior;
  }
  const priority = await fairPriority(db, tenantId, body.priority ?? 'normal');
  try {
    const job = await db.$transaction(async (tx) => {
      const created = await tx.restoreJob.create({
        data: {
          tenantId,
          priority,
          kind: body.kind,
          request: body as unknown as Prisma.InputJsonValue,
          vcenter: body.vcenter,
          targetVm: body.target?.vm ?? null,
          sourceVm: body.source.vm,
          sourcePoint: body.source.point,
          label: body.label ?? null,
        },
      });
      await tx.jobEvent.create({ data: { jobId: created.id, type: 'job.queued' } });
      if (idempotencyKey) await tx.idempotencyKey.create({ data: { tenantId, key: idempotencyKey, requestHash: hash, jobId: created.id } });
      return created;
    });
    return { job, replayed: false };
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // Two requests with the same key at once: the loser replays the winner.
    if (idempotencyKey) {
      const prior = await replay(db, tenantId, idempotencyKey, hash);
      if (prior) return prior;
    }
    // restore_jobs_one_active_per_vm: one active in-place restore per VM.
    if (body.kind === 'in_place' && body.target?.vm) {
      const active = await db.restoreJob.findFirst({
        where: { tenantId, kind: 'in_place', vcenter: body.vcenter, targetVm: body.target.vm, state: { in: [...ACTIVE_STATES] } },
      });
      if (active) {
        throw new AppError('RESTORE_CONFLICT', `restore job ${active.id} (${active.state}) is already restoring ${body.target.vm} on ${body.vcenter}`, [
          { in: 'body', field: 'target.vm', message: `has an active restore: ${active.id}` },
        ]);
      }
    }
    throw err;
  }
}

/**
 * A job on a restore point that involves no vCenter (verify, export): in the
 * lowest priority class (they never delay a restore), queued with its event.
 */
async function createPointJob(
  db: Db,
  tenantId: string,
  kind: 'verify' | 'export',
  source: { vm: string; point: string },
  request: Record<string, unknown>,
  label: string | null,
): Promise<RestoreJob> {
  const priority = await fairPriority(db, tenantId, 'test');
  return db.$transaction(async (tx) => {
    const created = await tx.restoreJob.create({
      data: { tenantId, priority, kind, request: { kind, ...request } as Prisma.InputJsonValue, vcenter: null, sourceVm: source.vm, sourcePoint: source.point, label },
    });
    await tx.jobEvent.create({ data: { jobId: created.id, type: 'job.queued' } });
    return created;
  });
}

/** A chain verification, run by a worker like a restore (kind `verify`). */
export function createVerifyJob(db: Db, tenantId: string, vm: string, point: string, options: { checksums: boolean }): Promise<RestoreJob> {
  return createPointJob(db, tenantId, 'verify', { vm, point }, { source: { vm, point }, options }, null);
}

/** An export of a restore point as standalone VMDK files (kind `export`): no vCenter involved. */
export function createExportJob(
  db: Db,
  tenantId: string,
  body: { source: { vm: string; point: string }; target: { directory: string }; options?: { incrementalOrder?: 'backward' | 'forward' }; label?: string },
): Promise<RestoreJob> {
  return createPointJob(db, tenantId, 'export', body.source, body, body.label ?? null);
}

export async function findJob(db: Db, tenantId: string, id: string): Promise<RestoreJob> {
  const job = await db.restoreJob.findFirst({ where: { id, tenantId } });
  if (!job) throw new AppError('RESTORE_NOT_FOUND', `restore job ${id} does not exist`);
  return job;
}

export async function getJobWithSteps(db: Db, tenantId: string, id: string): Promise<{ job: RestoreJob; steps: JobStep[] }> {
  const job = await db.restoreJob.findFirst({ where: { id, tenantId }, include: { steps: true } });
  if (!job) throw new AppError('RESTORE_NOT_FOUND', `restore job ${id} does not exist`);
  const { steps, ...rest } = job;
  return { job: rest as RestoreJob, steps };
}

export interface ListQuery {
  state?: string;
  vm?: string;
  limit: number;
  cursor?: string;
}

export async function listJobs(db: Db, tenantId: string, q: ListQuery): Promise<{ items: RestoreJob[]; nextCursor: string | null }> {
  const where: Prisma.RestoreJobWhereInput = { tenantId };
  if (q.state) where.state = q.state as RestoreJob['state'];
  if (q.vm) where.OR = [{ targetVm: q.vm }, { sourceVm: q.vm }];
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    if (!c) throw new AppError('VALIDATION_FAILED', 'cursor is not one this service returned', [{ in: 'query', field: 'cursor', message: 'is not a valid cursor' }]);
    where.AND = [{ OR: [{ createdAt: { lt: c.createdAt } }, { createdAt: c.createdAt, id: { lt: c.id } }] }];
  }
  const rows = await db.restoreJob.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: q.limit + 1 });
  const items = rows.slice(0, q.limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > q.limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
}

/**
 * Records a cancel. A job that never started ends `cancelled` here and now
 * (it has done nothing to undo); any other is stopped by its worker at the
 * next step boundary, which then runs cleanup (a job waiting for a retry is
 * picked up at once for that: see the API's cancel route). Returns whether the job was still queued
 * so the caller can also drop it from the queue.
 */
export async function requestCancel(db: Db, tenantId: string, id: string): Promise<{ job: RestoreJob; wasQueued: boolean }> {
  const job = await findJob(db, tenantId, id);
  if (isTerminal(job.state)) throw new AppError('JOB_ALREADY_FINISHED', `restore job ${id} has already ended (${job.state})`);
  const now = new Date();
  if (!job.cancelRequestedAt) {
    await db.restoreJob.updateMany({ where: { id, cancelRequestedAt: null }, data: { cancelRequestedAt: now } });
    await appendEvent(db, id, 'job.cancel_requested');
  }
  // Only a job that never started can end here: one that ran (it is queued
  // again for a retry, or after a worker shutdown) may have a temporary
  // snapshot or a VM to clean up, so its worker must run the cleanup.
  const done = await db.restoreJob.updateMany({
    where: { id, state: 'queued', startedAt: null },
    data: { state: 'cancelled', finishedAt: now, errorCode: 'CANCELLED', errorMessage: 'cancelled before it started' },
  });
  if (done.count === 1) await appendEvent(db, id, 'job.cancelled', null, { before: 'start' });
  return { job: await findJob(db, tenantId, id), wasQueued: done.count === 1 };
}

export async function appendEvent(db: Db | Prisma.TransactionClient, jobId: string, type: string, step: string | null = null, data?: Record<string, unknown>): Promise<JobEvent> {
  return db.jobEvent.create({ data: { jobId, type, step, data: (data ?? Prisma.DbNull) as Prisma.InputJsonValue } });
}

export async function listEvents(db: Db, tenantId: string, jobId: string, after: number, limit: number): Promise<JobEvent[]> {
  await findJob(db, tenantId, jobId);
  return db.jobEvent.findMany({ where: { jobId, id: { gt: BigInt(after) } }, orderBy: { id: 'asc' }, take: limit });
}

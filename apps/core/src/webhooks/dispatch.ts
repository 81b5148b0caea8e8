import { randomUUID } from 'node:crypto';
import type { Db } from '../db';
import type { Prisma } from '../generated/prisma/client';
import { decodeSubscriptions, DEFAULT_PROGRESS_STEP, shouldSendProgress, subscribes, type JobEventData, type WebhookEvent, type WebhookEventType } from './events';
import { enqueueDelivery, type WebhookQueue } from './queue';
import { WebhookError } from './errors';

// Fan-out of one event to the tenant's webhooks: a webhook_deliveries row
// per subscribed webhook (unique on webhook + event: dispatching the same
// event id again creates nothing), then one queue job per new row. Rows are
// written before jobs: if Redis is down the rows stay `pending` and
// requeuePendingDeliveries (run by the webhook worker) enqueues them later.

export interface DispatchOptions {
  /** Give the event a stable id to make a repeated dispatch a no-op (default: a new UUID). */
  eventId?: string;
  createdAt?: Date;
  /** Default step of job.progress events for webhooks without their own (default 10). */
  progressStep?: number;
}

export interface DispatchResult {
  eventId: string;
  deliveryIds: string[];
}

export async function dispatchEvent(
  db: Db,
  queue: WebhookQueue,
  tenantId: string,
  type: WebhookEventType,
  data: JobEventData,
  opts: DispatchOptions = {},
): Promise<DispatchResult> {
  const eventId = opts.eventId ?? randomUUID();
  const hooks = (await db.webhook.findMany({ where: { tenantId, enabled: true }, select: { id: true, events: true } })).filter((h) => subscribes(h.events, type));
  if (!hooks.length) return { eventId, deliveryIds: [] };

  const jobId = data.job?.id ?? null;
  let targets = hooks;
  if (type === 'job.progress' && jobId) targets = await progressTargets(db, hooks, jobId, data.job.progress.percent, opts.progressStep ?? DEFAULT_PROGRESS_STEP);
  if (!targets.length) return { eventId, deliveryIds: [] };

  const event: WebhookEvent = { id: eventId, type, createdAt: (opts.createdAt ?? new Date()).toISOString(), tenantId, data };
  await db.webhookDelivery.createMany({
    data: targets.map((h) => ({ webhookId: h.id, eventId, eventType: type, jobId, payload: event as unknown as Prisma.InputJsonValue })),
    skipDuplicates: true,
  });
  const rows = await db.webhookDelivery.findMany({ where: { eventId, webhookId: { in: targets.map((h) => h.id) }, status: 'pending' }, select: { id: true } });
  for (const r of rows) await enqueueDelivery(queue, r.id);
  return { eventId, deliveryIds: rows.map((r) => r.id) };
}

/** The webhooks a progress event goes to: each by its own step, against the last progress it was sent for this job. */
async function progressTargets(db: Db, hooks: Array<{ id: string; events: string[] }>, jobId: string, pct: number, defaultStep: number) {
  const last = await db.webhookDelivery.findMany({
    where: { jobId, eventType: 'job.progress', webhookId: { in: hooks.map((h) => h.id) } },
    orderBy: { createdAt: 'desc' },
    distinct: ['webhookId'],
    select: { webhookId: true, payload: true },
  });
  const lastPct = new Map(last.map((d) => [d.webhookId, (d.payload as unknown as WebhookEvent).data?.job?.progress?.percent ?? null]));
  return hooks.filter((h) => shouldSendProgress(lastPct.get(h.id) ?? null, pct, decodeSubscriptions(h.events).progressStep ?? defaultStep));
}

/**
 * Sends a delivery again, with the same event id and body, as a new cycle of
 * attempts. Tenant-scoped: another tenant's delivery is not found. A delivery
 * still queued or being attempted is refused (WEBHOOK_DELIVERY_IN_PROGRESS).
 */
export async function redeliver(db: Db, queue: WebhookQueue, tenantId: string, deliveryId: string): Promise<void> {
  const row = UUID.test(deliveryId) ? await db.webhookDelivery.findFirst({ where: { id: deliveryId, webhook: { tenantId } }, select: { id: true, status: true } }) : null;
  if (!row) throw new WebhookError('WEBHOOK_DELIVERY_NOT_FOUND', `no webhook delivery ${deliveryId}`);
  const job = await queue.getJob(deliveryId);
  if (job) {
    const state = await job.getState();
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') {
      throw new WebhookError('WEBHOOK_DELIVERY_IN_PROGRESS', `delivery ${deliveryId} is still ${state}; redeliver it once it has ended`);
    }
    await job.remove();
  }
  await db.webhookDelivery.update({
    where: { id: deliveryId },
    data: { status: 'pending', attempts: 0, lastStatusCode: null, lastError: null, latencyMs: null, deliveredAt: null },
  });
  await enqueueDelivery(queue, deliveryId);
}

/** Enqueues deliveries left `pending` (their enqueue failed); BullMQ ignores the ones already queued. */
export async function requeuePendingDeliveries(db: Db, queue: WebhookQueue, olderThanMs = 5_000): Promise<number> {
  const rows = await db.webhookDelivery.findMany({
    where: { status: 'pending', createdAt: { lt: new Date(Date.now() - olderThanMs) } },
    select: { id: true },
    take: 500,
  });
  let n = 0;
  for (const r of rows) {
    if (await queue.getJob(r.id)) continue;
    await enqueueDelivery(queue, r.id);
    n++;
  }
  return n;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

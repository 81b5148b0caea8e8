import { Queue, type JobsOptions } from 'bullmq';
import type { RedisClient } from '../redis';
import type { Config } from '../config';

// The "webhooks" queue: one BullMQ job per delivery, its id the delivery id,
// its data { deliveryId } only (the body and the secret are read from
// Postgres at delivery time). Same Redis prefix as the restore queue.

export const WEBHOOK_QUEUE = 'webhooks';
export const WEBHOOK_JOB_NAME = 'webhook.deliver';
export const WEBHOOK_BACKOFF_TYPE = 'webhook';

export interface WebhookJobData {
  deliveryId: string;
}

export type WebhookQueue = Queue<WebhookJobData, unknown, string>;

export const WEBHOOK_ATTEMPTS = 8;
export const WEBHOOK_BACKOFF_BASE_MS = 1_000;
export const WEBHOOK_BACKOFF_CAP_MS = 3_600_000;

export function webhookJobOptions(attempts = WEBHOOK_ATTEMPTS): JobsOptions {
  return {
    attempts,
    // A custom strategy: the worker's settings.backoffStrategy computes the delay (webhookBackoff).
    backoff: { type: WEBHOOK_BACKOFF_TYPE },
    removeOnComplete: { age: 24 * 3600, count: 10_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

export function createWebhookQueue(connection: RedisClient, config: Config): WebhookQueue {
  return new Queue<WebhookJobData, unknown, string>(WEBHOOK_QUEUE, {
    connection,
    prefix: config.queue.prefix,
    defaultJobOptions: webhookJobOptions(),
  });
}

/**
 * Delay before retry number `attemptsMade` (1 for the first retry), as BullMQ
 * passes it: "full jitter", a uniform draw in [0, min(cap, base × 2^(n-1))].
 */
export function webhookBackoff(attemptsMade: number, opts: { baseMs?: number; capMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? WEBHOOK_BACKOFF_BASE_MS;
  const cap = opts.capMs ?? WEBHOOK_BACKOFF_CAP_MS;
  const n = Math.max(0, Math.min(60, attemptsMade - 1));
  const ceiling = Math.min(cap, base * 2 ** n);
  return Math.floor((opts.random ?? Math.random)() * ceiling);
}

/** Enqueues one delivery; a second add with the same id is ignored by BullMQ while the first exists. */
export async function enqueueDelivery(queue: WebhookQueue, deliveryId: string): Promise<void> {
  await queue.add(WEBHOOK_JOB_NAME, { deliveryId }, { jobId: deliveryId });
}

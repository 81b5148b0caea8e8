import { UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { Db } from '../db';
import { createRedis } from '../redis';
import type { Keyring } from '../secrets';
import { metrics, observeQueueWait } from '../metrics';
import { deliverWebhook } from './deliver';
import { requeuePendingDeliveries } from './dispatch';
import { createWebhookQueue, WEBHOOK_ATTEMPTS, WEBHOOK_BACKOFF_BASE_MS, WEBHOOK_BACKOFF_CAP_MS, WEBHOOK_JOB_NAME, WEBHOOK_QUEUE, webhookBackoff, type WebhookJobData } from './queue';
import type { Lookup } from './target';

export interface WebhookWorkerOptions {
  config: Config;
  db: Db;
  keyring: Keyring;
  log: Logger;
  /** Allow targets on private, loopback and link-local addresses (tests, on-premises receivers). */
  allowPrivate: boolean;
  /** Allow http:// targets (default: same as allowPrivate). */
  allowHttp?: boolean;
  concurrency?: number;
  timeoutMs?: number;
  /** First retry delay ceiling (default 1 s); tests make it small. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  lookup?: Lookup;
  /** Extra trusted CA certificates (PEM) for https targets, e.g. an on-premises CA. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** How often deliveries left pending (enqueue failed) are enqueued; 0 disables. Default: config.worker.requeueIntervalMs. */
  requeueIntervalMs?: number;
}

export interface RunningWebhookWorker {
  close(): Promise<void>;
}

/** A BullMQ worker on the "webhooks" queue, same Redis prefix as the restore queue. The caller owns `db`. */
export async function startWebhookWorker(opts: WebhookWorkerOptions): Promise<RunningWebhookWorker> {
  const { config, db, keyring, log } = opts;
  const policy = { allowPrivate: opts.allowPrivate, allowHttp: opts.allowHttp ?? opts.allowPrivate };
  const connection = createRedis(config.redisUrl, 'worker');
  const producer = createRedis(config.redisUrl, 'producer');
  const queue = createWebhookQueue(producer, config);
  queue.on('error', () => undefined);
  const backoff = { baseMs: opts.backoffBaseMs ?? WEBHOOK_BACKOFF_BASE_MS, capMs: opts.backoffCapMs ?? WEBHOOK_BACKOFF_CAP_MS };

  const worker = new Worker<WebhookJobData>(
    WEBHOOK_QUEUE,
    async (job) => {
      if (job.name !== WEBHOOK_JOB_NAME) throw new UnrecoverableError(`no handler for job ${job.name}`);
      const attempts = job.opts.attempts ?? WEBHOOK_ATTEMPTS;
      observeQueueWait(WEBHOOK_QUEUE, job);
      // Every attempt ends here: its outcome is counted for /metrics.
      const outcome = await deliverWebhook(
        { db, keyring, log, policy, timeoutMs: opts.timeoutMs, lookup: opts.lookup, ca: opts.ca },
        job.data.deliveryId,
        { lastAttempt: job.attemptsMade + 1 >= attempts },
      ).catch((err: unknown) => {
        metrics.webhookDeliveries.inc({ outcome: 'error' });
        throw err;
      });
      metrics.webhookDeliveries.inc({ outcome: outcome.kind });
      if (outcome.kind === 'retry') throw new Error(outcome.error); // BullMQ retries after webhookBackoff
      if (outcome.kind === 'failed') throw new UnrecoverableError(outcome.error);
      return outcome;
    },
    {
      connection,
      prefix: config.queue.prefix,
      concurrency: opts.concurrency ?? 8,
      lockDuration: config.queue.lockDurationMs,
      stalledInterval: config.queue.stalledIntervalMs,
      settings: { backoffStrategy: (attemptsMade: number) => webhookBackoff(attemptsMade, backoff) },
    },
  );
  worker.on('error', (err) => log.error({ err: err.message }, 'webhook worker error'));

  const every = opts.requeueIntervalMs ?? config.worker.requeueIntervalMs;
  const requeue =
    every > 0
      ? setInterval(() => {
          requeuePendingDeliveries(db, queue)
            .then((n) => n && log.info({ count: n }, 'requeued webhook deliveries missing from the queue'))
            .catch((err) => log.warn({ err: (err as Error).message }, 'webhook requeue sweep failed'));
        }, every)
      : null;
  requeue?.unref();

  await worker.waitUntilReady();
  log.info({ prefix: config.queue.prefix, allowPrivate: policy.allowPrivate }, 'webhook worker ready');
  return {
    async close() {
      if (requeue) clearInterval(requeue);
      await worker.close();
      await queue.close().catch(() => undefined);
      connection.disconnect();
      producer.disconnect();
    },
  };
}

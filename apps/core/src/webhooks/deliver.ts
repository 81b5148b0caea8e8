import type { Logger } from 'pino';
import type { Db } from '../db';
import { decryptSecret, SecretError, secretContext, type Keyring } from '../secrets';
import { WebhookTargetError } from './errors';
import { DeliveryNetworkError, postJson } from './http';
import { signWebhook } from './sign';
import { systemLookup, validateWebhookUrl, type Lookup, type TargetPolicy } from './target';
import type { WebhookEvent } from './events';

// One attempt at one delivery: load it, decrypt the secret, re-check the
// target, POST the signed body, record the outcome. The row says where the
// delivery stands: pending → (retrying →)* delivered | failed.
//
//   2xx                              delivered
//   410 Gone, other 4xx, 3xx         failed at once (the receiver will not take it; redirects are not followed)
//   408, 429, 5xx, network, timeout  retrying, until the last attempt: failed
//   target refused, secret broken    failed at once

export interface DeliverDeps {
  db: Db;
  keyring: Keyring;
  log: Logger;
  policy: TargetPolicy;
  timeoutMs?: number;
  lookup?: Lookup;
  /** Extra trusted CA certificates (PEM) for https targets. */
  ca?: string | Buffer | Array<string | Buffer>;
}

export type DeliveryOutcome =
  | { kind: 'delivered'; statusCode: number; latencyMs: number }
  | { kind: 'retry'; error: string }
  | { kind: 'failed'; error: string }
  /** Nothing to do: the row is gone (webhook deleted) or already delivered. */
  | { kind: 'skipped'; why: string };

export const DELIVERY_TIMEOUT_MS = 10_000;
const MAX_ERROR_LENGTH = 500;

export function classifyStatus(code: number): 'delivered' | 'retry' | 'failed' {
  if (code >= 200 && code < 300) return 'delivered';
  if (code === 408 || code === 429 || code >= 500) return 'retry';
  return 'failed';
}

export async function deliverWebhook(deps: DeliverDeps, deliveryId: string, opts: { lastAttempt?: boolean } = {}): Promise<DeliveryOutcome> {
  const { db, keyring } = deps;
  const row = await db.webhookDelivery.findUnique({ where: { id: deliveryId }, include: { webhook: true } });
  if (!row) return { kind: 'skipped', why: 'no such delivery' };
  if (row.status === 'delivered' || row.status === 'failed') return { kind: 'skipped', why: `already ${row.status}` };
  const hook = row.webhook;
  const log = deps.log.child({ deliveryId, webhookId: hook.id, eventId: row.eventId, eventType: row.eventType });

  const record = async (status: 'delivered' | 'retrying' | 'failed', r: { statusCode?: number; error?: string; latencyMs?: number }) => {
    await db.webhookDelivery.update({
      where: { id: deliveryId },
      data: {
        status,
        attempts: { increment: 1 },
        lastStatusCode: r.statusCode ?? null,
        lastError: r.error ? r.error.slice(0, MAX_ERROR_LENGTH) : null,
        latencyMs: r.latencyMs ?? null,
        deliveredAt: status === 'delivered' ? new Date() : null,
      },
    });
  };
  const fail = async (error: string, r: { statusCode?: number; latencyMs?: number } = {}): Promise<DeliveryOutcome> => {
    await record('failed', { ...r, error });
    log.warn({ statusCode: r.statusCode, err: error }, 'webhook delivery failed');
    return { kind: 'failed', error };
  };
  const retryOrFail = async (error: string, r: { statusCode?: number; latencyMs?: number } = {}): Promise<DeliveryOutcome> => {
    if (opts.lastAttempt) return fail(`${error}; gave up after the last attempt`, r);
    await record('retrying', { ...r, error });
    log.info({ statusCode: r.statusCode, err: error }, 'webhook delivery will be retried');
    return { kind: 'retry', error };
  };

  if (!hook.enabled) return fail('the webhook is disabled');

  let secret: string;
  try {
    secret = decryptSecret(keyring, hook.secretCiphertext, hook.secretKeyId, secretContext.webhook(hook.id));
  } catch (err) {
    // SecretError messages name the key id and context only. An unknown key
    // id is a deployment problem (a worker with an older keyring) that may be
    // fixed before the attempts run out; a failed decryption is not.
    const msg = `cannot sign: ${(err as Error).message}`;
    return err instanceof SecretError && err.code === 'SECRET_KEY_UNKNOWN' ? retryOrFail(msg) : fail(msg);
  }

  let target;
  try {
    target = await validateWebhookUrl(hook.url, deps.policy, deps.lookup ?? systemLookup);
  } catch (err) {
    if (err instanceof WebhookTargetError) {
      if (err.reason === 'unresolvable') return retryOrFail(err.message); // DNS may come back
      return fail(`target refused (${err.reason}): ${err.message}`);
    }
    throw err;
  }

  const event = row.payload as unknown as WebhookEvent;
  // Envelope keys in a fixed order (jsonb does not keep the order of keys).
  const body = JSON.stringify({ id: row.eventId, type: row.eventType, createdAt: event.createdAt, tenantId: event.tenantId, data: event.data });
  const headers = signWebhook(secret, row.eventId, body);

  let res;
  try {
    res = await postJson(target, headers, body, { timeoutMs: deps.timeoutMs ?? DELIVERY_TIMEOUT_MS, ca: deps.ca });
  } catch (err) {
    if (err instanceof DeliveryNetworkError) return retryOrFail(err.message);
    throw err;
  }
  const verdict = classifyStatus(res.statusCode);
  if (verdict === 'delivered') {
    await record('delivered', { statusCode: res.statusCode, latencyMs: res.latencyMs });
    log.info({ statusCode: res.statusCode, latencyMs: res.latencyMs, target: target.url.origin }, 'webhook delivered');
    return { kind: 'delivered', statusCode: res.statusCode, latencyMs: res.latencyMs };
  }
  const r = { statusCode: res.statusCode, latencyMs: res.latencyMs };
  if (verdict === 'retry') return retryOrFail(`the receiver answered ${res.statusCode}`, r);
  if (res.statusCode === 410) return fail('the receiver answered 410 Gone', r);
  if (res.statusCode >= 300 && res.statusCode < 400) return fail(`the receiver answered ${res.statusCode}; redirects are not followed`, r);
  return fail(`the receiver answered ${res.statusCode}`, r);
}

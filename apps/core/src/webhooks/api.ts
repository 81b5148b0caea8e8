import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../db';
import type { Webhook, WebhookDelivery } from '../generated/prisma/client';
import { decodeCursor, encodeCursor } from '../jobs/cursor';
import { encryptSecret, secretContext, type Keyring } from '../secrets';
import { WebhookError } from './errors';
import { ALL_EVENTS, decodeSubscriptions, encodeSubscriptions, isWebhookEventType, WEBHOOK_EVENT_TYPES } from './events';
import { systemLookup, validateWebhookUrl, type Lookup, type TargetPolicy } from './target';

// What the API's webhook routes call. Every function is tenant-scoped
// (another tenant's webhook is "not found") and no result ever holds the
// secret or its ciphertext, except createWebhook's, once.

export interface WebhookView {
  id: string;
  url: string;
  events: string[];
  /** job.progress is sent every this many percent (null: the global default, 10). */
  progressStep: number | null;
  enabled: boolean;
  createdAt: string;
}

export interface DeliveryView {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  jobId: string | null;
  status: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  latencyMs: number | null;
  createdAt: string;
  deliveredAt: string | null;
  payload: unknown;
}

export interface CreateWebhookInput {
  url: string;
  events: string[];
  /** 16 to 256 printable ASCII characters; generated when absent. */
  secret?: string;
  progressStep?: number;
}

export const SECRET_PREFIX = 'whsec_';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_POLICY: TargetPolicy = { allowPrivate: false, allowHttp: false };

export function toWebhookView(w: Webhook): WebhookView {
  const { events, progressStep } = decodeSubscriptions(w.events);
  return { id: w.id, url: w.url, events, progressStep, enabled: w.enabled, createdAt: w.createdAt.toISOString() };
}

export function toDeliveryView(d: WebhookDelivery): DeliveryView {
  return {
    id: d.id,
    webhookId: d.webhookId,
    eventId: d.eventId,
    eventType: d.eventType,
    jobId: d.jobId,
    status: d.status,
    attempts: d.attempts,
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    latencyMs: d.latencyMs,
    createdAt: d.createdAt.toISOString(),
    deliveredAt: d.deliveredAt ? d.deliveredAt.toISOString() : null,
    payload: d.payload,
  };
}

/** A new webhook secret: "whsec_" and 32 random bytes, base64url. */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

function invalid(field: string, message: string): WebhookError {
  return new WebhookError('WEBHOOK_INVALID', `${field} ${message}`, [{ in: 'body', field, message }]);
}

function checkEvents(events: unknown): string[] {
  if (!Array.isArray(events) || events.length === 0) throw invalid('events', 'must be a non-empty array of event types');
  const out: string[] = [];
  events.forEach((e, i) => {
    if (typeof e !== 'string' || (e !== ALL_EVENTS && !isWebhookEventType(e))) {
      throw invalid(`events[${i}]`, `must be "*" or one of ${WEBHOOK_EVENT_TYPES.join(', ')}`);
    }
    if (!out.includes(e)) out.push(e);
  });
  return out;
}

/**
 * Creates a webhook. The secret (given or generated) is returned here, once;
 * it is stored AES-256-GCM encrypted, bound to the webhook's id.
 */
export async function createWebhook(
  db: Db,
  keyring: Keyring,
  tenantId: string,
  input: CreateWebhookInput,
  policy: TargetPolicy = DEFAULT_POLICY,
  lookup: Lookup = systemLookup,
): Promise<{ webhook: WebhookView; secret: string }> {
  const events = checkEvents(input.events);
  if (input.secret !== undefined && (typeof input.secret !== 'string' || !/^[\x21-\x7e]{16,256}$/.test(input.secret))) {
    // The message says what is wrong, never what was given.
    throw invalid('secret', 'must be 16 to 256 printable ASCII characters without spaces');
  }
  let progressStep: number | null = null;
  if (input.progressStep !== undefined) {
    if (!Number.isInteger(input.progressStep) || input.progressStep < 1 || input.progressStep > 100) throw invalid('progressStep', 'must be an integer from 1 to 100');
    progressStep = input.progressStep;
  }
  const checked = await validateWebhookUrl(input.url, policy, lookup);
  const secret = input.secret ?? generateWebhookSecret();
  const id = randomUUID();
  const enc = encryptSecret(keyring, secret, secretContext.webhook(id));
  const row = await db.webhook.create({
    data: { id, tenantId, url: checked.url.toString(), events: encodeSubscriptions(events, progressStep), secretCiphertext: enc.ciphertext, secretKeyId: enc.keyId },
  });
  return { webhook: toWebhookView(row), secret };
}

export async function listWebhooks(db: Db, tenantId: string): Promise<WebhookView[]> {
  const rows = await db.webhook.findMany({ where: { tenantId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  return rows.map(toWebhookView);
}

export async function getWebhook(db: Db, tenantId: string, webhookId: string): Promise<WebhookView> {
  const row = UUID.test(webhookId) ? await db.webhook.findFirst({ where: { id: webhookId, tenantId } }) : null;
  if (!row) throw new WebhookError('WEBHOOK_NOT_FOUND', `no webhook ${webhookId}`);
  return toWebhookView(row);
}

/** Deletes the webhook and its delivery log; queued deliveries find no row and are dropped. */
export async function deleteWebhook(db: Db, tenantId: string, webhookId: string): Promise<void> {
  const n = UUID.test(webhookId) ? await db.webhook.deleteMany({ where: { id: webhookId, tenantId } }) : { count: 0 };
  if (n.count === 0) throw new WebhookError('WEBHOOK_NOT_FOUND', `no webhook ${webhookId}`);
}

export async function setWebhookEnabled(db: Db, tenantId: string, webhookId: string, enabled: boolean): Promise<WebhookView> {
  const n = UUID.test(webhookId) ? await db.webhook.updateMany({ where: { id: webhookId, tenantId }, data: { enabled } }) : { count: 0 };
  if (n.count === 0) throw new WebhookError('WEBHOOK_NOT_FOUND', `no webhook ${webhookId}`);
  return getWebhook(db, tenantId, webhookId);
}

/** A webhook's deliveries, newest first; pass nextCursor back as cursor. */
export async function listDeliveries(
  db: Db,
  tenantId: string,
  webhookId: string,
  page: { limit?: number; cursor?: string } = {},
): Promise<{ items: DeliveryView[]; nextCursor: string | null }> {
  await getWebhook(db, tenantId, webhookId);
  const limit = page.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
    throw new WebhookError('WEBHOOK_INVALID', 'limit must be an integer from 1 to 200', [{ in: 'query', field: 'limit', message: 'must be an integer from 1 to 200' }]);
  }
  const cursor = page.cursor ? decodeCursor(page.cursor) : null;
  if (page.cursor && !cursor) throw new WebhookError('WEBHOOK_INVALID', 'cursor is not valid', [{ in: 'query', field: 'cursor', message: 'is not a cursor from this API' }]);
  const rows = await db.webhookDelivery.findMany({
    where: {
      webhookId,
      ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: limit + 1,
  });
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(toDeliveryView), nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
}

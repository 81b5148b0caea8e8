import { createHmac, timingSafeEqual } from 'node:crypto';

// Webhook signatures, close to Standard Webhooks (standardwebhooks.com):
//
//   webhook-id:        the event id (a UUID; the same on every retry and redelivery)
//   webhook-timestamp: unix seconds when this attempt was sent
//   webhook-signature: v1=<hex HMAC-SHA256(secret, `${id}.${timestamp}.${body}`)>
//
// The HMAC key is the webhook secret exactly as returned at creation (its
// UTF-8 bytes, "whsec_" prefix included); `body` is the raw request body.
// Differences from Standard Webhooks: the MAC is hex, not base64, and joined
// with "=" ("v1=<hex>"), and the secret is not base64-decoded. Several
// space-separated signatures may appear in the header; one match suffices.

export const SIGNATURE_VERSION = 'v1';
export const HEADER_ID = 'webhook-id';
export const HEADER_TIMESTAMP = 'webhook-timestamp';
export const HEADER_SIGNATURE = 'webhook-signature';

export function computeSignature(secret: string, id: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${id}.${timestamp}.`).update(body).digest('hex');
}

/** The three headers for one attempt. */
export function signWebhook(secret: string, id: string, body: string | Buffer, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  return {
    [HEADER_ID]: id,
    [HEADER_TIMESTAMP]: String(timestamp),
    [HEADER_SIGNATURE]: `${SIGNATURE_VERSION}=${computeSignature(secret, id, timestamp, body)}`,
  };
}

export type VerifyFailure = 'missing_header' | 'bad_timestamp' | 'timestamp_too_old' | 'timestamp_too_new' | 'bad_signature';

export class WebhookVerificationError extends Error {
  readonly code = 'WEBHOOK_SIGNATURE_INVALID';
  constructor(
    readonly reason: VerifyFailure,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** Node's IncomingHttpHeaders, a fetch Headers, or a plain object with any case of names. */
export type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const rec = headers as Record<string, string | string[] | undefined>;
  for (const [k, v] of Object.entries(rec)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/**
 * For receivers: checks the signature of a delivery against the raw body and
 * refuses a timestamp more than `toleranceSec` away from now (replays).
 * Returns the event id, to de-duplicate on; throws WebhookVerificationError.
 * Compare with the raw body bytes as received: re-serialized JSON will not match.
 */
export function verifyWebhook(
  secret: string,
  headers: HeaderSource,
  body: string | Buffer,
  toleranceSec = 300,
  nowSec = Math.floor(Date.now() / 1000),
): { id: string; timestamp: number } {
  const id = header(headers, HEADER_ID);
  const ts = header(headers, HEADER_TIMESTAMP);
  const sig = header(headers, HEADER_SIGNATURE);
  if (!id || !ts || !sig) throw new WebhookVerificationError('missing_header', `missing ${HEADER_ID}, ${HEADER_TIMESTAMP} or ${HEADER_SIGNATURE} header`);
  if (!/^\d{1,12}$/.test(ts)) throw new WebhookVerificationError('bad_timestamp', `${HEADER_TIMESTAMP} is not unix seconds`);
  const timestamp = Number(ts);
  if (timestamp < nowSec - toleranceSec) throw new WebhookVerificationError('timestamp_too_old', 'the timestamp is too old (replay?)');
  if (timestamp > nowSec + toleranceSec) throw new WebhookVerificationError('timestamp_too_new', 'the timestamp is in the future');
  const expected = Buffer.from(computeSignature(secret, id, timestamp, body), 'hex');
  const prefix = `${SIGNATURE_VERSION}=`;
  let ok = false;
  for (const candidate of sig.split(' ')) {
    if (!candidate.startsWith(prefix)) continue;
    const hex = candidate.slice(prefix.length);
    if (!/^[0-9a-f]{64}$/i.test(hex)) continue;
    // Constant-time over equal lengths; check every candidate so timing says nothing about which one matched.
    if (timingSafeEqual(Buffer.from(hex, 'hex'), expected)) ok = true;
  }
  if (!ok) throw new WebhookVerificationError('bad_signature', 'no signature matches');
  return { id, timestamp };
}

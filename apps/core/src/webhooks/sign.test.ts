import { createHmac } from 'node:crypto';
import { computeSignature, signWebhook, verifyWebhook, WebhookVerificationError } from './sign';

const secret = 'whsec_test-secret-0123456789';
const id = '7f0c1b5e-2a1d-4d7e-9a55-0c0e1f2a3b4c';
const body = '{"id":"7f0c1b5e-2a1d-4d7e-9a55-0c0e1f2a3b4c","type":"job.succeeded"}';
const now = 1_800_000_000;

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    return (err as WebhookVerificationError).reason;
  }
  return undefined;
}

describe('signWebhook', () => {
  it('follows the documented scheme: v1=hex(HMAC-SHA256(secret, id.timestamp.body))', () => {
    const h = signWebhook(secret, id, body, now);
    const expected = createHmac('sha256', secret).update(`${id}.${now}.${body}`).digest('hex');
    expect(h).toEqual({ 'webhook-id': id, 'webhook-timestamp': String(now), 'webhook-signature': `v1=${expected}` });
    expect(computeSignature(secret, id, now, Buffer.from(body))).toBe(expected);
  });
});

describe('verifyWebhook', () => {
  const headers = signWebhook(secret, id, body, now);

  it('accepts a valid delivery and returns the event id', () => {
    expect(verifyWebhook(secret, headers, body, 300, now)).toEqual({ id, timestamp: now });
    expect(verifyWebhook(secret, headers, Buffer.from(body), 300, now + 299).id).toBe(id);
  });

  it('reads headers in any case, from Node headers or fetch Headers', () => {
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), [v]]));
    expect(verifyWebhook(secret, upper, body, 300, now).id).toBe(id);
    expect(verifyWebhook(secret, new Headers(headers), body, 300, now).id).toBe(id);
  });

  it('rejects a replay outside the tolerance, either way', () => {
    expect(reason(() => verifyWebhook(secret, headers, body, 300, now + 301))).toBe('timestamp_too_old');
    expect(reason(() => verifyWebhook(secret, headers, body, 300, now - 301))).toBe('timestamp_too_new');
    expect(reason(() => verifyWebhook(secret, headers, body, 10, now + 11))).toBe('timestamp_too_old');
  });

  it('rejects a changed body, id, timestamp or secret', () => {
    expect(reason(() => verifyWebhook(secret, headers, body + ' ', 300, now))).toBe('bad_signature');
    expect(reason(() => verifyWebhook('whsec_other', headers, body, 300, now))).toBe('bad_signature');
    expect(reason(() => verifyWebhook(secret, { ...headers, 'webhook-id': 'other' }, body, 300, now))).toBe('bad_signature');
    expect(reason(() => verifyWebhook(secret, { ...headers, 'webhook-timestamp': String(now + 1) }, body, 300, now))).toBe('bad_signature');
  });

  it('rejects missing or malformed headers', () => {
    const { 'webhook-signature': _s, ...noSig } = headers;
    expect(reason(() => verifyWebhook(secret, noSig, body, 300, now))).toBe('missing_header');
    expect(reason(() => verifyWebhook(secret, { ...headers, 'webhook-timestamp': '12e5' }, body, 300, now))).toBe('bad_timestamp');
    expect(reason(() => verifyWebhook(secret, { ...headers, 'webhook-signature': 'v1=zz' }, body, 300, now))).toBe('bad_signature');
    const hex = headers['webhook-signature']!.slice(3);
    expect(reason(() => verifyWebhook(secret, { ...headers, 'webhook-signature': `v2=${hex}` }, body, 300, now))).toBe('bad_signature');
    expect(reason(() => verifyWebhook(secret, { ...headers, 'webhook-signature': `v1=${hex.slice(0, 62)}` }, body, 300, now))).toBe('bad_signature');
  });

  it('accepts any one of several signatures (secret rotation on the receiver side)', () => {
    const other = signWebhook('whsec_old-secret-000000', id, body, now)['webhook-signature'];
    const both = { ...headers, 'webhook-signature': `${other} ${headers['webhook-signature']}` };
    expect(verifyWebhook(secret, both, body, 300, now).id).toBe(id);
  });
});

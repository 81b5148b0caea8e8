import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createDb, createLogger, createRedis, createRestoreJob, type Db } from '../../../apps/core/src';
import { encryptSecret, parseKeyring, rotateStoredSecrets, decryptSecret, secretContext } from '../../../apps/core/src/secrets';
import {
  createWebhook,
  createWebhookQueue,
  deleteWebhook,
  deliverWebhook,
  dispatchEvent,
  jobEventData,
  listDeliveries,
  listWebhooks,
  redeliver,
  startWebhookWorker,
  verifyWebhook,
  WebhookError,
  WEBHOOK_JOB_NAME,
  type JobEventData,
  type Lookup,
  type RunningWebhookWorker,
  type WebhookEventType,
} from '../../../apps/core/src/webhooks';
import { testConfig, waitFor } from '../../support/env';

// Webhook delivery against the real Postgres and Redis, to a receiver on
// 127.0.0.1 (so the worker runs with allowPrivate: true).

const config = testConfig();
const keyId = `t${randomBytes(4).toString('hex')}`;
const keyring = parseKeyring(`${keyId}:${randomBytes(32).toString('base64')}`);
const open = { allowPrivate: true, allowHttp: true };

// Everything the webhook code logs, to search for secrets afterwards.
const logLines: string[] = [];
const log = createLogger('debug', 'webhooks-test', new Writable({ write: (chunk, _enc, cb) => (logLines.push(String(chunk)), cb()) }));

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const received: Received[] = [];
const flaky = new Map<string, number>(); // path → 500s still to answer
let server: Server;
let base: string;
let port: number;

let db: Db;
let worker: RunningWebhookWorker;
const redis = createRedis(config.redisUrl, 'producer');
const queue = createWebhookQueue(redis, config);
const tenants: string[] = [];
const secrets: string[] = [];

const hits = (path: string) => received.filter((r) => r.path === path);

async function tenant(): Promise<string> {
  const t = await db.tenant.create({ data: { name: `webhooks-test-${randomUUID()}` } });
  tenants.push(t.id);
  return t.id;
}

async function hook(tenantId: string, path: string, events: string[] = ['*'], extra: { secret?: string; progressStep?: number } = {}) {
  const created = await createWebhook(db, keyring, tenantId, { url: `${base}${path}`, events, ...extra }, open);
  secrets.push(created.secret);
  return created;
}

async function jobData(tenantId: string): Promise<JobEventData> {
  const { job } = await createRestoreJob(db, tenantId, { kind: 'in_place', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { vm: 'vm-1' } });
  return jobEventData(job);
}

const ended = (id: string) =>
  waitFor(`delivery ${id} to end`, async () => {
    const d = await db.webhookDelivery.findUnique({ where: { id } });
    return d && (d.status === 'delivered' || d.status === 'failed') ? d : null;
  });

async function dispatch(tenantId: string, type: WebhookEventType, data: JobEventData, eventId?: string) {
  return dispatchEvent(db, queue, tenantId, type, data, eventId ? { eventId } : {});
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const left = flaky.get(path) ?? 0;
      if (left > 0) {
        flaky.set(path, left - 1);
        res.writeHead(500).end('not now');
      } else if (path.startsWith('/bad')) res.writeHead(400).end('no');
      else if (path.startsWith('/gone')) res.writeHead(410).end('gone');
      else if (path.startsWith('/hang')) return; // never answers
      else if (path.startsWith('/redirect')) res.writeHead(302, { location: `${base}/ok-redirected` }).end();
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  db = createDb(config.databaseUrl, { max: 4 });
  // requeueIntervalMs 0: the sweep looks at every pending delivery in the database, not just this file's.
  worker = await startWebhookWorker({ config, db, keyring, log, allowPrivate: true, backoffBaseMs: 50, requeueIntervalMs: 0 });
});

afterAll(async () => {
  await worker?.close();
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  redis.disconnect();
  if (tenants.length) await db.tenant.deleteMany({ where: { id: { in: tenants } } });
  await db.$disconnect();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

it('delivers a signed event that verifies with verifyWebhook, and logs it', async () => {
  const t = await tenant();
  const { webhook, secret } = await hook(t, '/ok-1', ['job.succeeded']);
  expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
  const data = await jobData(t);
  const { eventId, deliveryIds } = await dispatch(t, 'job.succeeded', data);
  expect(deliveryIds).toHaveLength(1);
  const row = await ended(deliveryIds[0]!);

  expect(row).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 204, lastError: null, eventId, eventType: 'job.succeeded', jobId: data.job.id });
  expect(row.latencyMs).toEqual(expect.any(Number));
  expect(row.deliveredAt).toBeInstanceOf(Date);

  const [req] = hits('/ok-1');
  expect(hits('/ok-1')).toHaveLength(1);
  expect(req!.headers['content-type']).toBe('application/json');
  expect(verifyWebhook(secret, req!.headers, req!.body)).toEqual({ id: eventId, timestamp: expect.any(Number) });
  expect(() => verifyWebhook(`${secret}x`, req!.headers, req!.body)).toThrow(/no signature matches/);
  const body = JSON.parse(req!.body);
  expect(Object.keys(body)).toEqual(['id', 'type', 'createdAt', 'tenantId', 'data']);
  expect(body).toMatchObject({ id: eventId, type: 'job.succeeded', tenantId: t, data: { job: { id: data.job.id, kind: 'in_place', state: 'queued' } } });

  const page = await listDeliveries(db, t, webhook.id, { limit: 10 });
  expect(page.items.map((d) => [d.id, d.status, d.attempts])).toEqual([[row.id, 'delivered', 1]]);
  expect(page.nextCursor).toBeNull();
  expect(JSON.stringify(await listWebhooks(db, t))).not.toMatch(/secret|ciphertext/i);
});

it('only sends the subscribed types, and a repeated event id creates nothing new', async () => {
  const t = await tenant();
  await hook(t, '/ok-types', ['job.failed', 'job.cancelled']);
  const data = await jobData(t);
  expect((await dispatch(t, 'job.succeeded', data)).deliveryIds).toEqual([]);
  const eventId = randomUUID();
  const first = await dispatch(t, 'job.failed', data, eventId);
  const again = await dispatch(t, 'job.failed', data, eventId);
  expect(first.deliveryIds).toHaveLength(1);
  await ended(first.deliveryIds[0]!);
  expect(again.deliveryIds.length).toBeLessThanOrEqual(1); // at most the same row, still pending
  expect(await db.webhookDelivery.count({ where: { eventId } })).toBe(1);
  await new Promise((r) => setTimeout(r, 300));
  expect(hits('/ok-types')).toHaveLength(1);
});

it('retries a receiver that answers 500 twice, then records it delivered after 3 attempts', async () => {
  const t = await tenant();
  flaky.set('/flaky', 2);
  await hook(t, '/flaky');
  const { eventId, deliveryIds } = await dispatch(t, 'job.started', await jobData(t));
  const row = await ended(deliveryIds[0]!);
  expect(row).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 204, lastError: null });
  expect(hits('/flaky').map((r) => r.headers['webhook-id'])).toEqual([eventId, eventId, eventId]);
});

it('fails at once on a 400, and on a 410 or a redirect, without retries', async () => {
  const t = await tenant();
  await hook(t, '/bad');
  await hook(t, '/gone');
  await hook(t, '/redirect');
  const { deliveryIds } = await dispatch(t, 'job.failed', await jobData(t));
  expect(deliveryIds).toHaveLength(3);
  const rows = await Promise.all(deliveryIds.map(ended));
  await new Promise((r) => setTimeout(r, 500)); // room for a retry that must not happen
  const byCode = Object.fromEntries(rows.map((r) => [r.lastStatusCode, [r.status, r.attempts, r.lastError]]));
  expect(byCode).toEqual({
    400: ['failed', 1, 'the receiver answered 400'],
    410: ['failed', 1, 'the receiver answered 410 Gone'],
    302: ['failed', 1, 'the receiver answered 302; redirects are not followed'],
  });
  expect(hits('/bad')).toHaveLength(1);
  expect(hits('/gone')).toHaveLength(1);
  expect(hits('/redirect')).toHaveLength(1);
  expect(hits('/ok-redirected')).toHaveLength(0);
  // 410 fails the delivery but leaves the webhook enabled.
  expect((await listWebhooks(db, t)).every((w) => w.enabled)).toBe(true);
});

it('gives up after the last attempt on a receiver that keeps failing', async () => {
  const t = await tenant();
  flaky.set('/down', 1000);
  await hook(t, '/down');
  const { deliveryIds } = await dispatch(t, 'job.started', await jobData(t));
  const row = await ended(deliveryIds[0]!);
  expect(row).toMatchObject({ status: 'failed', attempts: 8, lastStatusCode: 500 });
  expect(row.lastError).toMatch(/answered 500; gave up after the last attempt/);
  expect(hits('/down')).toHaveLength(8);
});

it('redelivers on request with the same event id, and only for its own tenant', async () => {
  const t = await tenant();
  const other = await tenant();
  const { secret } = await hook(t, '/redeliver');
  const { eventId, deliveryIds } = await dispatch(t, 'job.succeeded', await jobData(t));
  const id = deliveryIds[0]!;
  await ended(id);
  expect(hits('/redeliver')).toHaveLength(1);

  await expect(redeliver(db, queue, other, id)).rejects.toMatchObject({ code: 'WEBHOOK_DELIVERY_NOT_FOUND', status: 404 });
  await expect(redeliver(db, queue, t, 'not-a-uuid')).rejects.toMatchObject({ code: 'WEBHOOK_DELIVERY_NOT_FOUND' });

  await redeliver(db, queue, t, id);
  await waitFor('the second delivery', async () => hits('/redeliver').length === 2);
  const row = await ended(id);
  expect(row).toMatchObject({ status: 'delivered', attempts: 1 });
  // A delivery still queued (here: waiting for a retry) is not redelivered.
  const waiting = await db.webhookDelivery.create({
    data: { webhookId: row.webhookId, eventId: randomUUID(), eventType: 'job.started', payload: { id: 'x', type: 'job.started', createdAt: new Date().toISOString(), tenantId: t, data: {} } },
  });
  await queue.add(WEBHOOK_JOB_NAME, { deliveryId: waiting.id }, { jobId: waiting.id, delay: 60_000 });
  await expect(redeliver(db, queue, t, waiting.id)).rejects.toMatchObject({ code: 'WEBHOOK_DELIVERY_IN_PROGRESS', status: 409 });

  const [a, b] = hits('/redeliver');
  expect(b!.headers['webhook-id']).toBe(eventId);
  expect(b!.body).toBe(a!.body);
  expect(verifyWebhook(secret, b!.headers, b!.body).id).toBe(eventId);
});

it("never sends one tenant's events to another tenant's webhooks", async () => {
  const a = await tenant();
  const b = await tenant();
  const hookA = await hook(a, '/tenant-a');
  await hook(b, '/tenant-b');
  const sent = await dispatch(b, 'job.succeeded', await jobData(b));
  await ended(sent.deliveryIds[0]!);
  await new Promise((r) => setTimeout(r, 300));
  expect(hits('/tenant-b')).toHaveLength(1);
  expect(hits('/tenant-a')).toHaveLength(0);
  expect(JSON.parse(hits('/tenant-b')[0]!.body).tenantId).toBe(b);

  expect((await listWebhooks(db, b)).map((w) => w.url)).toEqual([`${base}/tenant-b`]);
  await expect(listDeliveries(db, b, hookA.webhook.id)).rejects.toMatchObject({ code: 'WEBHOOK_NOT_FOUND' });
  await expect(deleteWebhook(db, b, hookA.webhook.id)).rejects.toMatchObject({ code: 'WEBHOOK_NOT_FOUND' });
  await deleteWebhook(db, a, hookA.webhook.id);
  expect(await listWebhooks(db, a)).toEqual([]);
});

it('sends job.progress every N percent, N per webhook or 10 by default', async () => {
  const t = await tenant();
  const every10 = await hook(t, '/progress-10', ['job.progress']);
  const every25 = await hook(t, '/progress-25', ['job.progress'], { progressStep: 25 });
  expect(every25.webhook).toMatchObject({ events: ['job.progress'], progressStep: 25 });
  const data = await jobData(t);
  for (const pct of [5, 12, 18, 26, 49, 51, 100, 100]) {
    await dispatch(t, 'job.progress', { job: { ...data.job, progress: { ...data.job.progress, percent: pct } } });
  }
  const sent = async (webhookId: string) =>
    (await db.webhookDelivery.findMany({ where: { webhookId }, orderBy: { createdAt: 'asc' } })).map((d) => (d.payload as unknown as { data: JobEventData }).data.job.progress.percent);
  expect(await sent(every10.webhook.id)).toEqual([12, 26, 49, 51, 100]);
  expect(await sent(every25.webhook.id)).toEqual([26, 51, 100]);
});

it('refuses a loopback target when private addresses are not allowed, at creation and at delivery', async () => {
  const t = await tenant();
  const strict = { allowPrivate: false, allowHttp: true };
  const err = await createWebhook(db, keyring, t, { url: `${base}/never`, events: ['*'] }, strict).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WebhookError);
  expect(err).toMatchObject({ code: 'WEBHOOK_TARGET_REFUSED', reason: 'loopback', status: 422 });
  await expect(createWebhook(db, keyring, t, { url: `http://[::1]:${port}/never`, events: ['*'] }, strict)).rejects.toMatchObject({ reason: 'loopback' });
  await expect(createWebhook(db, keyring, t, { url: 'https://169.254.169.254/', events: ['*'] }, strict)).rejects.toMatchObject({ reason: 'link_local' });

  // DNS rebinding: the name was public when the webhook was created and points at loopback by delivery time.
  let answer = '93.184.215.14';
  const lookup: Lookup = async () => [{ address: answer, family: 4 }];
  const { webhook, secret } = await createWebhook(db, keyring, t, { url: `http://rebind.test:${port}/rebound`, events: ['*'] }, strict, lookup);
  secrets.push(secret);
  answer = '127.0.0.1';
  const d = await db.webhookDelivery.create({
    data: { webhookId: webhook.id, eventId: randomUUID(), eventType: 'job.started', payload: { id: 'x', type: 'job.started', createdAt: new Date().toISOString(), tenantId: t, data: {} } },
  });
  const outcome = await deliverWebhook({ db, keyring, log, policy: strict, lookup }, d.id);
  expect(outcome).toMatchObject({ kind: 'failed' });
  const row = await db.webhookDelivery.findUniqueOrThrow({ where: { id: d.id } });
  expect(row.status).toBe('failed');
  expect(row.lastError).toMatch(/target refused \(loopback\)/);
  expect(hits('/rebound')).toHaveLength(0);
});

it('connects to the address it checked, not to a fresh lookup of the name', async () => {
  const t = await tenant();
  // "pinned.test" resolves nowhere but through this lookup, to the receiver.
  const lookup: Lookup = async () => [{ address: '127.0.0.1', family: 4 }];
  const { webhook, secret } = await createWebhook(db, keyring, t, { url: `http://pinned.test:${port}/pinned`, events: ['*'] }, open, lookup);
  secrets.push(secret);
  const d = await db.webhookDelivery.create({
    data: { webhookId: webhook.id, eventId: randomUUID(), eventType: 'job.started', payload: { id: 'x', type: 'job.started', createdAt: new Date().toISOString(), tenantId: t, data: {} } },
  });
  expect(await deliverWebhook({ db, keyring, log, policy: open, lookup }, d.id)).toMatchObject({ kind: 'delivered', statusCode: 204 });
  const [req] = hits('/pinned');
  expect(req!.headers.host).toBe(`pinned.test:${port}`);
  expect(verifyWebhook(secret, req!.headers, req!.body).id).toBe(d.eventId);
});

it('gives a receiver that does not answer a timeout, then retries', async () => {
  const t = await tenant();
  const { webhook } = await hook(t, '/hang', ['*']);
  const d = await db.webhookDelivery.create({
    data: { webhookId: webhook.id, eventId: randomUUID(), eventType: 'job.started', payload: { id: 'x', type: 'job.started', createdAt: new Date().toISOString(), tenantId: t, data: {} } },
  });
  const started = Date.now();
  expect(await deliverWebhook({ db, keyring, log, policy: open, timeoutMs: 300 }, d.id)).toEqual({ kind: 'retry', error: 'no response within 300 ms' });
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(await db.webhookDelivery.findUniqueOrThrow({ where: { id: d.id } })).toMatchObject({ status: 'retrying', attempts: 1, lastError: 'no response within 300 ms', lastStatusCode: null });
  expect(await deliverWebhook({ db, keyring, log, policy: open, timeoutMs: 300 }, d.id, { lastAttempt: true })).toMatchObject({ kind: 'failed' });
  expect(await db.webhookDelivery.findUniqueOrThrow({ where: { id: d.id } })).toMatchObject({ status: 'failed', attempts: 2 });
});

it('fails a delivery whose secret cannot be decrypted, naming no secret', async () => {
  const t = await tenant();
  const { webhook, secret } = await hook(t, '/broken', ['*'], { secret: 'whsec_my-own-secret-value-42' });
  // The ciphertext of another webhook's secret copied into this row: bound to the other id, it must not decrypt.
  const donor = await hook(t, '/donor');
  const donorRow = await db.webhook.findUniqueOrThrow({ where: { id: donor.webhook.id } });
  await db.webhook.update({ where: { id: webhook.id }, data: { secretCiphertext: donorRow.secretCiphertext } });
  await db.webhook.update({ where: { id: donor.webhook.id }, data: { enabled: false } });
  const { deliveryIds } = await dispatch(t, 'job.started', await jobData(t));
  expect(deliveryIds).toHaveLength(1);
  const row = await ended(deliveryIds[0]!);
  expect(row.status).toBe('failed');
  expect(row.lastError).toMatch(/cannot sign: .*SECRET|cannot be decrypted/);
  expect(row.lastError).not.toContain(secret);
  expect(hits('/broken')).toHaveLength(0);
});

it('validates events, secret and progress step when creating', async () => {
  const t = await tenant();
  await expect(createWebhook(db, keyring, t, { url: `${base}/x`, events: [] }, open)).rejects.toMatchObject({ code: 'WEBHOOK_INVALID' });
  await expect(createWebhook(db, keyring, t, { url: `${base}/x`, events: ['job.exploded'] }, open)).rejects.toMatchObject({
    code: 'WEBHOOK_INVALID',
    fieldErrors: [{ in: 'body', field: 'events[0]', message: expect.stringMatching(/job.started/) }],
  });
  const e = await createWebhook(db, keyring, t, { url: `${base}/x`, events: ['*'], secret: 'short secret' }, open).catch((x: Error) => x);
  expect(e).toMatchObject({ code: 'WEBHOOK_INVALID' });
  expect((e as Error).message).not.toContain('short secret');
  await expect(createWebhook(db, keyring, t, { url: `${base}/x`, events: ['*'], progressStep: 0 }, open)).rejects.toMatchObject({ code: 'WEBHOOK_INVALID' });
  await expect(createWebhook(db, keyring, t, { url: `${base}/x`, events: ['*'] })).rejects.toMatchObject({ code: 'WEBHOOK_TARGET_REFUSED', reason: 'scheme' });
});

it('rotates stored secrets to the current key, webhooks and vCenter passwords alike', async () => {
  const t = await tenant();
  const oldRing = parseKeyring(`${keyId}r1:${randomBytes(32).toString('base64')}`);
  const { webhook, secret } = await createWebhook(db, oldRing, t, { url: `${base}/rotated`, events: ['job.cleanup_pending'] }, open);
  secrets.push(secret);
  const vcId = randomUUID();
  const pw = encryptSecret(oldRing, 'vc-password-123', secretContext.vcenterPassword(vcId));
  await db.vCenterConnection.create({ data: { id: vcId, tenantId: t, name: 'vc1', url: 'https://vc1.example.com/sdk', username: 'admin', passwordCiphertext: pw.ciphertext, passwordKeyId: pw.keyId } });

  // A new key goes first; the old one stays for decryption until the rotation is done.
  const newRing = parseKeyring(`${keyId}r2:${randomBytes(32).toString('base64')},${keyId}r1:${oldRing.key(`${keyId}r1`).toString('base64')}`);
  expect(newRing.needsRotation(`${keyId}r1`)).toBe(true);
  expect(await rotateStoredSecrets(db, newRing, { tenantId: t })).toEqual({ webhooks: { rotated: 1, failed: [] }, vcenters: { rotated: 1, failed: [] } });
  expect(await rotateStoredSecrets(db, newRing, { tenantId: t })).toEqual({ webhooks: { rotated: 0, failed: [] }, vcenters: { rotated: 0, failed: [] } });

  // Only the new key is needed from now on.
  const onlyNew = parseKeyring(`${keyId}r2:${newRing.key(`${keyId}r2`).toString('base64')}`);
  const w = await db.webhook.findUniqueOrThrow({ where: { id: webhook.id } });
  expect(w.secretKeyId).toBe(`${keyId}r2`);
  expect(decryptSecret(onlyNew, w.secretCiphertext, w.secretKeyId, secretContext.webhook(w.id))).toBe(secret);
  const vc = await db.vCenterConnection.findUniqueOrThrow({ where: { id: vcId } });
  expect(decryptSecret(onlyNew, vc.passwordCiphertext, vc.passwordKeyId, secretContext.vcenterPassword(vcId))).toBe('vc-password-123');
});

it('never writes a secret into a delivery row, the log or an error', async () => {
  expect(secrets.length).toBeGreaterThan(10);
  const rows = await db.webhookDelivery.findMany({ where: { webhook: { tenantId: { in: tenants } } } });
  expect(rows.length).toBeGreaterThan(10);
  const haystacks = [JSON.stringify(rows), logLines.join('\n')];
  expect(logLines.join('\n')).toMatch(/webhook delivered/);
  for (const s of secrets) for (const h of haystacks) expect(h).not.toContain(s);
  const jobs = await queue.getJobs(['completed', 'failed', 'delayed', 'waiting']);
  expect(jobs.length).toBeGreaterThan(0);
  for (const j of jobs) expect(Object.keys(j.data)).toEqual(['deliveryId']);
  // Errors: what BullMQ kept of the failed attempts (messages and stacks) and what the API helpers throw.
  const failed = jobs.filter((j) => j.failedReason);
  expect(failed.length).toBeGreaterThan(0);
  const errors = [JSON.stringify(jobs.map((j) => [j.failedReason, j.stacktrace, j.returnvalue]))];
  const t = tenants[0]!;
  const e = await createWebhook(db, keyring, t, { url: 'https://127.0.0.1/', events: ['*'], secret: secrets[0] }, { allowPrivate: false, allowHttp: false }).catch((x: Error) => x);
  errors.push(`${(e as Error).message} ${JSON.stringify(e)} ${(e as Error).stack}`);
  for (const s of secrets) for (const h of errors) expect(h).not.toContain(s);
});

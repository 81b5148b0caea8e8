import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createDb, type Db } from '../../../apps/core/src';
import { parseKeyring } from '../../../apps/core/src/secrets';
import { createWebhook, deliverWebhook, verifyWebhook, type Lookup } from '../../../apps/core/src/webhooks';
import { testConfig } from '../../support/env';

// https targets: the connection goes to the pinned address while TLS checks
// the certificate against the host name in the URL. The receiver has a
// self-signed certificate for "hooks.test", trusted through the `ca` option.

const config = testConfig();
const keyring = parseKeyring(`tls${randomBytes(3).toString('hex')}:${randomBytes(32).toString('base64')}`);
const log = pino({ level: 'silent' });
const policy = { allowPrivate: true, allowHttp: false };
const lookup: Lookup = async () => [{ address: '127.0.0.1', family: 4 }];
const dir = mkdtempSync(join(tmpdir(), 'vmrestore-webhook-tls-'));
let cert: string;
let server: Server;
let port: number;
let db: Db;
let tenantId: string;
const received: Array<{ headers: IncomingHttpHeaders; body: string; servername: string | false | null }> = [];

beforeAll(async () => {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=hooks.test', '-addext', 'subjectAltName=DNS:hooks.test',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), servername: (req.socket as import('node:tls').TLSSocket).servername });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  db = createDb(config.databaseUrl, { max: 2 });
  tenantId = (await db.tenant.create({ data: { name: `webhooks-tls-${randomUUID()}` } })).id;
});

afterAll(async () => {
  await db.tenant.delete({ where: { id: tenantId } }).catch(() => undefined);
  await db.$disconnect();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function delivery(host: string) {
  const { webhook, secret } = await createWebhook(db, keyring, tenantId, { url: `https://${host}:${port}/tls`, events: ['*'] }, policy, lookup);
  const d = await db.webhookDelivery.create({
    data: { webhookId: webhook.id, eventId: randomUUID(), eventType: 'job.started', payload: { id: 'x', type: 'job.started', createdAt: new Date().toISOString(), tenantId, data: {} } },
  });
  return { id: d.id, eventId: d.eventId, secret };
}

it('delivers over TLS to the pinned address, with SNI and certificate check on the host name', async () => {
  const { id, eventId, secret } = await delivery('hooks.test');
  expect(await deliverWebhook({ db, keyring, log, policy, lookup, ca: cert }, id)).toMatchObject({ kind: 'delivered', statusCode: 200 });
  const [req] = received;
  expect(req!.servername).toBe('hooks.test');
  expect(req!.headers.host).toBe(`hooks.test:${port}`);
  expect(verifyWebhook(secret, req!.headers, req!.body).id).toBe(eventId);
});

it('refuses a certificate that is not trusted, or not for the host name', async () => {
  const untrusted = await delivery('hooks.test');
  expect(await deliverWebhook({ db, keyring, log, policy, lookup }, untrusted.id)).toEqual({ kind: 'retry', error: 'TLS certificate refused (DEPTH_ZERO_SELF_SIGNED_CERT)' });
  const wrongName = await delivery('other.test');
  expect(await deliverWebhook({ db, keyring, log, policy, lookup, ca: cert }, wrongName.id)).toEqual({ kind: 'retry', error: 'TLS certificate refused (ERR_TLS_CERT_ALTNAME_INVALID)' });
  expect(received).toHaveLength(1);
});

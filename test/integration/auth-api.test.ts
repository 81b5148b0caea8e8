import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Writable } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import { buildApp, ROUTE_SCOPES } from '@vmrestore/api';
import { decryptSecret, loadOpenApi, parseKeyring, SCOPES, secretContext, vcenterCredentials, type Scope } from '@vmrestore/core';
import { testConfig } from '../support/env';
import { checkContract } from '../support/contract';
import { createKey, createTenantWithKey, testSecurity, type TestTenant } from '../support/auth';
import { startVcsim, type Vcsim } from '../support/vcsim';

// Authentication, scopes and tenant isolation over every route, with every
// response checked against openapi.yaml and every log line captured: no
// secret used here (API keys, vCenter passwords, webhook secrets) may appear
// in a log.

const config = testConfig();
let app: FastifyInstance;
const logLines: string[] = [];
/** Every secret this file uses; none may be logged. */
const secrets: string[] = [];
let sim: Vcsim;

interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  template: string;
  headers?: Record<string, string>;
  body?: unknown;
}

async function call(c: Call): Promise<{ res: LightMyRequestResponse; body: Record<string, any> }> {
  const res = await app.inject({
    method: c.method,
    url: c.url,
    headers: { ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}), ...c.headers },
    ...(c.body !== undefined ? { payload: JSON.stringify(c.body) } : {}),
  });
  const body = (checkContract(c.method, c.template, res) ?? {}) as Record<string, any>;
  return { res, body };
}

/** A concrete URL for a route template: random ids, fixed backup names. */
const concrete = (template: string) =>
  template.replace('{id}', randomUUID()).replace('{deliveryId}', randomUUID()).replace('{vm}', 'vm1').replace('{point}', 'p1');

beforeAll(async () => {
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  app = await buildApp({ config, logStream, logLevel: 'debug', security: testSecurity() });
  await app.ready();
  sim = await startVcsim();
  secrets.push(sim.password);
});
afterAll(async () => {
  await sim?.stop();
  await app.restoreQueue.obliterate({ force: true }).catch(() => undefined);
  await app.close();
});

describe('the route → scope table', () => {
  it('matches openapi.yaml: every /v1 operation is in the table with the same x-scopes, and secured', () => {
    const doc = loadOpenApi();
    const fromDoc: Record<string, string[]> = {};
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const o = op as unknown as { 'x-scopes'?: string[]; security?: unknown[]; responses: Record<string, unknown> };
        if (!path.startsWith('/v1/')) {
          expect([path, o.security]).toEqual([path, []]);
          continue;
        }
        fromDoc[`${method.toUpperCase()} ${path}`] = o['x-scopes'] ?? [];
        expect([path, method, Object.keys(o.responses)]).toEqual([path, method, expect.arrayContaining(['401', '403', '429'])]);
        expect(o.security).toEqual([{ bearerAuth: [] }, { apiKeyHeader: [] }]);
      }
    }
    expect(fromDoc).toEqual(Object.fromEntries(Object.entries(ROUTE_SCOPES).map(([k, v]) => [k, [...v]])));
  });

  const rows = Object.entries(ROUTE_SCOPES).map(([route, needed]) => {
    const [method, template] = route.split(' ') as [Call['method'], string];
    return { route, method, template, needed };
  });
  let keys: Record<string, TestTenant | { key: string; headers: { authorization: string } }>;
  let tenant: TestTenant;
  beforeAll(async () => {
    tenant = await createTenantWithKey(app.db, ['restores:read']);
    keys = {};
    for (const s of SCOPES) keys[s] = await createKey(app.db, tenant.tenantId, [s]);
    secrets.push(tenant.key, ...Object.values(keys).map((k) => k.key));
  });

  it.each(rows)('$route: 403 FORBIDDEN_SCOPE without $needed, admitted with it', async ({ method, template, needed }) => {
    const body = method === 'POST' ? {} : undefined;
    // A key holding every other scope is still refused.
    const others = SCOPES.filter((s) => !needed.includes(s));
    const without = await createKey(app.db, tenant.tenantId, others);
    secrets.push(without.key);
    const refused = await call({ method, url: concrete(template), template, headers: without.headers, body });
    expect([refused.res.statusCode, refused.body.code]).toEqual([403, 'FORBIDDEN_SCOPE']);
    for (const scope of needed) {
      const ok = await call({ method, url: concrete(template), template, headers: keys[scope]!.headers, body });
      expect([scope, ok.res.statusCode]).not.toEqual([scope, 403]);
      expect([scope, ok.res.statusCode]).not.toEqual([scope, 401]);
    }
  });
});

describe('authentication', () => {
  let t: TestTenant;
  beforeAll(async () => {
    t = await createTenantWithKey(app.db, ['restores:read', 'admin']);
    secrets.push(t.key);
  });
  const list = (headers: Record<string, string>) => call({ method: 'GET', url: '/v1/restores', template: '/v1/restores', headers });

  it('admits a key by Authorization: Bearer and by X-API-Key', async () => {
    expect((await list(t.headers)).res.statusCode).toBe(200);
    expect((await list({ 'x-api-key': t.key })).res.statusCode).toBe(200);
    expect((await list({ authorization: `bearer ${t.key}` })).res.statusCode).toBe(200);
  });

  const fake = () => `vmr_${'A'.repeat(12)}_${randomBytes(32).toString('hex').slice(0, 40)}`;
  it.each([
    ['no key', () => ({})],
    ['another scheme', () => ({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` })],
    ['Bearer without a key', () => ({ authorization: 'Bearer' })],
    ['a malformed key', () => ({ authorization: 'Bearer not-a-key' })],
    ['a malformed X-API-Key', () => ({ 'x-api-key': 'vmr_short_x' })],
    ['an unknown key', () => ({ authorization: `Bearer ${fake()}` })],
  ])('401 UNAUTHENTICATED for %s', async (_name, headers) => {
    const h = headers() as Record<string, string>;
    for (const v of Object.values(h)) secrets.push(v.replace(/^Bearer /, ''));
    const { res, body } = await list(h);
    expect([res.statusCode, body.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('401s a known prefix with the wrong secret', async () => {
    const wrong = t.key.replace(/_[A-Za-z0-9]+$/, `_${'x'.repeat(43)}`);
    secrets.push(wrong);
    const { res } = await list({ authorization: `Bearer ${wrong}` });
    expect(res.statusCode).toBe(401);
  });

  it('401s a revoked key at once, and records lastUsedAt of a used one', async () => {
    const k = await createKey(app.db, t.tenantId, ['restores:read']);
    secrets.push(k.key);
    expect((await list(k.headers)).res.statusCode).toBe(200);
    const revoked = await call({ method: 'DELETE', url: `/v1/keys/${k.keyId}`, template: '/v1/keys/{id}', headers: t.headers });
    expect(revoked.res.statusCode).toBe(204);
    const after = await list(k.headers);
    expect([after.res.statusCode, after.body.code, after.body.detail]).toEqual([401, 'UNAUTHENTICATED', expect.stringContaining('revoked')]);
    const row = await app.db.apiKey.findUniqueOrThrow({ where: { id: k.keyId } });
    expect(row.lastUsedAt).not.toBeNull();
    expect(row.revokedAt).not.toBeNull();
  });

  it('leaves /healthz, /readyz and /docs public, and 404s unknown routes without asking for a key', async () => {
    expect((await call({ method: 'GET', url: '/healthz', template: '/healthz' })).res.statusCode).toBe(200);
    expect((await call({ method: 'GET', url: '/readyz', template: '/readyz' })).res.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v1/nothing' })).statusCode).toBe(404);
  });

  it('refuses before reading the body: an unauthenticated 2 MB POST is 401, not 413', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/restores', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ label: 'x'.repeat(2 * 1024 * 1024) }) });
    expect(res.statusCode).toBe(401);
  });
});

describe('API keys through the API', () => {
  it('creates a key shown once, lists keys without it, and an admin cannot create other scopes than exist', async () => {
    const admin = await createTenantWithKey(app.db, ['admin']);
    secrets.push(admin.key);
    const created = await call({ method: 'POST', url: '/v1/keys', template: '/v1/keys', headers: admin.headers, body: { name: 'ci runner', scopes: ['restores:read', 'restores:write'] } });
    expect(created.res.statusCode).toBe(201);
    expect(created.res.headers.location).toBe(`/v1/keys/${created.body.id}`);
    const key = created.body.key as string;
    secrets.push(key);
    expect(key).toMatch(/^vmr_[A-Za-z0-9]{12}_[A-Za-z0-9]{43}$/);
    expect(key.startsWith(`vmr_${created.body.prefix}_`)).toBe(true);
    const row = await app.db.apiKey.findUniqueOrThrow({ where: { id: created.body.id } });
    expect(row.hash).not.toContain(key.split('_')[2]);
    expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
    const listed = await call({ method: 'GET', url: '/v1/keys', template: '/v1/keys', headers: admin.headers });
    expect(listed.body.items.map((k: { id: string }) => k.id)).toEqual([created.body.id, admin.keyId]);
    expect(JSON.stringify(listed.body)).not.toContain(key);
    const works = await call({ method: 'GET', url: '/v1/restores', template: '/v1/restores', headers: { authorization: `Bearer ${key}` } });
    expect(works.res.statusCode).toBe(200);
    const bad = await call({ method: 'POST', url: '/v1/keys', template: '/v1/keys', headers: admin.headers, body: { name: 'x', scopes: ['root'] } });
    expect([bad.res.statusCode, bad.body.errors[0].field]).toEqual([400, 'scopes.0']);
  });
});

describe('vCenter connections', () => {
  let admin: TestTenant;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  beforeAll(async () => {
    admin = await createTenantWithKey(app.db, ['admin', 'restores:read']);
    secrets.push(admin.key, password);
  });
  const create = (body: Record<string, unknown>) => call({ method: 'POST', url: '/v1/vcenters', template: '/v1/vcenters', headers: admin.headers, body });

  it('stores the password encrypted, never returns it, and decrypts it only with the right keyring', async () => {
    const { res, body } = await create({ name: 'vc-enc', url: 'https://vc.example.test/sdk', username: 'administrator@vsphere.local', password, insecure: true });
    expect(res.statusCode).toBe(201);
    expect(JSON.stringify(body)).not.toContain(password);
    expect(body).toMatchObject({ name: 'vc-enc', insecure: true, hasCaBundle: false });
    const got = await call({ method: 'GET', url: `/v1/vcenters/${body.id}`, template: '/v1/vcenters/{id}', headers: admin.headers });
    expect(JSON.stringify(got.body)).not.toContain(password);
    const list = await call({ method: 'GET', url: '/v1/vcenters', template: '/v1/vcenters', headers: admin.headers });
    expect(list.body.items.map((v: { id: string }) => v.id)).toContain(body.id);

    const row = await app.db.vCenterConnection.findUniqueOrThrow({ where: { id: body.id } });
    expect(row.passwordCiphertext.length).toBeGreaterThan(0);
    expect(Buffer.from(row.passwordCiphertext).includes(Buffer.from(password))).toBe(false);
    expect(vcenterCredentials(app.keyring!, row).password).toBe(password);
    // The same key id with other key material: authentication fails.
    const other = parseKeyring(`${row.passwordKeyId}:${randomBytes(32).toString('base64')}`);
    expect(() => decryptSecret(other, row.passwordCiphertext, row.passwordKeyId, secretContext.vcenterPassword(row.id))).toThrow(expect.objectContaining({ code: 'SECRET_DECRYPT_FAILED' }));
    // Bound to its row: another row's context does not decrypt it.
    expect(() => decryptSecret(app.keyring!, row.passwordCiphertext, row.passwordKeyId, secretContext.vcenterPassword(randomUUID()))).toThrow();
  });

  it('refuses bad input naming the field, and never echoes the password', async () => {
    const bad = await create({ name: 'vc-bad', url: 'http://vc.example.test/sdk', username: 'u', password, insecure: true });
    expect([bad.res.statusCode, bad.body.errors[0].field]).toEqual([400, 'url']);
    expect(bad.res.body).not.toContain(password);
    const unknown = await create({ name: 'vc-bad2', url: 'https://vc/sdk', username: 'u', password, insecure: true, extra: 1 });
    expect(unknown.res.statusCode).toBe(400);
    expect(unknown.res.body).not.toContain(password);
    const thumb = await create({ name: 'vc-bad3', url: 'https://vc/sdk', username: 'u', password, thumbprint: 'zz'.repeat(20) });
    expect([thumb.res.statusCode, thumb.body.errors[0].field]).toEqual([400, 'thumbprint']);
    const first = await create({ name: 'vc-twice', url: 'https://vc/sdk', username: 'u', password, insecure: true });
    expect(first.res.statusCode).toBe(201);
    const twice = await create({ name: 'vc-twice', url: 'https://vc/sdk', username: 'u', password, insecure: true });
    expect([twice.res.statusCode, twice.body.code]).toEqual([409, 'VCENTER_NAME_TAKEN']);
  });

  it('tests a connection: ok against vcsim with the pinned thumbprint, a fault code with a wrong password or no server', async () => {
    const good = await create({ name: 'vcsim-good', url: sim.url, username: sim.username, password: sim.password, thumbprint: sim.thumbprintSha256 });
    expect(good.res.statusCode).toBe(201);
    const ok = await call({ method: 'POST', url: `/v1/vcenters/${good.body.id}/test`, template: '/v1/vcenters/{id}/test', headers: admin.headers });
    expect(ok.body).toMatchObject({ ok: true, apiVersion: expect.any(String) });

    const wrongPw = `wrong-${randomBytes(8).toString('hex')}`;
    secrets.push(wrongPw);
    const bad = await create({ name: 'vcsim-bad', url: sim.url, username: sim.username, password: wrongPw, thumbprint: sim.thumbprintSha256 });
    const refused = await call({ method: 'POST', url: `/v1/vcenters/${bad.body.id}/test`, template: '/v1/vcenters/{id}/test', headers: admin.headers });
    expect(refused.body.ok).toBe(false);
    expect(refused.body.error.code).toBe('VSPHERE_INVALID_LOGIN');
    expect(refused.res.body).not.toContain(wrongPw);

    const gone = await create({ name: 'vc-nowhere', url: 'https://127.0.0.1:1/sdk', username: 'u', password, insecure: true });
    const down = await call({ method: 'POST', url: `/v1/vcenters/${gone.body.id}/test`, template: '/v1/vcenters/{id}/test', headers: admin.headers });
    expect(down.body).toMatchObject({ ok: false, error: { code: 'VSPHERE_NETWORK' } });
  });

  it('deletes a connection', async () => {
    const { body } = await create({ name: 'vc-del', url: 'https://vc.example.test/sdk', username: 'u', password, insecure: true });
    expect((await call({ method: 'DELETE', url: `/v1/vcenters/${body.id}`, template: '/v1/vcenters/{id}', headers: admin.headers })).res.statusCode).toBe(204);
    expect((await call({ method: 'GET', url: `/v1/vcenters/${body.id}`, template: '/v1/vcenters/{id}', headers: admin.headers })).body.code).toBe('VCENTER_NOT_FOUND');
  });
});

describe('tenant isolation: another tenant’s ids are 404, its lists do not show them', () => {
  let a: TestTenant;
  let b: TestTenant;
  const ids: Record<string, string> = {};
  let webhookSecret = '';
  const vcPassword = `pw-${randomBytes(12).toString('hex')}`;
  beforeAll(async () => {
    a = await createTenantWithKey(app.db);
    b = await createTenantWithKey(app.db);
    secrets.push(a.key, b.key, vcPassword);
    const job = await call({ method: 'POST', url: '/v1/restores', template: '/v1/restores', headers: a.headers, body: { kind: 'in_place', vcenter: 'vc1', source: { vm: 'web01', point: 'p1' }, target: { vm: `vm-${Date.now()}` } } });
    ids.job = job.body.id;
    const vc = await call({ method: 'POST', url: '/v1/vcenters', template: '/v1/vcenters', headers: a.headers, body: { name: 'shared-name', url: 'https://vc.a.test/sdk', username: 'u', password: vcPassword, insecure: true } });
    ids.vcenter = vc.body.id;
    const hook = await call({ method: 'POST', url: '/v1/webhooks', template: '/v1/webhooks', headers: a.headers, body: { url: 'https://8.8.8.8/hook', events: ['*'] } });
    expect(hook.res.statusCode).toBe(201);
    secrets.push(hook.body.secret);
    webhookSecret = hook.body.secret;
    expect(webhookSecret).toMatch(/^whsec_/);
    ids.webhook = hook.body.id;
    const delivery = await app.db.webhookDelivery.create({ data: { webhookId: ids.webhook!, eventId: randomUUID(), eventType: 'job.succeeded', jobId: ids.job!, payload: {}, status: 'failed' } });
    ids.delivery = delivery.id;
    const key = await call({ method: 'POST', url: '/v1/keys', template: '/v1/keys', headers: a.headers, body: { name: 'a2', scopes: ['restores:read'] } });
    secrets.push(key.body.key);
    ids.key = key.body.id;
  });

  const attempts: Array<[string, () => Call]> = [
    ['GET /v1/restores/{id}', () => ({ method: 'GET', url: `/v1/restores/${ids.job}`, template: '/v1/restores/{id}' })],
    ['GET /v1/restores/{id}/events', () => ({ method: 'GET', url: `/v1/restores/${ids.job}/events`, template: '/v1/restores/{id}/events' })],
    ['GET /v1/restores/{id}/events (stream)', () => ({ method: 'GET', url: `/v1/restores/${ids.job}/events`, template: '/v1/restores/{id}/events', headers: { accept: 'text/event-stream' } })],
    ['POST /v1/restores/{id}/cancel', () => ({ method: 'POST', url: `/v1/restores/${ids.job}/cancel`, template: '/v1/restores/{id}/cancel' })],
    ['GET /v1/restores/{id}/report', () => ({ method: 'GET', url: `/v1/restores/${ids.job}/report`, template: '/v1/restores/{id}/report' })],
    ['DELETE /v1/keys/{id}', () => ({ method: 'DELETE', url: `/v1/keys/${ids.key}`, template: '/v1/keys/{id}' })],
    ['GET /v1/vcenters/{id}', () => ({ method: 'GET', url: `/v1/vcenters/${ids.vcenter}`, template: '/v1/vcenters/{id}' })],
    ['DELETE /v1/vcenters/{id}', () => ({ method: 'DELETE', url: `/v1/vcenters/${ids.vcenter}`, template: '/v1/vcenters/{id}' })],
    ['POST /v1/vcenters/{id}/test', () => ({ method: 'POST', url: `/v1/vcenters/${ids.vcenter}/test`, template: '/v1/vcenters/{id}/test' })],
    ['DELETE /v1/webhooks/{id}', () => ({ method: 'DELETE', url: `/v1/webhooks/${ids.webhook}`, template: '/v1/webhooks/{id}' })],
    ['GET /v1/webhooks/{id}/deliveries', () => ({ method: 'GET', url: `/v1/webhooks/${ids.webhook}/deliveries`, template: '/v1/webhooks/{id}/deliveries' })],
    ['POST /v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', () => ({ method: 'POST', url: `/v1/webhooks/${ids.webhook}/deliveries/${ids.delivery}/redeliver`, template: '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver' })],
  ];

  it('covers every id-taking route of the table', () => {
    const idRoutes = Object.keys(ROUTE_SCOPES).filter((r) => r.includes('{id}'));
    expect(new Set(attempts.map(([n]) => n.replace(' (stream)', '')))).toEqual(new Set(idRoutes));
  });

  it.each(attempts)('%s → 404', async (_name, make) => {
    const c = make();
    const { res, body } = await call({ ...c, headers: { ...b.headers, ...c.headers } });
    expect(res.statusCode).toBe(404);
    expect(body.code).toMatch(/_NOT_FOUND$/);
  });

  it('lists nothing of the other tenant, and everything is still there for its owner', async () => {
    for (const [url, template] of [['/v1/restores', '/v1/restores'], ['/v1/vcenters', '/v1/vcenters'], ['/v1/webhooks', '/v1/webhooks'], ['/v1/keys', '/v1/keys']] as const) {
      const mine = await call({ method: 'GET', url, template, headers: b.headers });
      const seen = JSON.stringify(mine.body);
      for (const id of Object.values(ids)) expect(seen).not.toContain(id);
    }
    expect((await call({ method: 'GET', url: `/v1/restores/${ids.job}`, template: '/v1/restores/{id}', headers: a.headers })).res.statusCode).toBe(200);
    expect((await call({ method: 'GET', url: `/v1/vcenters/${ids.vcenter}`, template: '/v1/vcenters/{id}', headers: a.headers })).res.statusCode).toBe(200);
    const hooks = await call({ method: 'GET', url: '/v1/webhooks', template: '/v1/webhooks', headers: a.headers });
    expect(hooks.body.items.map((h: { id: string }) => h.id)).toContain(ids.webhook);
    expect(JSON.stringify(hooks.body)).not.toContain(webhookSecret);
    const deliveries = await call({ method: 'GET', url: `/v1/webhooks/${ids.webhook}/deliveries`, template: '/v1/webhooks/{id}/deliveries', headers: a.headers });
    expect(deliveries.body.items.map((d: { id: string }) => d.id)).toEqual([ids.delivery]);
    expect((await app.db.apiKey.findUniqueOrThrow({ where: { id: ids.key } })).revokedAt).toBeNull();
    // A tenant may reuse another tenant's vCenter name.
    const same = await call({ method: 'POST', url: '/v1/vcenters', template: '/v1/vcenters', headers: b.headers, body: { name: 'shared-name', url: 'https://vc.b.test/sdk', username: 'u', password: vcPassword, insecure: true } });
    expect(same.res.statusCode).toBe(201);
  });

  it('redelivers its own delivery (202) and refuses a delivery of another webhook (404)', async () => {
    const ok = await call({ method: 'POST', url: `/v1/webhooks/${ids.webhook}/deliveries/${ids.delivery}/redeliver`, template: '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', headers: a.headers });
    expect(ok.res.statusCode).toBe(202);
    const hook2 = await call({ method: 'POST', url: '/v1/webhooks', template: '/v1/webhooks', headers: a.headers, body: { url: 'https://8.8.4.4/hook', events: ['job.succeeded'] } });
    secrets.push(hook2.body.secret);
    const wrong = await call({ method: 'POST', url: `/v1/webhooks/${hook2.body.id}/deliveries/${ids.delivery}/redeliver`, template: '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', headers: a.headers });
    expect(wrong.res.statusCode).toBe(404);
    await app.webhookQueue.obliterate({ force: true }).catch(() => undefined);
  });

  it('refuses a webhook to a private address unless VMRESTORE_WEBHOOK_ALLOW_PRIVATE', async () => {
    const r = await call({ method: 'POST', url: '/v1/webhooks', template: '/v1/webhooks', headers: a.headers, body: { url: 'https://127.0.0.1:9/hook', events: ['*'], secret: `s-${randomBytes(16).toString('hex')}` } });
    expect([r.res.statusCode, r.body.code]).toEqual([422, 'WEBHOOK_TARGET_REFUSED']);
  });
});

describe('VMRESTORE_AUTH=disabled (local demos)', () => {
  it('runs every request as the default tenant without a key', async () => {
    const open = await buildApp({ config, logLevel: 'silent', security: testSecurity({ auth: 'disabled' }) });
    try {
      const res = await open.inject({ method: 'GET', url: '/v1/keys' });
      checkContract('GET', '/v1/keys', res);
      expect(res.statusCode).toBe(200);
      const job = await open.inject({ method: 'POST', url: '/v1/restores', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ kind: 'in_place', vcenter: 'vc1', source: { vm: 'w', point: 'p' }, target: { vm: `vm-${Date.now()}` } }) });
      expect(job.statusCode).toBe(202);
      const row = await open.db.restoreJob.findUniqueOrThrow({ where: { id: JSON.parse(job.body).id } });
      expect(row.tenantId).toBe(open.defaultTenantId);
      await open.restoreQueue.obliterate({ force: true }).catch(() => undefined);
    } finally {
      await open.close();
    }
  });
});

describe('rate limiting and CORS', () => {
  it('429s past VMRESTORE_RATE_LIMIT_PER_MIN per key, with Retry-After; other keys are unaffected', async () => {
    const limited = await buildApp({ config, logLevel: 'silent', security: testSecurity({ rateLimitPerMin: 3 }) });
    try {
      const one = await createTenantWithKey(limited.db, ['restores:read']);
      const two = await createKey(limited.db, one.tenantId, ['restores:read']);
      secrets.push(one.key, two.key);
      const get = (headers: Record<string, string>) => limited.inject({ method: 'GET', url: '/v1/restores', headers });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await get(one.headers)).statusCode);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const refused = await get(one.headers);
      const body = checkContract('GET', '/v1/restores', refused) as Record<string, unknown>;
      expect(body.code).toBe('RATE_LIMITED');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(20);
      expect((await get(two.headers)).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('sends no CORS headers by default', async () => {
    const t = await createTenantWithKey(app.db, ['restores:read']);
    secrets.push(t.key);
    const res = await app.inject({ method: 'GET', url: '/v1/restores', headers: { ...t.headers, origin: 'https://ui.example.test' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect((await app.inject({ method: 'OPTIONS', url: '/v1/restores', headers: { origin: 'https://ui.example.test', 'access-control-request-method': 'GET' } })).statusCode).toBe(404);
  });

  it('answers only the listed origins when VMRESTORE_CORS_ORIGINS is set', async () => {
    const cors = await buildApp({ config, logLevel: 'silent', security: testSecurity({ corsOrigins: ['https://ui.example.test'] }) });
    try {
      const t = await createTenantWithKey(cors.db, ['restores:read']);
      secrets.push(t.key);
      const pre = await cors.inject({ method: 'OPTIONS', url: '/v1/restores', headers: { origin: 'https://ui.example.test', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
      expect(pre.statusCode).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBe('https://ui.example.test');
      expect(String(pre.headers['access-control-allow-headers'])).toContain('authorization');
      const ok = await cors.inject({ method: 'GET', url: '/v1/restores', headers: { ...t.headers, origin: 'https://ui.example.test' } });
      expect(ok.headers['access-control-allow-origin']).toBe('https://ui.example.test');
      const other = await cors.inject({ method: 'GET', url: '/v1/restores', headers: { ...t.headers, origin: 'https://evil.example.test' } });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      const otherPre = await cors.inject({ method: 'OPTIONS', url: '/v1/restores', headers: { origin: 'https://evil.example.test', 'access-control-request-method': 'GET' } });
      expect(otherPre.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await cors.close();
    }
  });
});

afterAll(() => {
  // Last: every secret used above, searched in every captured log line.
  const logs = logLines.join('');
  expect(logLines.length).toBeGreaterThan(50);
  const leaked = [...new Set(secrets)].filter((s) => s && s.length >= 8 && logs.includes(s));
  expect(leaked).toEqual([]);
});

export type { Scope };

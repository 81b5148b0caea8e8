import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { buildApp } from '@vmrestore/api';
import { run } from '../../apps/cli/src/main';
import { testConfig } from '../support/env';
import { checkContract } from '../support/contract';
import { testSecurity } from '../support/auth';

// `vmrestore admin ...` against DATABASE_URL (the bootstrap path: the first
// key of a tenant cannot come from the API), then the key it printed used
// against the API, then revoked.

const config = testConfig();
let app: FastifyInstance;
const logLines: string[] = [];

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(args, { write: (s: string) => void (out += s) }, { write: (s: string) => void (err += s) });
  return { code, out, err };
}
const list = (key: string) => app.inject({ method: 'GET', url: '/v1/restores', headers: { authorization: `Bearer ${key}` } });

beforeAll(async () => {
  const logStream = new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } });
  app = await buildApp({ config, logStream, logLevel: 'info', security: testSecurity() });
});
afterAll(async () => {
  await app.close();
});

it('creates a tenant and a key (printed once), lists and revokes it', async () => {
  const name = `acme-${randomUUID().slice(0, 8)}`;
  const t = await cli('admin', 'tenant', 'create', name);
  expect([t.code, t.err]).toEqual([0, '']);
  expect(t.out).toMatch(new RegExp(`tenant created: ${name} \\([0-9a-f-]{36}\\)`));
  expect((await cli('admin', 'tenant', 'create', name)).err).toMatch(/TENANT_EXISTS/);
  expect((await cli('admin', 'tenant', 'list')).out).toContain(name);

  const k = await cli('admin', 'key', 'create', '--tenant', name, '--name', 'backup-product', '--scopes', 'restores:read,restores:write', '--json');
  expect(k.code).toBe(0);
  const created = JSON.parse(k.out) as { id: string; key: string; scopes: string[]; tenant: string };
  expect(created).toMatchObject({ tenant: name, scopes: ['restores:read', 'restores:write'] });
  expect(created.key).toMatch(/^vmr_[A-Za-z0-9]{12}_[A-Za-z0-9]{43}$/);

  const res = await list(created.key);
  checkContract('GET', '/v1/restores', res);
  expect(res.statusCode).toBe(200);

  const human = await cli('admin', 'key', 'create', '--tenant', name, '--name', 'ops', '--scopes', 'admin');
  const printed = /^(vmr_\S+)$/m.exec(human.out)?.[1];
  expect(printed).toBeDefined();
  expect(human.out).toMatch(/only time the key is shown/);

  const listed = await cli('admin', 'key', 'list', '--tenant', name);
  expect(listed.out).toContain(created.id);
  expect(listed.out).not.toContain(created.key);
  expect(listed.out).not.toContain(printed!);

  const revoked = await cli('admin', 'key', 'revoke', created.id);
  expect([revoked.code, revoked.out]).toEqual([0, expect.stringContaining(`revoked: ${created.id}`)]);
  expect((await list(created.key)).statusCode).toBe(401);
  expect((await list(printed!)).statusCode).toBe(403); // admin only: no restores:read

  expect(logLines.join('')).not.toContain(created.key);
});

it('refuses bad input with exit 2 (usage) or 3 (refused)', async () => {
  expect((await cli('admin', 'key', 'create', '--tenant', 'no-such-tenant', '--name', 'x', '--scopes', 'admin')).err).toMatch(/TENANT_NOT_FOUND/);
  const badScope = await cli('admin', 'key', 'create', '--tenant', 'default', '--name', 'x', '--scopes', 'root');
  expect([badScope.code, badScope.err]).toEqual([3, expect.stringMatching(/API_KEY_INVALID.*root/)]);
  expect((await cli('admin', 'key', 'create', '--tenant', 'default')).code).toBe(2);
  expect((await cli('admin', 'frob', 'nicate')).code).toBe(2);
  expect((await cli('admin', 'key', 'revoke', randomUUID())).err).toMatch(/API_KEY_NOT_FOUND/);
  expect((await cli('admin', 'tenant', 'create', 'Bad Name!')).code).toBe(3);
});

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, createVcenterConnection, loadKeyring, type Db } from '@vmrestore/core';
import { envFor, ROOT, serviceEnv, testConfig } from '../support/env';
import { startApi, startTestWorker, stop, type Proc } from '../support/processes';
import { createTenantWithKey, type TestTenant } from '../support/auth';
import { startVcsim, type Vcsim } from '../support/vcsim';

// `vmrestore doctor` and `vmrestore completion`, the real binary
// (apps/cli/dist/main.js) against the real Postgres, Redis, API, a worker
// and the vcsim harness: everything ok, then one thing broken at a time.

const CLI = join(ROOT, 'apps/cli/dist/main.js');
const config = testConfig();
const env = envFor(config, { TEST_PLAN_DIR: mkdtempSync(join(tmpdir(), 'vmrestore-doctor-')) });
let db: Db;
let sim: Vcsim;
let api: Proc & { url: string };
let worker: Proc;
let tenant: TestTenant;
let badTenant: TestTenant;
let closedPort: number;
const backups = mkdtempSync(join(tmpdir(), 'vmrestore-doctor-backups-'));

interface Check {
  check: string;
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  hint?: string;
}

/** The server host's environment, as the worker would have it. */
function hostEnv(over: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH!,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    VMRESTORE_SECRET_KEYS: serviceEnv().VMRESTORE_SECRET_KEYS!,
    VMRESTORE_QUEUE_PREFIX: config.queue.prefix,
    VMRESTORE_API_URL: api.url,
    VMRESTORE_API_KEY: tenant.key,
    VMRESTORE_DATASTORE_PATHS: Object.entries(sim.datastores).map(([k, v]) => `${k}=${v}`).join(';'),
    VMRESTORE_VDDK_LIB_DIR: join(ROOT, 'native-vddk/build/sim'),
    VMRESTORE_BACKUP_ROOTS: backups,
    ...over,
  };
}

function doctor(args: string[], over: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, 'doctor', '--json', '--timeout', '5s', ...args], { cwd: ROOT, env: hostEnv(over), encoding: 'utf8', timeout: 90_000 });
  let report: { ok: boolean; checks: Check[] } = { ok: false, checks: [] };
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return { code: r.status, report, raw: r.stdout + r.stderr, find: (name: string) => report.checks.find((c) => c.name === name) };
}

beforeAll(async () => {
  db = createDb(config.databaseUrl, { max: 2 });
  sim = await startVcsim();
  tenant = await createTenantWithKey(db, ['restores:read']);
  badTenant = await createTenantWithKey(db, ['restores:read']);
  const keyring = loadKeyring(serviceEnv());
  const conn = { url: sim.url, username: sim.username, password: sim.password };
  await createVcenterConnection(db, keyring, tenant.tenantId, { ...conn, name: 'lab', thumbprint: sim.thumbprintSha256 });
  // A pinned thumbprint that is not the server's: a certificate changed under us.
  await createVcenterConnection(db, keyring, badTenant.tenantId, { ...conn, name: 'lab', thumbprint: sim.thumbprintSha256.replace(/^../, sim.thumbprintSha256.startsWith('00') ? '11' : '00') });
  api = await startApi(env);
  worker = await startTestWorker(env);
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closedPort = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await sim?.stop();
  await db?.$disconnect();
});

describe('vmrestore doctor', () => {
  it('all ok on a healthy host: exit 0, every check ok, no secret in the output', () => {
    const r = doctor(['--tenant', tenant.tenantName]);
    const notOk = r.report.checks.filter((c) => c.status !== 'ok');
    expect(notOk).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.report.ok).toBe(true);
    const names = r.report.checks.map((c) => c.name);
    expect(names).toEqual(
      expect.arrayContaining(['config', 'postgres', 'postgres migrations', 'redis', 'redis maxmemory-policy', 'redis persistence', 'redis workers', 'api', 'api key', `vcenter ${tenant.tenantName}/lab`, 'vddk', 'datastore LocalDS_0', `backup root ${backups}`]),
    );
    expect(r.find(`vcenter ${tenant.tenantName}/lab`)!.detail).toMatch(/logged in .*thumbprint matches/);
    expect(r.find('vddk')!.detail).toMatch(/libvixDiskLib\.so\.8 \(VDDK 8\)/);
    for (const secret of [new URL(config.databaseUrl).password, tenant.key, serviceEnv().VMRESTORE_SECRET_KEYS!.split(':')[1]!]) {
      if (secret) expect(r.raw).not.toContain(secret);
    }
  });

  it('a thumbprint that does not match fails the vCenter check with a hint, exit 5', () => {
    const r = doctor(['--tenant', badTenant.tenantName, '--only', 'vcenters']);
    expect(r.code).toBe(5);
    const c = r.find(`vcenter ${badTenant.tenantName}/lab`)!;
    expect(c.status).toBe('fail');
    expect(c.detail).toContain('TLS_UNTRUSTED');
    expect(c.hint).toMatch(/thumbprint/);
  });

  it('a bad REDIS_URL fails the redis check, and the rest still runs', () => {
    const r = doctor(['--tenant', tenant.tenantName], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(5);
    expect(r.find('redis')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ECONNREFUSED/) });
    expect(r.find('postgres')!.status).toBe('ok');
    expect(r.find(`vcenter ${tenant.tenantName}/lab`)!.status).toBe('ok');
  });

  it('a datastore path that does not exist and a VDDK dir without the library fail', () => {
    const r = doctor(['--only', 'datastores,vddk'], { VMRESTORE_DATASTORE_PATHS: 'LocalDS_0=/nonexistent/vmrestore-ds', VMRESTORE_VDDK_LIB_DIR: backups });
    expect(r.code).toBe(5);
    expect(r.report.checks.map((c) => [c.name, c.status])).toEqual([
      ['vddk', 'fail'],
      ['datastore LocalDS_0', 'fail'],
    ]);
    expect(r.find('datastore LocalDS_0')!.detail).toMatch(/ENOENT/);
    expect(r.find('vddk')!.detail).toMatch(/no libvixDiskLib\.so\.8, \.7 or \.6/);
  });

  it('a wrong API key and an unreachable API fail the api checks', () => {
    const bad = doctor(['--only', 'api'], { VMRESTORE_API_KEY: 'vmr_wrong_key' });
    expect(bad.code).toBe(5);
    expect(bad.find('api')!.status).toBe('ok');
    expect(bad.find('api key')!.status).toBe('fail');
    expect(bad.raw).not.toContain('vmr_wrong_key');
    const down = doctor(['--only', 'api'], { VMRESTORE_API_URL: `http://127.0.0.1:${closedPort}` });
    expect(down.find('api')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('human output: one line per check, hints under failures', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--only', 'datastores'], { env: hostEnv({ VMRESTORE_DATASTORE_PATHS: 'X=/nonexistent/x' }), encoding: 'utf8' });
    expect(r.status).toBe(5);
    expect(r.stdout).toMatch(/^FAIL  datastore X\s+\/nonexistent\/x: ENOENT/m);
    expect(r.stdout).toMatch(/^\s+hint: mount the datastore/m);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('0 ok, 0 warnings, 1 failed');
  });
});

describe('vmrestore completion', () => {
  const script = (shell: string) => spawnSync(process.execPath, [CLI, 'completion', shell], { encoding: 'utf8' });

  it('bash: the script passes bash -n and completes commands, options and values', () => {
    const s = script('bash');
    expect(s.status).toBe(0);
    expect(spawnSync('bash', ['-n'], { input: s.stdout, encoding: 'utf8' }).status).toBe(0);
    const complete = (...words: string[]) => {
      const prog = `${s.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _vmrestore; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const r = spawnSync('bash', ['-c', prog], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return r.stdout.trim().split('\n').filter(Boolean).sort();
    };
    expect(complete('vmrestore', 'wa')).toEqual(['watch']);
    expect(complete('vmrestore', 'list', '--state', 'c')).toEqual(['cancelled', 'cleanup_pending']);
    expect(complete('vmrestore', 'submit', '--ki')).toEqual(['--kind']);
    expect(complete('vmrestore', 'submit', '--kind', '')).toEqual(['in_place', 'new_vm']);
    expect(complete('vmrestore', 'completion', '')).toEqual(['bash', 'fish', 'zsh']);
    expect(complete('vmrestore', 'doctor', '--')).toEqual(expect.arrayContaining(['--only', '--tenant', '--json']));
  });

  it('zsh and fish scripts are printed; an unknown shell is a usage error', () => {
    expect(script('zsh').stdout).toMatch(/^#compdef vmrestore/);
    expect(script('fish').stdout).toContain("complete -c vmrestore -n '__fish_use_subcommand' -a watch");
    expect(script('tcsh').status).toBe(2);
  });
});

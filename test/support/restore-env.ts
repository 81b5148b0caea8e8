import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, createVcenterConnection, generateFixtureChain, loadKeyring, vsphere, type Db, type FixtureChain } from '@vmrestore/core';
import { createTenantWithKey } from './auth';
import { envFor, ROOT, serviceEnv, testConfig } from './env';
import { startVcsim, type Vcsim } from './vcsim';
import type { Proc } from './processes';

// Everything a real restore needs, on this machine: the vcsim harness (a
// vCenter whose VM disks are real files), a backup repository holding a
// fixture chain made for one of its VMs, the vCenter registered with an
// encrypted password, and the environment for the API and production
// worker processes (file target: the harness's datastore directories;
// vddk target: our VDDK simulator library).

export interface RestoreEnv {
  sim: Vcsim;
  db: Db;
  tenantId: string;
  /** Authorization header of an API key of that tenant (all scopes). */
  headers: { authorization: string };
  root: string;
  expectedDir: string;
  env: NodeJS.ProcessEnv;
  vcenterName: string;
  /** Makes a fixture chain for a VM of the harness, matching its disks. */
  backupFor(vmMoref: string, vmId: string, opts?: { incrementals?: number; seed?: number }): Promise<FixtureChain>;
  client(): Promise<vsphere.VSphereClient>;
  /** Changes a VDDK simulator setting (e.g. writeDelayMs); the simulator re-reads its config on every call. */
  setVddk(settings: Record<string, string | number>): void;
  /** The VDDK simulator's call log so far. */
  vddkLog(): string;
  close(): Promise<void>;
}

/**
 * `services`: a Postgres and Redis of the test's own (test/support/private-services.ts)
 * instead of the shared pair, for tests that kill them.
 */
export async function startRestoreEnv(
  flags: string[] = [],
  extraEnv: Record<string, string> = {},
  services?: { databaseUrl: string; redisUrl: string },
): Promise<RestoreEnv> {
  const sim = await startVcsim(flags);
  const root = mkdtempSync(join(tmpdir(), 'vmrestore-repo-'));
  const expectedDir = mkdtempSync(join(tmpdir(), 'vmrestore-expected-'));
  const work = mkdtempSync(join(tmpdir(), 'vmrestore-work-'));
  const config = testConfig(services ? { DATABASE_URL: services.databaseUrl, REDIS_URL: services.redisUrl } : {});
  const db = createDb(config.databaseUrl);
  const tenant = await createTenantWithKey(db);
  const tenantId = tenant.tenantId;
  const vcenterName = `vcsim-${Math.random().toString(36).slice(2, 8)}`;
  await createVcenterConnection(db, loadKeyring(serviceEnv()), tenantId, {
    name: vcenterName,
    url: sim.url,
    username: sim.username,
    password: sim.password,
    thumbprint: sim.thumbprintSha256,
  });
  const datastorePaths = Object.entries(sim.datastores).map(([k, v]) => `${k}=${v}`).join(';');
  const vddkConfig = join(work, 'vddk.conf');
  const vddkSettings: Record<string, string | number> = { datastores: datastorePaths, log: join(work, 'vddk-sim.log') };
  const writeVddkConfig = () =>
    writeFileSync(vddkConfig, Object.entries(vddkSettings).map(([k, v]) => `sim.${k} = "${v}"`).join('\n') + '\n');
  writeVddkConfig();
  const env = envFor(config, {
    VMRESTORE_SECRET_KEYS: serviceEnv().VMRESTORE_SECRET_KEYS!,
    VMRESTORE_BACKUP_ROOTS: root,
    VMRESTORE_DATASTORE_PATHS: datastorePaths,
    VMRESTORE_VDDK_LIB_DIR: join(ROOT, 'native-vddk', 'build', 'sim'),
    VMRESTORE_VDDK_CONFIG: vddkConfig,
    VMRESTORE_WORK_DIR: work,
    VMRESTORE_VSPHERE_TASK_TIMEOUT_MS: '30000',
    VMRESTORE_VSPHERE_SCHEMA_CHECK: '1',
    ...extraEnv,
  });
  const opts = (): vsphere.VSphereClientOptions => ({ url: sim.url, username: sim.username, password: sim.password, thumbprint: sim.thumbprintSha256, keepAliveMs: 0 });
  return {
    sim,
    db,
    tenantId,
    headers: tenant.headers,
    root,
    expectedDir,
    env,
    vcenterName,
    client: () => vsphere.VSphereClient.connect(opts()),
    setVddk(settings) {
      Object.assign(vddkSettings, settings);
      writeVddkConfig();
    },
    vddkLog: () => (existsSync(String(vddkSettings.log)) ? readFileSync(String(vddkSettings.log), 'utf8') : ''),
    async backupFor(vmMoref, vmId, o = {}) {
      const c = await vsphere.VSphereClient.connect(opts());
      try {
        const info = await vsphere.getVmInfo(c, { type: 'VirtualMachine', value: vmMoref });
        const disks = info.disks.map((d) => ({ key: d.key, capacityBytes: d.capacityInBytes }));
        return await generateFixtureChain({ root, vmId, disks, incrementals: o.incrementals ?? 3, seed: o.seed ?? 11, expectedImagesDir: join(expectedDir, vmId) });
      } finally {
        await c.close();
      }
    },
    async close() {
      await db.$disconnect();
      await sim.stop();
      // The backups, expected images and scratch files of the run (hundreds of MiB each).
      for (const d of [root, expectedDir, work]) rmSync(d, { recursive: true, force: true });
    },
  };
}

/**
 * The production worker process (apps/worker/dist/main.js). `wrapper`: a
 * command line to run it under (e.g. setpriv dropping capabilities);
 * `readyTimeoutMs`: how long to wait for "worker ready" (longer while Redis is down).
 */
export async function startWorkerProcess(env: NodeJS.ProcessEnv, opts: { wrapper?: string[]; readyTimeoutMs?: number } = {}): Promise<Proc> {
  const [cmd, ...args] = [...(opts.wrapper ?? []), process.execPath, join(ROOT, 'apps/worker/dist/main.js')];
  const child = spawn(cmd!, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // not left running behind a failed start
      reject(new Error(`worker did not start:\n${out.slice(-4000)}`));
    }, opts.readyTimeoutMs ?? 20_000);
    child.stdout!.on('data', () => {
      if (out.includes('"msg":"worker ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    exited.then(() => reject(new Error(`worker exited:\n${out}`)));
  });
  return { child, output: () => out, exited };
}

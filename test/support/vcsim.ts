// The vcsim harness for integration tests (docs/vcsim-harness.md): builds it
// once if needed, spawns it with its own datastore directory, reads the JSON
// start line, and wraps the control API (faults, call log, session expiry).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './env';
import type { VSphereClientOptions } from '../../apps/core/src/vsphere/client';
import { checkRequest } from '../../apps/core/src/vsphere/schema-check';

const BIN = join(ROOT, 'test', 'vcsim', 'bin', 'vcsim-harness');
let built = false;

export interface FaultRule {
  method: string;
  moref?: string;
  count?: number;
  fault?: string;
  message?: string;
  delayMs?: number;
}

export interface CallLogEntry {
  seq: number;
  method: string;
  moref: string;
  type: string;
  time: string;
  injectedFault?: string;
  delayMs?: number;
}

export interface Vcsim {
  url: string;
  thumbprintSha1: string;
  thumbprintSha256: string;
  username: string;
  password: string;
  datastores: Record<string, string>;
  control: string;
  pid: number;
  dir: string;
  /** What the harness wrote to stderr so far (for failure messages). */
  stderr(): string;
  injectFault(rule: FaultRule): Promise<number>;
  clearFaults(): Promise<void>;
  calls(method?: string): Promise<CallLogEntry[]>;
  clearCalls(): Promise<void>;
  expireSessions(): Promise<number>;
  /** The provisioning a VM's flat disks report (vcsim's are thin; SAN restores need thick). */
  setProvisioning(vm: string, type: 'thin' | 'thick-lazy' | 'thick-eager'): Promise<void>;
  /** CBT of a live VM's disk (docs/vcsim-harness.md): declare what a guest changed. */
  cbt: {
    /** CBT on; `changeId` becomes the disk's current one (the state a backup saw). */
    baseline(vm: string, disk: number, changeId: string): Promise<string>;
    /** Areas written since; returns the disk's new changeId. */
    changed(vm: string, disk: number, areas: Array<{ start: number; length: number }>): Promise<string>;
    /** A CBT reset (storage vMotion, resize): every earlier changeId is stale. */
    reset(vm: string, disk: number): Promise<string>;
    disable(vm: string): Promise<void>;
    /** How many bytes of the disk one QueryChangedDiskAreas answer covers. */
    page(bytes: number): Promise<void>;
  };
  /**
   * The next `count` RemoveSnapshot_Task calls of this snapshot fail half-way:
   * it leaves the tree, its delta disks stay, runtime.consolidationNeeded is
   * set (docs/vcsim-harness.md "Consolidation"). -1: every call.
   */
  failRemovalLeavingDeltas(snapshot: string, count?: number): Promise<void>;
  /** Local path of a datastore path "[LocalDS_0] vm/vm.vmdk". */
  localPath(dsPath: string): string;
  /** Local path of the flat extent behind a datastore path's descriptor (the disk's bytes). */
  flatPath(dsPath: string): string;
  stop(): Promise<void>;
}

/** Builds test/vcsim/bin/vcsim-harness when a .go file is newer (quick when up to date). */
export function buildVcsim(): void {
  if (built) return;
  execFileSync('bash', [join(ROOT, 'scripts', 'build-vcsim.sh')], { stdio: 'pipe', timeout: 600_000 });
  built = true;
}

/** Starts a harness; flags as in docs/vcsim-harness.md, e.g. ['-luns', '2']. */
export async function startVcsim(flags: string[] = []): Promise<Vcsim> {
  buildVcsim();
  const dir = mkdtempSync(join(tmpdir(), 'vcsim-it-'));
  const child = spawn(BIN, ['-dir', dir, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = '';
    const onExit = (code: number | null) => reject(new Error(`vcsim harness exited early (${code}): ${err}`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        child.removeListener('exit', onExit);
        child.stdout!.removeAllListeners('data');
        child.stdout!.resume();
        resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      }
    });
  });
  const control = info.control as string;
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(new URL(path, control), {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
  const cbtCall = async (path: string, body: unknown): Promise<string> => {
    const r = await api('POST', path, body);
    if (r.status !== 200) throw new Error(`POST ${path} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.json)}`);
    return (r.json as { changeId?: string }).changeId ?? '';
  };
  const datastores = info.datastores as Record<string, string>;
  const localPath = (dsPath: string) => {
    const m = /^\[([^\]]+)\] (.*)$/.exec(dsPath);
    const root = m ? datastores[m[1]!] : undefined;
    if (!m || !root) throw new Error(`not a datastore path of this harness: ${dsPath}`);
    return join(root, m[2]!);
  };
  return {
    url: info.url as string,
    thumbprintSha1: info.thumbprintSha1 as string,
    thumbprintSha256: info.thumbprintSha256 as string,
    username: info.username as string,
    password: info.password as string,
    datastores,
    control,
    pid: info.pid as number,
    dir,
    stderr: () => err,
    async injectFault(rule) {
      const r = await api('POST', '/faults', rule);
      if (r.status !== 201) throw new Error(`POST /faults ${JSON.stringify(rule)}: ${r.status} ${JSON.stringify(r.json)}`);
      return (r.json as { id: number }).id;
    },
    async clearFaults() {
      await api('DELETE', '/faults');
    },
    async calls(method) {
      const r = await api('GET', method ? `/calls?method=${encodeURIComponent(method)}` : '/calls');
      return (r.json as CallLogEntry[] | null) ?? [];
    },
    async clearCalls() {
      await api('DELETE', '/calls');
    },
    async expireSessions() {
      return ((await api('POST', '/sessions/expire')).json as { expired: number }).expired;
    },
    async setProvisioning(vm, type) {
      const r = await api('POST', '/disks/provisioning', { vm, type });
      if (r.status !== 200) throw new Error(`POST /disks/provisioning: ${r.status} ${JSON.stringify(r.json)}`);
    },
    cbt: {
      baseline: async (vm, disk, changeId) => cbtCall('/cbt', { vm, disk, changeId }),
      changed: async (vm, disk, areas) => cbtCall('/cbt/changes', { vm, disk, areas }),
      reset: async (vm, disk) => cbtCall('/cbt/reset', { vm, disk }),
      disable: async (vm) => void (await cbtCall('/cbt/disable', { vm })),
      page: async (bytes) => void (await cbtCall('/cbt/page', { bytes })),
    },
    async failRemovalLeavingDeltas(snapshot, count = 1) {
      const r = await api('POST', '/snapshots/fail-leaving-deltas', { moref: snapshot, count });
      if (r.status !== 201) throw new Error(`POST /snapshots/fail-leaving-deltas: ${r.status} ${JSON.stringify(r.json)}`);
    },
    localPath,
    flatPath(dsPath) {
      const descriptor = localPath(dsPath);
      const m = /^RW \d+ FLAT "([^"]+)"/m.exec(readFileSync(descriptor, 'utf8'));
      if (!m) throw new Error(`no flat extent in ${descriptor}`);
      return join(descriptor, '..', m[1]!);
    },
    stop: () => stopChild(child, dir),
  };
}

function stopChild(child: ChildProcess, dir: string): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      rmSync(dir, { recursive: true, force: true });
      resolve();
    };
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const kill = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}

// ---------------------------------------------------------------- checked clients


// Every vSphere client made in a test process checks its requests against
// the shipped vim25.xsd before sending them (the client reads this flag).
process.env.VMRESTORE_VSPHERE_SCHEMA_CHECK = '1';

/** Every request body sent by clients made with clientOptions(), with its method. */
export const sentRequests: Array<{ method: string; body: string }> = [];

/** Client options for a harness: pinned SHA-256 thumbprint, schema check on, requests recorded. */
export function clientOptions(sim: Vcsim, extra: Partial<VSphereClientOptions> = {}): VSphereClientOptions {
  return {
    url: sim.url,
    username: sim.username,
    password: sim.password,
    thumbprint: sim.thumbprintSha256,
    keepAliveMs: 0,
    schemaCheck: true,
    onRequest: (method, body) => sentRequests.push({ method, body }),
    ...extra,
  };
}

/** Re-checks every recorded request (independently of the client's own check); returns the methods seen. */
export function expectAllRequestsConform(): Set<string> {
  const bad = sentRequests.map((r) => ({ method: r.method, problems: checkRequest(r.body) })).filter((r) => r.problems.length);
  if (bad.length) throw new Error(`requests out of schema: ${JSON.stringify(bad.slice(0, 5), null, 2)}`);
  return new Set(sentRequests.map((r) => r.method));
}

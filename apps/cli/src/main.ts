#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiClient, ApiError, UnreachableError } from './client';
import { jobDetail, jobTable, type JobLike } from './format';
import type { ImportArgs } from './backups';
import { completionScript, SHELLS, type Shell } from './completion';
import { doctorExitFails, renderDoctor, CHECK_GROUPS, type CheckGroup } from './doctor-fns';
import { EXIT, JOB_STATES, parseArgsOptions, usage } from './spec';
import { parseDuration, watchJob, type WatchOptions } from './watch';

// `vmrestore`: submit, watch, list and cancel restores from a terminal; import
// backups; check a host (doctor). Commands, options and exit codes are in
// spec.ts (and docs/cli.md).

export { EXIT };
const USAGE = usage();

// The commands that work on local files or the database load @vmrestore/core
// (Prisma, the vSphere client: most of the start-up time) only when run, so
// the API commands start fast. Their error classes are known once loaded.
type Local = { core: typeof import('@vmrestore/core'); backups: typeof import('./backups'); admin: typeof import('./admin') };
let local: Local | null = null;
async function loadLocal(): Promise<Local> {
  local ??= { core: await import('@vmrestore/core'), backups: await import('./backups'), admin: await import('./admin') };
  return local;
}

class UsageError extends Error {}

interface Out {
  write(s: string): void;
  isTTY?: boolean;
}

type Values = Record<string, string | boolean | string[] | undefined>;

export async function run(argv: string[], out: Out = process.stdout, err: Out = process.stderr, env: Record<string, string | undefined> = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: parseArgsOptions() });
  } catch (e) {
    err.write(`vmrestore: ${(e as Error).message}\nsee vmrestore --help\n`);
    return EXIT.USAGE;
  }
  const v = parsed.values as Values;
  const positionals = parsed.positionals;
  const [command, arg] = positionals;
  const json = Boolean(v.json);
  if (v.help || !command) {
    (v.help ? out : err).write(USAGE + '\n');
    return v.help ? EXIT.OK : EXIT.USAGE;
  }
  const str = (name: string) => (typeof v[name] === 'string' ? (v[name] as string) : undefined);
  const apiUrl = str('api') ?? env.VMRESTORE_API_URL ?? 'http://127.0.0.1:8080';
  const apiKey = str('api-key') ?? env.VMRESTORE_API_KEY;
  const api = new ApiClient(apiUrl, apiKey);
  const print = (human: string, data: unknown) => out.write((json ? JSON.stringify(data, null, 2) : human) + '\n');
  const needId = () => {
    if (!arg) throw new UsageError(`${command} needs a job id`);
    return arg;
  };
  const watchOpts = (): WatchOptions => {
    const timeout = str('reconnect-timeout');
    const reconnectTimeoutMs = timeout === undefined ? 5 * 60_000 : parseDuration(timeout);
    if (reconnectTimeoutMs === null) throw new UsageError(`--reconnect-timeout wants a duration such as 30s, 5m or 1h (got "${timeout}")`);
    const interval = Number(str('interval') ?? 1000);
    if (!Number.isInteger(interval) || interval < 50) throw new UsageError('--interval wants milliseconds, at least 50');
    return { json, reconnectTimeoutMs, pollIntervalMs: interval };
  };
  const follow = (id: string) => watchJob(api, id, out, watchOpts());

  try {
    switch (command) {
      case 'submit': {
        const opts = v.watch ? watchOpts() : null; // usage errors before anything is sent
        const body = v.file ? readRequestFile(String(v.file), v) : buildRequest(v);
        const headers: Record<string, string> = str('idempotency-key') ? { 'idempotency-key': str('idempotency-key')! } : {};
        const res = await api.request<JobLike & { dryRun?: boolean }>('POST', '/v1/restores', body, headers);
        if (res.body.dryRun) {
          print(`dry run: ok\n${JSON.stringify(res.body, null, 2)}`, res.body);
          return EXIT.OK;
        }
        const replay = res.status === 200;
        if (!opts) {
          print(`${replay ? 'already submitted' : 'submitted'}: ${res.body.id}`, res.body);
          return EXIT.OK;
        }
        out.write(json ? `${JSON.stringify({ type: 'submitted', replay, job: res.body })}\n` : `${replay ? 'already submitted' : 'submitted'}: ${res.body.id}\n`);
        return await watchJob(api, res.body.id, out, opts);
      }
      case 'get': {
        const res = await api.request<JobLike>('GET', `/v1/restores/${encodeURIComponent(needId())}`);
        print(jobDetail(res.body), res.body);
        return EXIT.OK;
      }
      case 'list': {
        const state = str('state');
        if (state && !(JOB_STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${JOB_STATES.join(', ')}`);
        const q = new URLSearchParams();
        if (state) q.set('state', state);
        if (str('vm')) q.set('vm', str('vm')!);
        if (str('limit')) q.set('limit', str('limit')!);
        let cursor = str('cursor') ?? null;
        const items: JobLike[] = [];
        let nextCursor: string | null = null;
        do {
          if (cursor) q.set('cursor', cursor);
          const res = await api.request<{ items: JobLike[]; nextCursor: string | null }>('GET', `/v1/restores?${q}`);
          items.push(...res.body.items);
          nextCursor = res.body.nextCursor;
          cursor = nextCursor;
        } while (v.all && cursor);
        print(items.length ? jobTable(items) + (nextCursor ? `\n(more: --cursor ${nextCursor})` : '') : 'no restores', { items, nextCursor });
        return EXIT.OK;
      }
      case 'watch':
        return await follow(needId());
      case 'cancel': {
        const opts = v.watch ? watchOpts() : null;
        const res = await api.request<JobLike>('POST', `/v1/restores/${encodeURIComponent(needId())}/cancel`);
        if (!opts) {
          print(`cancel requested: ${res.body.id} (${res.body.state})`, res.body);
          return EXIT.OK;
        }
        if (!json) out.write(`cancel requested: ${res.body.id}\n`);
        return await watchJob(api, res.body.id, out, opts);
      }
      case 'backups': {
        const res = await api.request<{ items: Array<{ vm: string }> }>('GET', '/v1/backups');
        print(res.body.items.length ? res.body.items.map((i) => i.vm).join('\n') : 'no backups', res.body);
        return EXIT.OK;
      }
      case 'points': {
        const res = await api.request<{ items: Array<{ point: string; kind: string | null; parent: string | null; createdAt: string | null; problem?: { code: string } }> }>(
          'GET',
          `/v1/backups/${encodeURIComponent(needId())}/points`,
        );
        const rows = res.body.items.map((p) => `${p.point.padEnd(24)} ${(p.kind ?? '?').padEnd(12)} ${(p.parent ?? '-').padEnd(24)} ${p.createdAt ?? ''}${p.problem ? `  ${p.problem.code}` : ''}`);
        print(rows.length ? rows.join('\n') : 'no restore points', res.body);
        return EXIT.OK;
      }
      case 'point': {
        const point = positionals[2];
        if (!point) throw new UsageError('point needs VM and POINT');
        const res = await api.request<Record<string, any>>('GET', `/v1/backups/${encodeURIComponent(needId())}/points/${encodeURIComponent(point)}`);
        const b = res.body;
        const disks = (b.disks as Array<Record<string, any>>).map((d) => `  disk ${d.key}: ${d.capacityBytes} bytes, ${d.blocks} blocks, ${d.dataBytes} bytes stored`);
        print([`${b.vm} @ ${b.point} (${b.kind}), chain: ${(b.chain as string[]).join(' → ')}`, `config: ${JSON.stringify(b.config)}`, ...disks].join('\n'), b);
        return EXIT.OK;
      }
      case 'verify': {
        const point = positionals[2];
        if (!point) throw new UsageError('verify needs VM and POINT');
        const opts = v.watch ? watchOpts() : null;
        const res = await api.request<JobLike>('POST', `/v1/backups/${encodeURIComponent(needId())}/points/${encodeURIComponent(point)}/verify`, { checksums: !v['no-checksums'] });
        if (!opts) {
          print(`verification queued: ${res.body.id}`, res.body);
          return EXIT.OK;
        }
        return await watchJob(api, res.body.id, out, opts);
      }
      case 'import': {
        const r = await (await loadLocal()).backups.runImport({ ...v, mode: arg } as ImportArgs);
        print(`imported ${r.kind} ${r.vmId}@${r.pointId}: ${r.disks.map((d) => `disk ${d.key} ${d.blocks} blocks ${d.dataBytes} bytes`).join(', ')}`, r);
        return EXIT.OK;
      }
      case 'admin': {
        const r = await (await loadLocal()).admin.runAdmin(positionals, v);
        print(r.human, r.data);
        return EXIT.OK;
      }
      case 'fixtures': {
        const r = await (await loadLocal()).backups.runFixtures(v);
        print(`generated ${r.vmId}: ${r.points.join(', ')}`, r);
        return EXIT.OK;
      }
      case 'orphans': {
        if (arg && arg !== 'sweep') throw new UsageError(`orphans takes no argument but "sweep" (got "${arg}")`);
        if (arg === 'sweep') {
          const timeout = str('timeout');
          const waitMs = timeout === undefined ? 5 * 60_000 : parseDuration(timeout);
          if (!waitMs) throw new UsageError(`--timeout wants a duration such as 5m (got "${timeout}")`);
          const interval = Number(str('interval') ?? 1000);
          if (!Number.isInteger(interval) || interval < 50) throw new UsageError('--interval wants milliseconds, at least 50');
          const req = await api.request<{ id: string; status: string }>('POST', '/v1/orphans/sweep');
          if (!v.watch) {
            print(`orphan sweep requested: ${req.body.id} (${req.body.status}); see vmrestore orphans`, req.body);
            return EXIT.OK;
          }
          // Until no request of this tenant is pending: the sweep ran.
          const end = Date.now() + waitMs;
          for (;;) {
            const r = await api.request<OrphanReport>('GET', '/v1/orphans');
            if (!r.body.pending) {
              print(orphanText(r.body), r.body);
              return EXIT.OK;
            }
            if (Date.now() >= end) {
              err.write(`vmrestore: the sweep ${req.body.id} is still ${r.body.pending.status} after ${timeout ?? '5m'} (is a worker sweeping? VMRESTORE_ORPHAN_SWEEP_INTERVAL_MS=0 turns sweeps off)\n`);
              return EXIT.API_ERROR;
            }
            await new Promise((res) => setTimeout(res, interval));
          }
        }
        const r = await api.request<OrphanReport>('GET', '/v1/orphans');
        print(orphanText(r.body), r.body);
        return EXIT.OK;
      }
      case 'doctor': {
        const only = str('only')
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const bad = only?.filter((g) => !(CHECK_GROUPS as readonly string[]).includes(g));
        if (bad?.length) throw new UsageError(`--only: unknown check ${bad.join(', ')} (checks: ${CHECK_GROUPS.join(', ')})`);
        const timeout = str('timeout');
        const timeoutMs = timeout === undefined ? 10_000 : parseDuration(timeout);
        if (!timeoutMs) throw new UsageError(`--timeout wants a duration such as 5s (got "${timeout}")`);
        // Loaded here: doctor pulls in Redis, BullMQ and the vSphere client.
        const { runDoctor } = await import('./doctor');
        const results = await runDoctor({ env, apiUrl, apiKey, timeoutMs, ...(str('tenant') ? { tenant: str('tenant') } : {}), ...(only ? { only: only as CheckGroup[] } : {}) });
        const failed = doctorExitFails(results) || (Boolean(v.strict) && results.some((r) => r.status === 'warn'));
        print(renderDoctor(results), { ok: !failed, checks: results });
        return failed ? EXIT.CHECKS_FAILED : EXIT.OK;
      }
      case 'completion': {
        if (!arg || !(SHELLS as readonly string[]).includes(arg)) throw new UsageError(`completion needs a shell: ${SHELLS.join(', ')}`);
        out.write(completionScript(arg as Shell));
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (local && e instanceof local.core.AuthError) {
      err.write(`vmrestore: ${e.code}: ${e.message}\n`);
      return EXIT.API_ERROR;
    }
    if (e instanceof UsageError || (local && (e instanceof local.backups.CliUsageError || e instanceof local.admin.AdminUsageError))) {
      err.write(`vmrestore: ${e.message}\nsee vmrestore --help\n`);
      return EXIT.USAGE;
    }
    if (e instanceof ApiError) {
      err.write(`vmrestore: ${e.message}\n`);
      return EXIT.API_ERROR;
    }
    if (e instanceof UnreachableError) {
      err.write(`vmrestore: ${e.message}\n`);
      return EXIT.UNREACHABLE;
    }
    if (local?.core.isBackupError(e)) {
      err.write(`vmrestore: ${e.code}: ${e.message}\n`);
      return EXIT.API_ERROR;
    }
    throw e;
  }
}

interface OrphanReport {
  sweep: { id: string; trigger: string; status: string; finishedAt: string; found: number; cleaned: number; left: number; kept: number; error: { code: string; message: string } | null } | null;
  pending: { id: string; status: string } | null;
  items: Array<{ kind: string; vcenter: string | null; vm: string | null; vmName: string | null; snapshotName: string | null; jobId: string | null; jobState: string | null; action: string; outcome: string; error: { code: string; message: string } | null }>;
}

/** The orphan report for a terminal: a summary line, then one line per item. */
function orphanText(r: OrphanReport): string {
  const lines: string[] = [];
  if (!r.sweep) lines.push('no orphan sweep has run yet');
  else {
    const s = r.sweep;
    lines.push(`sweep ${s.id} (${s.trigger}, ${s.status}) finished ${s.finishedAt}: found ${s.found}, cleaned ${s.cleaned}, left ${s.left}, kept ${s.kept}`);
    if (s.error) lines.push(`error: ${s.error.code}: ${s.error.message}`);
  }
  if (r.pending) lines.push(`pending: ${r.pending.id} (${r.pending.status})`);
  for (const i of r.items) {
    const what = [i.vcenter, i.vmName ?? i.vm, i.snapshotName].filter(Boolean).join(' / ');
    const job = i.jobId ? ` job ${i.jobId} (${i.jobState ?? 'gone'})` : '';
    lines.push(`  ${i.outcome.padEnd(7)} ${i.kind.padEnd(8)} ${i.action.padEnd(16)} ${what}${job}${i.error ? `  ${i.error.code}: ${i.error.message}` : ''}`);
  }
  return lines.join('\n');
}

const BODY_FLAGS = ['kind', 'vcenter', 'source-vm', 'point', 'target-vm', 'target-name', 'folder', 'resource-pool', 'host', 'datastore', 'transports', 'power-on', 'no-power-on', 'label', 'dry-run'];

/** The request body from --file (a path, or - for stdin); body flags are refused beside it. */
function readRequestFile(file: string, v: Values): unknown {
  const clash = BODY_FLAGS.filter((f) => v[f] !== undefined && v[f] !== false);
  if (clash.length) throw new UsageError(`--file holds the whole request: do not combine it with ${clash.map((f) => `--${f}`).join(', ')}`);
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read --file ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--file ${file}: not valid JSON: ${(e as Error).message}`);
  }
}

export function buildRequest(v: Values) {
  for (const name of ['kind', 'vcenter', 'source-vm', 'point']) if (!v[name]) throw new UsageError(`submit needs --${name} (or --file)`);
  if (v.kind !== 'in_place' && v.kind !== 'new_vm') throw new UsageError('--kind must be in_place or new_vm');
  if (v['power-on'] && v['no-power-on']) throw new UsageError('--power-on and --no-power-on contradict each other');
  const target: Record<string, string> = {};
  const map: Array<[string, string]> = [['target-vm', 'vm'], ['target-name', 'name'], ['folder', 'folder'], ['resource-pool', 'resourcePool'], ['host', 'host'], ['datastore', 'datastore']];
  for (const [flag, field] of map) if (typeof v[flag] === 'string') target[field] = v[flag] as string;
  const options: Record<string, unknown> = {};
  if (v.transports) options.transports = String(v.transports).split(',').map((s) => s.trim()).filter(Boolean);
  if (v['no-power-on']) options.powerOn = false;
  if (v['power-on']) options.powerOn = true;
  return {
    kind: v.kind,
    vcenter: v.vcenter,
    source: { vm: v['source-vm'], point: v.point },
    ...(Object.keys(target).length ? { target } : {}),
    ...(Object.keys(options).length ? { options } : {}),
    ...(v.label ? { label: v.label } : {}),
    ...(v['dry-run'] ? { dryRun: true } : {}),
  };
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Open sockets (a pool, a stream) must not keep a finished command alive.
      setImmediate(() => process.exit(code));
    },
    (e) => {
      process.stderr.write(`vmrestore: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}

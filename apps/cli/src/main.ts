#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiClient, ApiError, UnreachableError } from './client';
import { jobDetail, jobTable, rateAndEta, statusLine, type JobLike } from './format';
import { CliUsageError, runFixtures, runImport, type ImportArgs } from './backups';
import { AuthError, isBackupError } from '@vmrestore/core';
import { AdminUsageError, runAdmin } from './admin';

// `vmrestore`: submit, watch, list and cancel restores from a terminal.
// Exit codes: 0 ok (a watched job succeeded), 1 the watched job failed or
// was cancelled, 2 usage error, 3 the API refused the request, 4 the API is
// unreachable.

export const EXIT = { OK: 0, JOB_FAILED: 1, USAGE: 2, API_ERROR: 3, UNREACHABLE: 4 } as const;

const USAGE = `usage: vmrestore <command> [options]

commands:
  submit   start a restore   --kind in_place|new_vm --vcenter NAME --source-vm VM --point POINT
                             [--target-vm vm-N] [--target-name NAME] [--transports nbdssl,nbd]
                             [--no-power-on] [--label TEXT] [--idempotency-key KEY]
                             [--file request.json] [--watch]
  get ID   show a job with its steps
  list     list jobs          [--state STATE] [--vm VM] [--limit N]
  watch ID follow a job with a progress bar until it ends
  cancel ID
  backups              VMs in the backup repository
  points VM            a VM's restore points
  point VM POINT       a restore point: disks, chain, saved config
  verify VM POINT      verify the point's whole chain (a job)  [--no-checksums] [--watch]
  import full          make a full restore point from disk images (local files, no API):
                       --root DIR --vm ID --point ID --config vm-config.json
                       --disk KEY=image.raw|.vmdk|.qcow2 ... [--metadata KEY=metadata.json] [--change-id KEY=ID]
  import incremental   the same plus --parent POINT and --areas KEY=changed-areas.json per disk
  fixtures             generate a realistic test chain: --root DIR [--vm ID] [--incrementals N] [--seed N] [--expected DIR]
  admin tenant create NAME | admin tenant list           (server host, DATABASE_URL; no API)
  admin key create --tenant NAME --name KEYNAME --scopes restores:read,restores:write,backups:read,admin
                       prints the new key once
  admin key list --tenant NAME | admin key revoke KEY_ID

options: --api URL (default $VMRESTORE_API_URL or http://127.0.0.1:8080),
         --api-key KEY (default $VMRESTORE_API_KEY), --json, --help
exit codes: 0 ok, 1 watched job failed or was cancelled, 2 usage, 3 refused by the API (or the backup is invalid), 4 API unreachable`;

class UsageError extends Error {}

interface Out {
  write(s: string): void;
  isTTY?: boolean;
}

export async function run(argv: string[], out: Out = process.stdout, err: Out = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        api: { type: 'string' },
        'api-key': { type: 'string' },
        tenant: { type: 'string' },
        name: { type: 'string' },
        scopes: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
        kind: { type: 'string' },
        vcenter: { type: 'string' },
        'source-vm': { type: 'string' },
        point: { type: 'string' },
        'target-vm': { type: 'string' },
        'target-name': { type: 'string' },
        transports: { type: 'string' },
        'no-power-on': { type: 'boolean', default: false },
        label: { type: 'string' },
        'idempotency-key': { type: 'string' },
        file: { type: 'string' },
        watch: { type: 'boolean', default: false },
        state: { type: 'string' },
        vm: { type: 'string' },
        limit: { type: 'string' },
        interval: { type: 'string' },
        root: { type: 'string' },
        parent: { type: 'string' },
        config: { type: 'string' },
        disk: { type: 'string', multiple: true },
        metadata: { type: 'string', multiple: true },
        areas: { type: 'string', multiple: true },
        'change-id': { type: 'string', multiple: true },
        'created-at': { type: 'string' },
        seed: { type: 'string' },
        incrementals: { type: 'string' },
        expected: { type: 'string' },
        'no-checksums': { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    err.write(`vmrestore: ${(e as Error).message}\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  const { values: v, positionals } = parsed;
  const [command, arg] = positionals;
  if (v.help || !command) {
    (v.help ? out : err).write(USAGE + '\n');
    return v.help ? EXIT.OK : EXIT.USAGE;
  }
  const api = new ApiClient(v.api ?? process.env.VMRESTORE_API_URL ?? 'http://127.0.0.1:8080', v['api-key'] ?? process.env.VMRESTORE_API_KEY);
  const print = (human: string, data: unknown) => out.write((v.json ? JSON.stringify(data, null, 2) : human) + '\n');
  const needId = () => {
    if (!arg) throw new UsageError(`${command} needs a job id`);
    return arg;
  };

  try {
    switch (command) {
      case 'submit': {
        const body = v.file ? JSON.parse(readFileSync(v.file, 'utf8')) : buildRequest(v);
        const headers: Record<string, string> = v['idempotency-key'] ? { 'idempotency-key': v['idempotency-key'] } : {};
        const res = await api.request<JobLike>('POST', '/v1/restores', body, headers);
        if (!v.watch) {
          print(`${res.status === 200 ? 'already submitted' : 'submitted'}: ${res.body.id}`, res.body);
          return EXIT.OK;
        }
        if (!v.json) out.write(`submitted: ${res.body.id}\n`);
        return await watch(api, res.body.id, out, v.json, Number(v.interval ?? 500));
      }
      case 'get': {
        const res = await api.request<JobLike>('GET', `/v1/restores/${encodeURIComponent(needId())}`);
        print(jobDetail(res.body), res.body);
        return EXIT.OK;
      }
      case 'list': {
        const q = new URLSearchParams();
        if (v.state) q.set('state', v.state);
        if (v.vm) q.set('vm', v.vm);
        if (v.limit) q.set('limit', v.limit);
        const res = await api.request<{ items: JobLike[]; nextCursor: string | null }>('GET', `/v1/restores?${q}`);
        print(res.body.items.length ? jobTable(res.body.items) : 'no restores', res.body);
        return EXIT.OK;
      }
      case 'watch':
        return await watch(api, needId(), out, v.json, Number(v.interval ?? 500));
      case 'cancel': {
        const res = await api.request<JobLike>('POST', `/v1/restores/${encodeURIComponent(needId())}/cancel`);
        print(`cancel requested: ${res.body.id} (${res.body.state})`, res.body);
        return EXIT.OK;
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
        const res = await api.request<JobLike>('POST', `/v1/backups/${encodeURIComponent(needId())}/points/${encodeURIComponent(point)}/verify`, { checksums: !v['no-checksums'] });
        if (!v.watch) {
          print(`verification queued: ${res.body.id}`, res.body);
          return EXIT.OK;
        }
        return await watch(api, res.body.id, out, v.json, Number(v.interval ?? 500));
      }
      case 'import': {
        const r = await runImport({ ...v, mode: arg } as ImportArgs);
        print(`imported ${r.kind} ${r.vmId}@${r.pointId}: ${r.disks.map((d) => `disk ${d.key} ${d.blocks} blocks ${d.dataBytes} bytes`).join(', ')}`, r);
        return EXIT.OK;
      }
      case 'admin': {
        const r = await runAdmin(positionals, v);
        print(r.human, r.data);
        return EXIT.OK;
      }
      case 'fixtures': {
        const r = await runFixtures(v);
        print(`generated ${r.vmId}: ${r.points.join(', ')}`, r);
        return EXIT.OK;
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof AuthError) {
      err.write(`vmrestore: ${e.code}: ${e.message}\n`);
      return EXIT.API_ERROR;
    }
    if (e instanceof UsageError || e instanceof CliUsageError || e instanceof AdminUsageError) {
      err.write(`vmrestore: ${e.message}\n${USAGE}\n`);
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
    if (isBackupError(e)) {
      err.write(`vmrestore: ${e.code}: ${e.message}\n`);
      return EXIT.API_ERROR;
    }
    if (e instanceof SyntaxError) {
      err.write(`vmrestore: ${v.file}: not valid JSON: ${e.message}\n`);
      return EXIT.USAGE;
    }
    throw e;
  }
}

function buildRequest(v: Record<string, string | boolean | string[] | undefined>) {
  for (const name of ['kind', 'vcenter', 'source-vm', 'point']) if (!v[name]) throw new UsageError(`submit needs --${name} (or --file)`);
  const target: Record<string, string> = {};
  if (v['target-vm']) target.vm = String(v['target-vm']);
  if (v['target-name']) target.name = String(v['target-name']);
  const options: Record<string, unknown> = {};
  if (v.transports) options.transports = String(v.transports).split(',').map((s) => s.trim()).filter(Boolean);
  if (v['no-power-on']) options.powerOn = false;
  return {
    kind: v.kind,
    vcenter: v.vcenter,
    source: { vm: v['source-vm'], point: v.point },
    ...(Object.keys(target).length ? { target } : {}),
    ...(Object.keys(options).length ? { options } : {}),
    ...(v.label ? { label: v.label } : {}),
  };
}

const TERMINAL = ['succeeded', 'failed', 'cancelled'];

/** Polls the job until it ends; rides out API restarts and network blips. */
async function watch(api: ApiClient, id: string, out: Out, json: boolean | undefined, intervalMs: number): Promise<number> {
  let prev: { at: number; bytes: number } | null = null;
  let lastStep: string | null = null;
  let unreachableSince: number | null = null;
  const tty = Boolean(out.isTTY) && !json;
  for (;;) {
    let job: JobLike;
    try {
      job = (await api.request<JobLike>('GET', `/v1/restores/${encodeURIComponent(id)}`)).body;
      unreachableSince = null;
    } catch (e) {
      if (!(e instanceof UnreachableError)) throw e;
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > 5 * 60_000) throw e;
      if (!json) out.write(`${tty ? '\r' : ''}(api unreachable, retrying)${tty ? '' : '\n'}`);
      await new Promise((r) => setTimeout(r, 2_000));
      continue;
    }
    const now = { at: Date.now(), bytes: job.progress.bytesDone };
    const { rate, etaMs } = rateAndEta(prev, now, job.progress.bytesTotal);
    prev = now;
    if (json) {
      if (TERMINAL.includes(job.state)) out.write(JSON.stringify(job, null, 2) + '\n');
    } else if (tty) {
      out.write(`\r\x1b[2K${statusLine(job, rate, etaMs)}`);
    } else if (job.currentStep !== lastStep || TERMINAL.includes(job.state)) {
      out.write(statusLine(job, rate, etaMs) + '\n');
    }
    lastStep = job.currentStep;
    if (TERMINAL.includes(job.state)) {
      if (!json) out.write(`${tty ? '\n' : ''}${jobDetail(job)}\n`);
      return job.state === 'succeeded' ? EXIT.OK : EXIT.JOB_FAILED;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`vmrestore: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { permanent, verifyChain, type PointManifest, type RestoreJob } from '@vmrestore/core';
import type { PlanFactory, StepContext, StepDef } from '../plan';
import { fromBackup, writeAllDisks, type RestoreDeps } from './in-place';

// Export (restore outside vSphere): every disk of a restore point becomes a
// standalone VMDK, a text descriptor and a flat extent (docs/disk-model.md),
// in a new directory under VMRESTORE_EXPORT_ROOT. qemu-img and VMware's
// tools read them. The directory is built under a temporary name and renamed
// when complete, so a half-written export is never mistaken for a whole one;
// a failed or cancelled export removes it.

interface ExportRequest {
  source: { vm: string; point: string };
  target: { directory: string };
  options: { incrementalOrder: 'backward' | 'forward' };
}

function exportRequest(job: RestoreJob): ExportRequest {
  const r = job.request as Record<string, any>;
  return { source: r.source, target: r.target, options: { incrementalOrder: r.options?.incrementalOrder ?? 'backward' } };
}

const SAFE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** VMware disks are whole KiB; a backup of an odd size is padded with zeros to the next KiB. */
const diskBytes = (capacity: number) => Math.ceil(capacity / 1024) * 1024;

export function descriptorText(name: string, capacityBytes: number, metadata: Record<string, string>): string {
  const cid = randomBytes(4).toString('hex');
  const ddb = Object.entries(metadata)
    .filter(([k]) => k.startsWith('ddb.'))
    .map(([k, v]) => `${k} = "${String(v).replace(/["\r\n]/g, '')}"`);
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${cid}`,
    'parentCID=ffffffff',
    'createType="monolithicFlat"',
    '',
    '# Extent description',
    `RW ${diskBytes(capacityBytes) / 512} FLAT "${name}-flat.vmdk" 0`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    ...ddb,
    '',
  ].join('\n');
}

export function exportPlan(deps: RestoreDeps): PlanFactory {
  return (job) => {
    const req = exportRequest(job);
    const root = () => {
      const r = deps.config.restore.exportRoot;
      if (!r) throw permanent('EXPORT_NOT_CONFIGURED', 'this worker has no VMRESTORE_EXPORT_ROOT');
      return r;
    };
    const partial = () => join(root(), `.partial-${job.id}`);
    const final = () => join(root(), req.target.directory);
    const diskName = (key: number) => `${req.source.vm}-disk${key}`;

    const preflight: StepDef = {
      name: 'preflight',
      async run() {
        if (!deps.repo) throw permanent('BACKUP_REPOSITORY_NOT_CONFIGURED', 'this worker has no backup repository (VMRESTORE_BACKUP_ROOTS)');
        if (!SAFE.test(req.target.directory)) throw permanent('EXPORT_DIRECTORY_INVALID', `"${req.target.directory}" is not a plain directory name`);
        const point = await deps.repo.getPoint(req.source.vm, req.source.point).catch((e) => Promise.reject(fromBackup(e)));
        const report = await verifyChain(deps.repo, req.source.vm, req.source.point, { skipChecksums: true });
        if (!report.ok) throw fromBackup(report.errors[0]);
        if (await stat(final()).then(() => true, () => false)) throw permanent('EXPORT_DIRECTORY_EXISTS', `${req.target.directory} already exists under the export root`);
        return { chain: report.chain, disks: point.disks.map((d) => ({ key: d.key, capacityBytes: d.capacityBytes })) };
      },
    };

    const createFiles: StepDef = {
      name: 'create_disk_files',
      async run() {
        const point = await deps.repo!.getPoint(req.source.vm, req.source.point);
        await mkdir(partial(), { recursive: true });
        const files = [];
        for (const d of point.disks) {
          const descriptor = join(partial(), `${diskName(d.key)}.vmdk`);
          await writeFile(descriptor, descriptorText(diskName(d.key), d.capacityBytes, d.metadata));
          // Sparse: costs nothing until written; the write skips zeros (the file is known fresh).
          const h = await open(join(partial(), `${diskName(d.key)}-flat.vmdk`), 'w');
          await h.truncate(diskBytes(d.capacityBytes));
          await h.close();
          files.push({ key: d.key, descriptor: `${diskName(d.key)}.vmdk` });
        }
        await writeFile(join(partial(), 'point.json'), JSON.stringify(summary(point), null, 2));
        return { files };
      },
    };

    const writeDisks: StepDef = {
      name: 'write_disks',
      run: (ctx: StepContext) => {
        const point = ctx.results.preflight as { disks: Array<{ key: number }> };
        return writeAllDisks(deps, ctx, {
          pre: { target: 'file', vddkTransports: [] },
          vm: '',
          source: req.source,
          order: req.options.incrementalOrder,
          zeroFill: false,
          fresh: true,
          disks: point.disks.map((d) => ({ savedKey: d.key, fileName: join(partial(), `${diskName(d.key)}.vmdk`) })),
        });
      },
    };

    const publish: StepDef = {
      name: 'publish',
      async run() {
        if (await stat(final()).then(() => true, () => false)) {
          if (await stat(partial()).then(() => false, () => true)) return { directory: req.target.directory, already: true };
          throw permanent('EXPORT_DIRECTORY_EXISTS', `${req.target.directory} appeared under the export root meanwhile`);
        }
        await rename(partial(), final());
        return { directory: req.target.directory };
      },
    };

    const cleanup: StepDef = {
      name: 'remove_partial_export',
      async run(ctx) {
        await rm(partial(), { recursive: true, force: true });
        return { removed: ctx.outcome !== 'succeeded' };
      },
    };

    return { steps: [preflight, createFiles, writeDisks, publish], cleanup: [cleanup] };
  };
}

function summary(point: PointManifest) {
  return {
    vm: point.vmId,
    point: point.pointId,
    createdAt: point.createdAt,
    config: point.config,
    disks: point.disks.map((d) => ({ key: d.key, capacityBytes: d.capacityBytes, changeId: d.changeId, metadata: d.metadata })),
  };
}

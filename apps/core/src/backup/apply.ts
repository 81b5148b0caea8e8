/**
 * A plain-JS copier for a DiskPlan: the reference the C++ addon is tested
 * against, and the `file`-target restore used by tests, fixtures and demos.
 * Verifies each stored block (extent.check) before writing any part of it.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { BackupError, BackupErrorCode } from './errors';
import { planZeroExtents, type DiskPlan } from './planner';

export interface ApplyTarget {
  write(data: Buffer, targetOffset: number): Promise<void> | void;
}

/** A target writing into an in-memory image (tests). */
export function bufferTarget(image: Buffer): ApplyTarget {
  return {
    write(data, targetOffset) {
      data.copy(image, targetOffset, 0, Math.min(data.length, image.length - targetOffset));
    },
  };
}

export async function applyDiskPlan(plan: DiskPlan, target: ApplyTarget, options: { zeroFill?: boolean } = {}): Promise<void> {
  const handles = new Map<number, fsp.FileHandle>();
  const verified = new Map<number, { offset: number; block: Buffer }>();
  try {
    for (const [n, e] of plan.extents.entries()) {
      let fh = handles.get(e.source);
      if (!fh) {
        const file = plan.sources[e.source];
        if (file === undefined) throw new RangeError(`extent ${n}: source ${e.source} out of range`);
        fh = await fsp.open(file, 'r');
        handles.set(e.source, fh);
      }
      let data: Buffer;
      if (e.check) {
        const c = e.check;
        let v = verified.get(e.source);
        if (!v || v.offset !== c.offset || v.block.length !== c.length) {
          const block = Buffer.alloc(c.length);
          const { bytesRead } = await fh.read(block, 0, c.length, c.offset);
          const got = createHash('sha256').update(block.subarray(0, bytesRead)).digest('hex');
          if (bytesRead !== c.length || got !== c.sha256) {
            throw new BackupError(
              bytesRead !== c.length ? BackupErrorCode.DATA_TRUNCATED : BackupErrorCode.CHECKSUM_MISMATCH,
              `disk ${plan.diskKey} source ${plan.sources[e.source]} block at data offset ${c.offset}: ${bytesRead !== c.length ? `read ${bytesRead} of ${c.length} bytes` : `SHA-256 ${got} != stored ${c.sha256}`}`,
              { diskKey: plan.diskKey, path: plan.sources[e.source], diskOffset: e.targetOffset, extent: n },
            );
          }
          v = { offset: c.offset, block };
          verified.set(e.source, v);
        }
        data = v.block.subarray(e.sourceOffset - c.offset, e.sourceOffset - c.offset + e.length);
      } else {
        data = Buffer.alloc(e.length);
        await fh.read(data, 0, e.length, e.sourceOffset);
      }
      await target.write(data, e.targetOffset);
    }
    if (options.zeroFill) {
      for (const z of planZeroExtents(plan)) await target.write(Buffer.alloc(z.length), z.targetOffset);
    }
  } finally {
    await Promise.all([...handles.values()].map((h) => h.close()));
  }
}

/** Restores a plan into an image file of the disk's capacity (created or overwritten). */
export async function applyDiskPlanToFile(plan: DiskPlan, file: string): Promise<void> {
  const fh = await fsp.open(file, 'w');
  try {
    await fh.truncate(plan.capacityBytes);
    await applyDiskPlan(plan, {
      async write(data, off) {
        const n = Math.max(0, Math.min(data.length, plan.capacityBytes - off));
        await fh.write(data, 0, n, off);
      },
    });
  } finally {
    await fh.close();
  }
}

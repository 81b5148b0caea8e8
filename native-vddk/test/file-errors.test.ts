// Failures of a copy to a file target: checksum, capacity, cancel, missing files.
import fs from 'node:fs';
import path from 'node:path';

import { copy, VddkError } from '../src';
import { flatOf, makeDisk, sha256, tmpDir, writeSource } from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;

async function failure(p: Promise<unknown>): Promise<VddkError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VddkError);
  return err as VddkError;
}

describe('copy failures', () => {
  let dir: string;
  let srcPath: string;
  let src: Buffer;
  let desc: string;
  beforeEach(() => {
    dir = tmpDir();
    srcPath = path.join(dir, 'src.bin');
    src = writeSource(srcPath, 4 * MiB);
    desc = makeDisk(dir, 'vm', 4 * MiB);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('stops at a checksum mismatch before writing that extent, after writing the earlier ones', async () => {
    const good = { offset: 0, length: 64 * KiB, sha256: sha256(src.subarray(0, 64 * KiB)) };
    const err = await failure(
      copy({
        sources: [srcPath],
        extents: [
          { source: 0, sourceOffset: 0, targetOffset: 0, length: 64 * KiB, check: good },
          { source: 0, sourceOffset: 64 * KiB, targetOffset: 64 * KiB, length: 4 * KiB },
          // the check range covers more than the extent; its hash is wrong
          { source: 0, sourceOffset: 128 * KiB, targetOffset: 1 * MiB, length: 4 * KiB, check: { offset: 124 * KiB, length: 12 * KiB, sha256: 'ab'.repeat(32) } },
          { source: 0, sourceOffset: 256 * KiB, targetOffset: 2 * MiB, length: 4 * KiB },
        ],
        target: { kind: 'file', path: desc },
      }),
    );
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(err.message).toMatch(/^extent 2 \(source 0 bytes 126976\.\.139264, target offset 1048576\): sha256 [0-9a-f]{64} expected (ab){32}; the extent was not written$/);
    const flat = fs.readFileSync(flatOf(desc));
    expect(flat.subarray(0, 68 * KiB).equals(src.subarray(0, 68 * KiB))).toBe(true);
    expect(flat.subarray(1 * MiB, 1 * MiB + 4 * KiB).equals(Buffer.alloc(4 * KiB))).toBe(true);
    expect(flat.subarray(2 * MiB, 2 * MiB + 4 * KiB).equals(Buffer.alloc(4 * KiB))).toBe(true);
  });

  it('refuses an extent past the capacity before writing anything', async () => {
    const before = fs.readFileSync(desc, 'utf8');
    const err = await failure(
      copy({
        sources: [srcPath],
        extents: [
          { source: 0, sourceOffset: 0, targetOffset: 0, length: 64 * KiB },
          { source: 0, sourceOffset: 0, targetOffset: 4 * MiB - 1 * KiB, length: 2 * KiB },
        ],
        target: { kind: 'file', path: desc },
      }),
    );
    expect(err.code).toBe('CAPACITY_MISMATCH');
    expect(err.message).toBe('extent 1 ends at byte 4195328 but the target holds 4194304 bytes; nothing was written');
    expect(fs.readFileSync(flatOf(desc)).equals(Buffer.alloc(4 * MiB))).toBe(true);
    expect(fs.readFileSync(desc, 'utf8')).toBe(before); // CID untouched
  });

  it('cancels through an AbortSignal with CANCELLED, leaving the rest unwritten', async () => {
    // Aborting right after the start is deterministic: the job cannot have
    // written 64 MiB in 64 KiB buffers before the flag is seen. (Mid-copy
    // cancellation with some data written is in vddk-faults.test.ts, where
    // the simulator slows writes down.)
    const big = path.join(dir, 'big.bin');
    writeSource(big, 64 * MiB);
    const target = makeDisk(dir, 'big', 64 * MiB);
    const ac = new AbortController();
    const running = copy({
      sources: [big],
      extents: Array.from({ length: 64 }, (_, i) => ({ source: 0, sourceOffset: i * MiB, targetOffset: i * MiB, length: MiB })),
      target: { kind: 'file', path: target },
      bufferBytes: 64 * KiB,
      signal: ac.signal,
    });
    ac.abort();
    const err = await failure(running);
    expect(err.code).toBe('CANCELLED');
    expect(err.message).toBe('copy cancelled');
    const flat = fs.readFileSync(flatOf(target));
    expect(flat.subarray(63 * MiB).equals(Buffer.alloc(MiB))).toBe(true);
  });

  it('reports a missing target and a short source as typed errors', async () => {
    const missing = await failure(
      copy({ sources: [srcPath], extents: [], target: { kind: 'file', path: path.join(dir, 'nope.vmdk') } }),
    );
    expect(missing.code).toBe('FILE_NOT_FOUND');
    const short = await failure(
      copy({
        sources: [srcPath],
        extents: [{ source: 0, sourceOffset: 4 * MiB - 1 * KiB, targetOffset: 0, length: 2 * KiB }],
        target: { kind: 'file', path: desc },
      }),
    );
    expect(short.code).toBe('IO_ERROR');
    expect(short.message).toContain('extent 0: cannot read source');
  });

  it('turns a throwing onProgress into the job error', async () => {
    const boom = new Error('boom');
    await expect(
      copy({
        sources: [srcPath],
        extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 4 * MiB }],
        target: { kind: 'file', path: desc },
        bufferBytes: 64 * KiB,
        progressIntervalMs: 0,
        onProgress: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
  });
});

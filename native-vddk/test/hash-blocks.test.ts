// hashBlocks(): the SHA-256 of many blocks of a file on the addon's threads,
// checked against node:crypto; the first difference in block order.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { hashBlocks, VddkError } from '../src';
import { tmpDir, writeSource } from './helpers';

const MiB = 1024 * 1024;

describe('hashBlocks', () => {
  let dir: string;
  let file: string;
  let data: Buffer;
  const offsets: number[] = [];
  const lengths: number[] = [];
  beforeAll(() => {
    dir = tmpDir();
    file = path.join(dir, 'data.bin');
    data = writeSource(file, 8 * MiB);
    // Blocks of many sizes at odd offsets: 1 byte, odd lengths, 1 MiB.
    let off = 3;
    for (let i = 0; i < 60; i++) {
      const len = i % 15 === 0 ? MiB : 1 + ((i * 7919) % (96 * 1024));
      offsets.push(off);
      lengths.push(len);
      off += len + (i % 3);
    }
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const digests = (): Buffer => Buffer.concat(offsets.map((o, i) => createHash('sha256').update(data.subarray(o, o + lengths[i]!)).digest()));

  it('finds every block equal, on one thread or several, reporting progress', async () => {
    const total = lengths.reduce((a, b) => a + b, 0);
    for (const threads of [1, 4]) {
      const seen: number[] = [];
      const r = await hashBlocks({ path: file, offsets, lengths, sha256: digests(), threads, progressIntervalMs: 0, onProgress: (p) => seen.push(p.bytesTotal) });
      expect(r).toEqual({ bytesHashed: total, mismatches: [] });
      for (const t of seen) expect(t).toBe(total);
    }
  });

  it('names the first differing block in block order, or all of them, with what they hashed to', async () => {
    const want = digests();
    for (const b of [10, 40, 41]) want.writeUInt8(want[b * 32]! ^ 1, b * 32);
    const actual = (b: number): string => createHash('sha256').update(data.subarray(offsets[b]!, offsets[b]! + lengths[b]!)).digest('hex');
    for (const threads of [1, 2, 8]) {
      const first = await hashBlocks({ path: file, offsets, lengths, sha256: want, threads });
      expect(first.mismatches).toEqual([{ block: 10, sha256: actual(10), bytesRead: lengths[10] }]);
      const all = await hashBlocks({ path: file, offsets, lengths, sha256: want, threads, stopAtFirst: false });
      expect(all.mismatches.map((m) => m.block)).toEqual([10, 40, 41]);
      expect(all.mismatches[1]!.sha256).toBe(actual(40));
    }
  });

  it('reports a block the file ends inside with the bytes it could read', async () => {
    const o = [0, 8 * MiB - 100];
    const l = [1024, 1024];
    const want = Buffer.concat([createHash('sha256').update(data.subarray(0, 1024)).digest(), createHash('sha256').update(data.subarray(8 * MiB - 100)).digest()]);
    const r = await hashBlocks({ path: file, offsets: o, lengths: l, sha256: want });
    expect(r.mismatches).toEqual([{ block: 1, sha256: want.subarray(32).toString('hex'), bytesRead: 100 }]);
  });

  it('fails on a missing file, a cancel before the start, and bad arguments, naming the field', async () => {
    await expect(hashBlocks({ path: path.join(dir, 'none'), offsets: [0], lengths: [1], sha256: Buffer.alloc(32) })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    const ac = new AbortController();
    ac.abort();
    await expect(hashBlocks({ path: file, offsets, lengths, sha256: digests(), signal: ac.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
    const bad = [
      [{ lengths: [1] }, /lengths must be as many as offsets/],
      [{ sha256: Buffer.alloc(31 * offsets.length) }, /sha256 must be \d+ bytes \(32 per block\)/],
      [{ lengths: lengths.map((l, i) => (i === 5 ? 0 : l)) }, /lengths\[5\] must be a whole number from 1 to 67108864, got 0/],
      [{ offsets: offsets.map((o, i) => (i === 2 ? -1 : o)) }, /offsets\[2\] must be a whole number >= 0, got -1/],
      [{ threads: 0 }, /threads must be a whole number from 1 to 16/],
    ] as const;
    for (const [patch, msg] of bad) {
      const err = await hashBlocks({ path: file, offsets, lengths, sha256: digests(), ...patch } as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VddkError);
      expect((err as Error).message).toMatch(msg);
    }
  });
});

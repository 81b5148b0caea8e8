import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesWritten, contiguousNext, disjoint, fileWriteMode, flatExtentPath, prefixBytes, savedRanges, splitRange } from './streams';

const MiB = 1024 * 1024;
const ext = (targetOffset: number, length: number) => ({ targetOffset, length });

describe('range streams', () => {
  it('tells disjoint write lists from overlapping ones, whatever their order', () => {
    expect(disjoint([ext(4096, 1024), ext(0, 4096), ext(5120, 1024)])).toBe(true);
    expect(disjoint([ext(0, 4096), ext(2048, 1024)])).toBe(false); // a later extent overwriting an earlier one (forward order)
    expect(disjoint([])).toBe(true);
  });

  it('splits into ranges of about equal bytes, never empty, none under the minimum', () => {
    const extents = [ext(0, 3 * MiB), ...Array.from({ length: 9 }, (_, i) => ext((4 + i) * MiB, MiB))]; // 12 MiB in 10 extents
    const at = prefixBytes(extents);
    const two = splitRange(at, 0, 10, 2, MiB);
    expect(two).toEqual([{ from: 0, to: 4, next: 0 }, { from: 4, to: 10, next: 4 }]); // 6 MiB each
    expect(splitRange(at, 0, 10, 4, 5 * MiB)).toHaveLength(2); // 12 MiB, at least 5 MiB each
    expect(splitRange(at, 0, 10, 8, 64 * MiB)).toEqual([{ from: 0, to: 10, next: 0 }]);
    expect(splitRange(at, 8, 10, 8, 1)).toEqual([{ from: 8, to: 9, next: 8 }, { from: 9, to: 10, next: 9 }]);
    // Every split covers [from, to) exactly, in order.
    for (const n of [1, 2, 3, 5, 16]) {
      const r = splitRange(at, 1, 10, n, 1);
      expect(r[0]!.from).toBe(1);
      expect(r.at(-1)!.to).toBe(10);
      r.slice(1).forEach((x, i) => expect(x.from).toBe(r[i]!.to));
    }
  });

  it('counts written bytes and the contiguous resume point of ranges', () => {
    const at = prefixBytes([ext(0, 10), ext(10, 20), ext(30, 30), ext(60, 40)]);
    const ranges = [{ from: 1, to: 3, next: 3 }, { from: 3, to: 4, next: 3 }];
    expect(bytesWritten(at, ranges)).toBe(10 + 50); // extent 0 before the ranges, then 1 and 2
    expect(contiguousNext(ranges, 4)).toBe(3);
    expect(contiguousNext([{ from: 0, to: 2, next: 1 }, { from: 2, to: 4, next: 4 }], 4)).toBe(1);
    expect(contiguousNext([{ from: 0, to: 4, next: 4 }], 4)).toBe(4);
  });

  it('takes saved ranges back only when they tile the write list', () => {
    expect(savedRanges({ ranges: [{ from: 2, to: 5, next: 3 }, { from: 5, to: 9, next: 9 }] }, 9)).toEqual([{ from: 2, to: 5, next: 3 }, { from: 5, to: 9, next: 9 }]);
    expect(savedRanges({ ranges: [{ from: 0, to: 5, next: 3 }, { from: 6, to: 9, next: 6 }] }, 9)).toBeNull(); // a gap
    expect(savedRanges({ ranges: [{ from: 0, to: 5, next: 6 }] }, 5)).toBeNull(); // next past its range
    expect(savedRanges({ ranges: [{ from: 0, to: 5, next: 0 }] }, 9)).toBeNull(); // another list's length
    expect(savedRanges({ transport: 'file' }, 9)).toBeNull();
    expect(savedRanges(null, 9)).toBeNull();
  });

  it('finds the flat extent of a descriptor, or takes a raw image as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streams-'));
    try {
      const desc = join(dir, 'vm.vmdk');
      writeFileSync(desc, '# Disk DescriptorFile\nversion=1\nCID=12345678\n\n# Extent description\nRW 2048 FLAT "vm flat.vmdk" 0\n');
      expect(flatExtentPath(desc)).toBe(join(dir, 'vm flat.vmdk'));
      const raw = join(dir, 'disk.raw');
      writeFileSync(raw, Buffer.alloc(4096));
      expect(flatExtentPath(raw)).toBe(raw);
      writeFileSync(desc, '# Disk DescriptorFile\nversion=1\n');
      expect(() => flatExtentPath(desc)).toThrow(/no "RW <sectors> FLAT" extent line/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('file write mode (VMRESTORE_FILE_DIRECT_IO)', () => {
  it('writes one copy direct under auto, several through the page cache without flush-behind', () => {
    expect(fileWriteMode('auto', 1)).toEqual({ direct: true });
    expect(fileWriteMode('auto', 4)).toEqual({ direct: false, flushBehind: 0 });
    expect(fileWriteMode('on', 4)).toEqual({ direct: true });
    // One copy through the page cache keeps flush-behind (the addon's default): nothing else bounds its dirty pages between checkpoints.
    expect(fileWriteMode('off', 1)).toEqual({ direct: false });
    expect(fileWriteMode('off', 3)).toEqual({ direct: false, flushBehind: 0 });
  });
});

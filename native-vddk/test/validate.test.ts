// Every bad argument is refused in TypeScript, before native code runs, with one message format.
import { copy, diskInfo, VddkError } from '../src';
import type { CopyOptions } from '../src';

const target = { kind: 'file' as const, path: '/nonexistent/disk.vmdk' };
const ok = { source: 0, sourceOffset: 0, targetOffset: 0, length: 1024 };
const vddk = {
  kind: 'vddk' as const,
  libDir: '/opt/vddk/lib64',
  server: 'vc.example',
  thumbprint: 'AA:BB',
  username: 'u',
  password: 'p',
  vmMoref: 'vm-1',
  transports: ['nbd' as const],
  diskPath: '[ds] vm/vm.vmdk',
};

async function rejection(opts: unknown): Promise<VddkError> {
  const err = await copy(opts as CopyOptions).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VddkError);
  return err as VddkError;
}

describe('argument validation', () => {
  it.each([
    [{ ...ok, targetOffset: 512 }, 'copy(): extents[0].targetOffset must be a multiple of 1024, got 512'],
    [{ ...ok, length: 1536 }, 'copy(): extents[0].length must be a multiple of 1024, got 1536'],
    [{ ...ok, length: 100 }, 'copy(): extents[0].length must be a multiple of 1024, got 100'],
  ])('rejects an unaligned extent %j with UNALIGNED_EXTENT', async (extent, message) => {
    const err = await rejection({ sources: ['/s'], extents: [ok, extent].slice(1), target });
    expect(err.code).toBe('UNALIGNED_EXTENT');
    expect(err.message).toBe(message);
  });

  it.each([
    [{ sources: [], extents: [], target }, 'copy(): sources must be a non-empty array, got an array'],
    [{ sources: ['/s'], extents: [{ ...ok, source: 1 }], target }, 'copy(): extents[0].source must be an index into sources (0..0), got 1'],
    [{ sources: ['/s'], extents: [{ ...ok, length: 0 }], target }, 'copy(): extents[0].length must be a positive safe integer, got 0'],
    [{ sources: ['/s'], extents: [{ ...ok, sourceOffset: -1 }], target }, 'copy(): extents[0].sourceOffset must be a non-negative safe integer, got -1'],
    [
      { sources: ['/s'], extents: [{ ...ok, check: { offset: 512, length: 1024, sha256: '0'.repeat(64) } }], target },
      'copy(): extents[0].check must be a range containing bytes 0..1024, got "512..1536"',
    ],
    [
      { sources: ['/s'], extents: [{ ...ok, check: { offset: 0, length: 1024, sha256: 'xyz' } }], target },
      'copy(): extents[0].check.sha256 must be a SHA-256 as 64 hex digits, got "xyz"',
    ],
    [{ sources: ['/s'], extents: [], target: { kind: 'disk' } }, 'copy(): target.kind must be "file" or "vddk", got "disk"'],
    [{ sources: ['/s'], extents: [], target, bufferBytes: 1000 }, 'copy(): bufferBytes must be a multiple of 4096 from 65536 to 268435456, got 1000'],
    [{ sources: ['/s'], extents: [], target, signal: {} }, 'copy(): signal must be an AbortSignal, got an object'],
    [{ sources: ['/s'], extents: [], target, writeMetadata: { 'ddb.uuid': 'x' } }, 'copy(): writeMetadata key must be a VixDiskLib key like "adapterType" (no "ddb." prefix), got "ddb.uuid"'],
    [{ sources: ['/s'], extents: [], target, writeMetadata: { uuid: 'a"b' } }, 'copy(): writeMetadata.uuid must be a string without quotes or line breaks, got "a\\"b"'],
    [{ sources: ['/s'], extents: [], target: { ...vddk, transports: ['nbd', 'file'] } }, 'copy(): target.transports[1] must be one of san, hotadd, nbdssl, nbd, got "file"'],
    [{ sources: ['/s'], extents: [], target: { ...vddk, transports: [] } }, 'copy(): target.transports must be a non-empty array, got an array'],
    [{ sources: ['/s'], extents: [], target: { ...vddk, cookie: 'c' } }, 'copy(): target must be given exactly one of password or cookie, got "both"'],
    [{ sources: ['/s'], extents: [], target: { ...vddk, diskPath: 'vm.vmdk' } }, 'copy(): target.diskPath must be a datastore path like "[ds] vm/vm.vmdk", got "vm.vmdk"'],
    [{ sources: ['/s'], extents: [], target: { ...vddk, server: '' } }, 'copy(): target.server must be a non-empty string, got ""'],
    [{ sources: ['/s'], extents: [], target, checkpoint: { everyExtents: 0 } }, 'copy(): checkpoint.everyExtents must be a whole number >= 1, got 0'],
    [{ sources: ['/s'], extents: [], target, checkpoint: { everyBytes: 1.5 } }, 'copy(): checkpoint.everyBytes must be a whole number >= 1, got 1.5'],
    [{ sources: ['/s'], extents: [], target, verify: true, checkpoint: { everyExtents: 1 } }, 'copy(): checkpoint must be absent with verify (a verify writes nothing to make durable), got an object'],
    [{ sources: ['/s'], extents: [], target, verify: true, readBack: true }, 'copy(): readBack must be absent with verify (a verify writes nothing to read back), got true'],
    [{ sources: ['/s'], extents: [], target: vddk, readBack: {} }, 'copy(): readBack must be absent unless target.kind is "file" (verify a VDDK target after the copy), got an object'],
    [{ sources: ['/s'], extents: [], target, readBack: { direct: 1 } }, 'copy(): readBack must be a boolean or { direct?: boolean }, got an object'],
    [
      { sources: ['/s'], extents: [{ ...ok, length: 2048 }, { ...ok, targetOffset: 4096 }, { ...ok, targetOffset: 1024 }], target, readBack: true },
      'copy(): extents must be extents that do not overlap on the target, with readBack (a later write would change a range already read back), got "extents[0] and extents[2]"',
    ],
    [{ sources: ['/s'], extents: [], target: { ...target, flushBehind: -1 } }, 'copy(): target.flushBehind must be a whole number of bytes >= 0, got -1'],
  ])('rejects %j with INVALID_ARG', async (opts, message) => {
    const err = await rejection(opts);
    expect(err.code).toBe('INVALID_ARG');
    expect(err.message).toBe(message);
  });

  it('validates diskInfo targets with the same format', async () => {
    await expect(diskInfo({ kind: 'file', path: '' })).rejects.toThrow('diskInfo(): target.path must be a non-empty string, got ""');
  });

  it('rejects an already aborted signal with CANCELLED before starting', async () => {
    const err = await rejection({ sources: ['/s'], extents: [ok], target, signal: AbortSignal.abort() });
    expect(err.code).toBe('CANCELLED');
  });
});

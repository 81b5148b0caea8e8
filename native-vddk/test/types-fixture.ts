// Compiled (not run) by types.test.ts: the public types accept the documented
// shapes and refuse the wrong ones (each @ts-expect-error must be an error).
import { copy, diskInfo, VddkError } from '../src';
import type { CopyResult, DiskInfo, Target } from '../src';

export async function fixture(): Promise<void> {
  const file: Target = { kind: 'file', path: '/d.vmdk', fresh: true };
  const vddk: Target = {
    kind: 'vddk', libDir: '/l', server: 's', thumbprint: 't', cookie: 'c', vmMoref: 'vm-1',
    transports: ['san', 'nbd'], diskPath: '[ds] vm/vm.vmdk',
  };
  const r: CopyResult = await copy({ sources: ['/s'], extents: [], target: file });
  const n: number = r.bytesWritten + r.extentsWritten + r.durationMs;
  const t: string = r.transport;
  const i: DiskInfo = await diskInfo(vddk);
  const cap: number = i.capacityBytes;
  const e = new VddkError('m', 'IO_ERROR');
  const code: string = e.code;
  void [n, t, cap, code];

  // @ts-expect-error transports are a closed set
  const bad1: Target = { ...vddk, transports: ['fibre'] };
  // @ts-expect-error a file target has no libDir
  const bad2: Target = { kind: 'file', path: '/p', libDir: '/l' };
  // @ts-expect-error extents need a length
  await copy({ sources: [], extents: [{ source: 0, sourceOffset: 0, targetOffset: 0 }], target: file });
  // @ts-expect-error check.sha256 is a hex string
  await copy({ sources: [], extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 1024, check: { offset: 0, length: 1024, sha256: new Uint8Array(32) } }], target: file });
  // @ts-expect-error results are read-only data, not a promise of void
  const bad3: void = await copy({ sources: [], extents: [], target: file });
  void [bad1, bad2, bad3];
}

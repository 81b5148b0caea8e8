// VixErrors from VixDiskLib become VddkErrors with the VixError's code and
// GetErrorText text, and the disk is still closed and disconnected.
import fs from 'node:fs';
import path from 'node:path';

import { copy, VddkError } from '../src';
import type { CopyOptions, VddkTarget } from '../src';
import { configureSim, flatOf, makeDisk, SIM_CONFIG, SIM_LIB_DIR, tmpDir, writeSource } from './helpers';

const MiB = 1024 * 1024;

describe('VixDiskLib failures through the simulator', () => {
  let dir: string;
  let log: string;
  let opts: CopyOptions;
  let desc: string;
  beforeEach(() => {
    dir = tmpDir();
    const vmDir = path.join(dir, 'ds0', 'vm1');
    fs.mkdirSync(vmDir, { recursive: true });
    log = path.join(dir, 'sim.log');
    desc = makeDisk(vmDir, 'vm1', 4 * MiB);
    writeSource(path.join(dir, 'src.bin'), 2 * MiB);
    const target: VddkTarget = {
      kind: 'vddk', libDir: SIM_LIB_DIR, server: 'esx', thumbprint: 'aa', username: 'root', password: 'pw',
      vmMoref: 'vm-9', transports: ['nbd'], diskPath: '[LocalDS_0] vm1/vm1.vmdk', configFile: SIM_CONFIG,
    };
    opts = {
      sources: [path.join(dir, 'src.bin')],
      extents: [{ source: 0, sourceOffset: 0, targetOffset: 0, length: 2 * MiB }],
      target,
      bufferBytes: 256 * 1024,
    };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterAll(() => fs.rmSync(SIM_CONFIG, { force: true }));

  function sim(fail?: string): void {
    configureSim({ datastores: `LocalDS_0=${path.join(dir, 'ds0')}`, log, ...(fail ? { fail } : {}) });
  }

  async function failure(o: CopyOptions): Promise<VddkError> {
    const err = await copy(o).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(VddkError);
    return err as VddkError;
  }

  it('maps an injected Write fault to its code and text, after closing the disk', async () => {
    sim('Write:3:VIX_E_DISK_OUTOFRANGE');
    const err = await failure(opts);
    expect(err.code).toBe('VIX_E_DISK_OUTOFRANGE');
    expect(err.vixError).toBe(16007);
    expect(err.message).toBe(
      'extent 0: You have requested access to an area of the virtual disk that is out of bounds (VixDiskLib_Write, VixError 16007)',
    );
    const text = fs.readFileSync(log, 'utf8');
    expect(text.match(/^VixDiskLib_Write tid=/gm)).toHaveLength(3);
    for (const fn of ['Flush', 'Close', 'Disconnect', 'EndAccess']) expect(text).toContain(`VixDiskLib_${fn} tid=`);
    // the two writes before the fault landed
    const src = fs.readFileSync(path.join(dir, 'src.bin'));
    expect(fs.readFileSync(flatOf(desc)).subarray(0, 512 * 1024).equals(src.subarray(0, 512 * 1024))).toBe(true);
  });

  it('maps a ConnectEx failure and still ends access', async () => {
    sim('ConnectEx:1:VIX_E_AUTHENTICATION_FAIL');
    const err = await failure(opts);
    expect([err.code, err.vixError]).toEqual(['VIX_E_AUTHENTICATION_FAIL', 35]);
    expect(err.message).toBe('Authentication failed (VixDiskLib_ConnectEx, VixError 35)');
    const text = fs.readFileSync(log, 'utf8');
    expect(text).toContain('VixDiskLib_EndAccess tid=');
    expect(text).not.toContain('VixDiskLib_Open tid=');
  });

  it('reports a missing disk as VIX_E_FILE_NOT_FOUND', async () => {
    sim();
    const err = await failure({ ...opts, target: { ...(opts.target as VddkTarget), diskPath: '[LocalDS_0] vm1/gone.vmdk' } });
    expect(err.code).toBe('VIX_E_FILE_NOT_FOUND');
    expect(err.message).toBe('A file was not found (VixDiskLib_Open, VixError 4)');
  });

  it('refuses an extent past GetInfo capacity before any Write', async () => {
    sim();
    const err = await failure({ ...opts, extents: [{ source: 0, sourceOffset: 0, targetOffset: 3 * MiB, length: 2 * MiB }] });
    expect(err.code).toBe('CAPACITY_MISMATCH');
    expect(fs.readFileSync(log, 'utf8')).not.toContain('VixDiskLib_Write tid=');
  });

  it('cancels mid-copy: some buffers written, the rest not, the disk still closed', async () => {
    configureSim({ datastores: `LocalDS_0=${path.join(dir, 'ds0')}`, log, writeDelayMs: '20' });
    const ac = new AbortController();
    const err = await failure({
      ...opts,
      bufferBytes: 64 * 1024, // 32 writes of 20 ms each
      progressIntervalMs: 0,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.bytesDone >= 128 * 1024) ac.abort();
      },
    });
    expect(err.code).toBe('CANCELLED');
    const text = fs.readFileSync(log, 'utf8');
    const writes = text.match(/^VixDiskLib_Write tid=/gm)?.length ?? 0;
    expect(writes).toBeGreaterThanOrEqual(2);
    expect(writes).toBeLessThan(32);
    for (const fn of ['Flush', 'Close', 'Disconnect', 'EndAccess']) expect(text).toContain(`VixDiskLib_${fn} tid=`);
  });

  it('reports a libDir without the library', async () => {
    sim();
    const err = await failure({ ...opts, target: { ...(opts.target as VddkTarget), libDir: path.join(dir, 'nolib') } });
    // LIBRARY_MISMATCH once the simulator is loaded in this process: VDDK is initialized once per process.
    expect(['LIBRARY_NOT_FOUND', 'LIBRARY_MISMATCH']).toContain(err.code);
  });
});

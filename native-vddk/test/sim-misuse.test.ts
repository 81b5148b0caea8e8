// The simulator refuses every misuse that would crash or corrupt a real VDDK:
// it returns VIX_E_INVALID_ARG (3) and logs a "MISUSE:" line.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { makeDisk, SIM_LIB_DIR, tmpDir } from './helpers';

const INVALID_ARG = '3';

describe('simulator misuse checks', () => {
  let dir: string;
  let probe: string;
  beforeAll(() => {
    dir = tmpDir('vddk-probe-');
    probe = path.join(dir, 'sim-probe');
    execFileSync('g++', [
      '-std=c++17', '-Wall', '-o', probe, path.join(__dirname, 'sim-probe.cc'),
      `-L${SIM_LIB_DIR}`, '-l:libvixDiskLib.so.8', `-Wl,-rpath,${SIM_LIB_DIR}`, '-lpthread',
    ]);
    fs.mkdirSync(path.join(dir, 'ds0', 'vm1'), { recursive: true });
    makeDisk(path.join(dir, 'ds0', 'vm1'), 'vm1', 1024 * 1024);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function run(scenario: string, env: Record<string, string> = {}): { steps: Record<string, string>; log: string } {
    const log = path.join(dir, `${scenario}.log`);
    fs.rmSync(log, { force: true });
    const out = execFileSync(probe, [scenario], {
      encoding: 'utf8',
      env: { ...process.env, VDDK_SIM_LOG: log, VDDK_SIM_DATASTORES: `LocalDS_0=${path.join(dir, 'ds0')}`, ...env },
    });
    const steps = Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ') as [string, string]));
    return { steps, log: fs.readFileSync(log, 'utf8') };
  }

  it('refuses calls before InitEx', () => {
    const { steps, log } = run('noinit');
    expect(steps.ConnectEx).toBe(INVALID_ARG);
    expect(log).toContain('MISUSE: VixDiskLib_ConnectEx tid=');
    expect(log).toContain('called before VixDiskLib_InitEx');
  });

  it('refuses NULL log callbacks in InitEx', () => {
    const { steps, log } = run('nullcallbacks');
    expect(steps.InitEx).toBe(INVALID_ARG);
    expect(log).toContain('log, warn and panic callbacks must not be NULL');
  });

  it('refuses NULL parameters VDDK would crash on', () => {
    const { steps, log } = run('nullparams');
    expect(steps).toMatchObject({ ConnectEx: INVALID_ARG, ConnectEx2: '0', Open: INVALID_ARG, GetInfo: INVALID_ARG });
    expect(log).toContain('MISUSE: VixDiskLib_ConnectEx');
    expect(log).toContain('NULL connectParams');
    expect(log).toContain('NULL path or handle out-parameter');
  });

  it('refuses an unknown transport mode', () => {
    const { steps, log } = run('transport');
    expect(steps.ConnectEx).toBe(INVALID_ARG);
    expect(log).toContain('unknown transport mode "fibre"');
  });

  it('refuses Open on a different thread than the earlier ConnectEx', () => {
    const { steps, log } = run('threads');
    expect(steps.OpenOtherThread).toBe(INVALID_ARG);
    expect(log).toMatch(/MISUSE: VixDiskLib_Open tid=\d+ control call on thread \d+ but earlier control calls ran on thread \d+/);
  });

  it('refuses writes that are not whole 1 KiB units, unless the 1 KiB rule is off', () => {
    const strict = run('unaligned');
    expect(strict.steps).toMatchObject({ WriteOddStart: INVALID_ARG, WriteOddCount: INVALID_ARG, WriteAligned: '0' });
    expect(strict.log).toContain('I/O not 1 KiB aligned: startSector=1 numSectors=2');
    const relaxed = run('unaligned', { VDDK_SIM_REQUIRE_1K: '0' });
    expect(relaxed.steps).toMatchObject({ WriteOddStart: '0', WriteOddCount: '0' });
    expect(relaxed.log).not.toContain('MISUSE');
  });

  it('refuses use of a handle after Close', () => {
    const { steps, log } = run('closed');
    expect(steps).toMatchObject({ Close: '0', WriteAfterClose: INVALID_ARG, CloseAgain: INVALID_ARG, Disconnect: '0' });
    expect(log).toContain('MISUSE: VixDiskLib_Write');
    expect(log).toContain('use of an unknown or closed disk handle');
  });

  it('refuses Disconnect while a disk of the connection is open', () => {
    const { steps, log } = run('disconnectopen');
    expect(steps).toMatchObject({ DisconnectWithOpenDisk: INVALID_ARG, Close: '0', Disconnect: '0' });
    expect(log).toContain('disks of this connection are still open');
  });

  it('aborts on misuse when asked to', () => {
    const r = spawnSync(probe, ['noinit'], { env: { ...process.env, VDDK_SIM_ABORT_ON_MISUSE: '1' } });
    expect(r.signal).toBe('SIGABRT');
  });
});

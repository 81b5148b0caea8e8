// Mapping saved disks to the disks vCenter created, by controller type, bus
// and unit number.
import type { VirtualDevice } from '../vsphere/types';
import { buildCreateSpec } from './build';
import { ConfigSpecError } from './errors';
import { richConfig, sampleConfigTarget, workedExampleConfig } from './fixtures';
import { matchCreatedDisks } from './match';

type Json = Record<string, any>;

/** What vCenter does on CreateVM_Task: real keys for every device, default controllers added. */
function simulateCreate(spec: Json): VirtualDevice[] {
  const real = new Map<number, number>();
  let next = 5000;
  const added = (spec.deviceChange as Json[]).map((c) => c.device as Json);
  for (const d of added) real.set(d.key, next++);
  const out: VirtualDevice[] = [
    { _type: 'VirtualIDEController', key: 200, busNumber: 0 } as VirtualDevice,
    { _type: 'VirtualIDEController', key: 201, busNumber: 1 } as VirtualDevice,
    { _type: 'VirtualPCIController', key: 100, busNumber: 0 } as VirtualDevice,
  ];
  // Listed in another order than the spec, as vCenter may.
  for (const d of [...added].reverse()) {
    const dev: Json = { ...d, key: real.get(d.key)! };
    if (typeof d.controllerKey === 'number') dev.controllerKey = real.get(d.controllerKey) ?? d.controllerKey;
    if (d._type === 'VirtualDisk') dev.capacityInBytes ??= d.capacityInKB * 1024;
    out.push(dev as VirtualDevice);
  }
  return out;
}

describe('matchCreatedDisks', () => {
  test('the worked example: each saved disk to the created disk at its controller/bus/unit', () => {
    const config = workedExampleConfig();
    const r = buildCreateSpec({ config, name: 'n', datastore: 'plat004-local' });
    const created = simulateCreate(r.spec);
    const m = matchCreatedDisks(config, created, r.disks);
    const byKey = new Map(created.map((d) => [d.key, d]));
    expect([...m.keys()]).toEqual([2000, 2001]);
    expect(byKey.get(m.get(2000)!)).toMatchObject({ unitNumber: 0, capacityInKB: 524288 });
    expect(byKey.get(m.get(2001)!)).toMatchObject({ unitNumber: 1, capacityInKB: 131072 });
  });

  test('several controllers of several types, the same unit numbers on each', () => {
    const config = richConfig();
    const r = buildCreateSpec({ config, name: 'n', datastore: 'ssd1', configTarget: sampleConfigTarget() });
    const created = simulateCreate(r.spec);
    const m = matchCreatedDisks(config, created, r.disks);
    const byKey = new Map(created.map((d) => [d.key, d as Json]));
    const ctl = (k: number) => byKey.get(byKey.get(m.get(k)!)!.controllerKey)!;
    expect([2000, 2001, 2002, 2003, 2004].map((k) => [ctl(k)._type, ctl(k).busNumber, byKey.get(m.get(k)!)!.unitNumber, byKey.get(m.get(k)!)!.capacityInKB])).toEqual([
      ['VirtualLsiLogicController', 0, 0, 40 * 2 ** 20],
      ['VirtualLsiLogicSASController', 1, 0, 100 * 2 ** 20],
      ['ParaVirtualSCSIController', 2, 0, 200 * 2 ** 20],
      ['ParaVirtualSCSIController', 2, 1, 10 * 2 ** 20],
      ['VirtualNVMEController', 0, 0, 60 * 2 ** 20],
    ]);
    expect(new Set(m.values()).size).toBe(5);
  });

  test('a disk on the default IDE controller', () => {
    const config = workedExampleConfig();
    const dev = config.hardware as Json;
    dev.device = (dev.device as Json[]).map((d) => (d.key === 2001 ? { ...d, controllerKey: 201, unitNumber: 1 } : d));
    const r = buildCreateSpec({ config, name: 'n', datastore: 'ds' });
    expect(r.disks[1]).toMatchObject({ controllerKey: 201, controllerType: 'VirtualIDEController', busNumber: 1, unitNumber: 1 });
    const created = simulateCreate(r.spec);
    const m = matchCreatedDisks(config, created, r.disks);
    expect(created.find((d) => d.key === m.get(2001))).toMatchObject({ controllerKey: 201, unitNumber: 1 });
  });

  test('refused: a missing disk, a missing controller, a smaller disk, a saved disk without placement', () => {
    const config = workedExampleConfig();
    const r = buildCreateSpec({ config, name: 'n', datastore: 'ds' });
    const created = simulateCreate(r.spec);
    const fails = (devs: VirtualDevice[], placements = r.disks) => {
      try {
        matchCreatedDisks(config, devs, placements);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigSpecError);
        return [(e as ConfigSpecError).code, (e as ConfigSpecError).details.deviceKey];
      }
      return 'matched';
    };
    expect(fails(created.filter((d) => !(d._type === 'VirtualDisk' && d.unitNumber === 1)))).toEqual(['CONFIGSPEC_DISK_NOT_MATCHED', 2001]);
    expect(fails(created.filter((d) => d._type !== 'VirtualLsiLogicController'))).toEqual(['CONFIGSPEC_DISK_NOT_MATCHED', 2000]);
    expect(fails(created.map((d) => (d._type === 'VirtualDisk' ? ({ ...d, capacityInKB: 1, capacityInBytes: 1024 } as VirtualDevice) : d)))).toEqual(['CONFIGSPEC_DISK_NOT_MATCHED', 2000]);
    expect(fails(created, r.disks.slice(1))).toEqual(['CONFIGSPEC_DISK_NOT_MATCHED', 2000]);
  });
});

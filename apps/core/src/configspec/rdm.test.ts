// RDM disks (MISSION R4): the backing names a free LUN of the config target,
// with the config target's canonicalName and uuid.
import { buildCreateSpec } from './build';
import { ConfigSpecError } from './errors';
import { createVmRequest, defaultDevices, sampleConfigTarget } from './fixtures';
import { chooseRdmLuns } from './rdm';
import type { BuildCreateSpecInput } from './types';

type Json = Record<string, any>;
const GB = 1024 * 1024; // in KB
const LUN = (n: number) => `naa.600a098000000000000000000000000${n}`;

const rdmDisk = (key: number, unit: number, gb: number, backing: Json) => ({
  _type: 'VirtualDisk',
  key,
  controllerKey: 1000,
  unitNumber: unit,
  capacityInKB: gb * GB,
  backing: {
    _type: 'VirtualDiskRawDiskMappingVer1BackingInfo',
    fileName: `[old] vm/vm_${key}.vmdk`,
    compatibilityMode: 'virtualMode',
    diskMode: 'persistent',
    uuid: '6000C29f-0000-0000-0000-000000000000',
    changeId: 'x/1',
    ...backing,
  },
});
const config = (disks: Json[]): Json => ({
  name: 'db',
  version: 'vmx-19',
  guestId: 'rhel8_64Guest',
  hardware: {
    numCPU: 2,
    memoryMB: 4096,
    device: [...defaultDevices(), { _type: 'VirtualLsiLogicSASController', key: 1000, controllerKey: 100, unitNumber: 3, busNumber: 0, sharedBus: 'physicalSharing', device: disks.map((d) => d.key) }, ...disks],
  },
});
const build = (disks: Json[], opts: Partial<BuildCreateSpecInput> = {}) => {
  const r = buildCreateSpec({ config: config(disks), name: 'db-dr', datastore: 'ssd1', configTarget: sampleConfigTarget(), ...opts });
  expect(createVmRequest(r.spec).problems).toEqual([]);
  return r;
};
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigSpecError);
    return (e as ConfigSpecError).code;
  }
  return 'accepted';
};

describe('RDM backings from the config target (R4)', () => {
  test('deviceName and lunUuid are the config target\'s, never the saved or host values', () => {
    // The saved LUN is the one named 1 on the old site, with the host's uuid form; here it matches by canonical name.
    const r = build([rdmDisk(2000, 0, 10, { deviceName: LUN(1), lunUuid: 'host-side-uuid' })], { rdmLuns: {} });
    const dev = (r.spec.deviceChange as Json[])[1]!;
    expect(dev).toEqual({
      operation: 'add',
      fileOperation: 'create',
      device: {
        _type: 'VirtualDisk',
        key: -2,
        controllerKey: -1,
        unitNumber: 0,
        capacityInKB: 10 * GB,
        backing: {
          _type: 'VirtualDiskRawDiskMappingVer1BackingInfo',
          fileName: '[ssd1]',
          deviceName: LUN(1),
          lunUuid: sampleConfigTarget().scsiDisk![0]!.disk.uuid,
          compatibilityMode: 'virtualMode',
          diskMode: 'persistent',
        },
      },
    });
    expect(r.disks[0]!.rdm).toEqual({ deviceName: LUN(1), lunUuid: sampleConfigTarget().scsiDisk![0]!.disk.uuid, compatibilityMode: 'virtualMode', matchedBy: 'deviceName' });
    expect(r.warnings).toEqual([]);
  });

  test('matched by the saved lunUuid when the name differs', () => {
    const uuid4 = sampleConfigTarget().scsiDisk![3]!.disk.uuid;
    const r = build([rdmDisk(2000, 0, 10, { deviceName: 'vml.old', lunUuid: uuid4, compatibilityMode: 'physicalMode' })]);
    expect(r.disks[0]!.rdm).toMatchObject({ deviceName: LUN(4), lunUuid: uuid4, compatibilityMode: 'physicalMode', matchedBy: 'lunUuid' });
  });

  test('matched by capacity when exactly one free LUN has it (warning); LUNs used by a VM are not free', () => {
    // LUN 2 and 3 have 20 GB, but 3 is used by vm-7.
    const r = build([rdmDisk(2000, 0, 20, { deviceName: 'naa.elsewhere', lunUuid: 'elsewhere' })]);
    expect(r.disks[0]!.rdm).toMatchObject({ deviceName: LUN(2), matchedBy: 'capacity' });
    expect(r.warnings.map((w) => [w.code, w.deviceKey])).toEqual([['RDM_LUN_BY_CAPACITY', 2000]]);
  });

  test('an explicit choice wins and is never given to another disk', () => {
    const r = build([rdmDisk(2000, 0, 50, { deviceName: LUN(1) }), rdmDisk(2001, 1, 10, {})], { rdmLuns: { 2001: LUN(1) } });
    expect(r.disks.map((d) => [d.savedKey, d.rdm!.deviceName, d.rdm!.matchedBy])).toEqual([[2000, LUN(4), 'capacity'], [2001, LUN(1), 'choice']]);
  });

  test('refused: no config target, no suitable LUN, a chosen LUN in use, smaller or unknown', () => {
    const d = rdmDisk(2000, 0, 10, { deviceName: LUN(1) });
    expect(code(() => build([d], { configTarget: undefined }))).toBe('CONFIGSPEC_NO_FREE_LUN');
    expect(code(() => build([rdmDisk(2000, 0, 30, {})]))).toBe('CONFIGSPEC_NO_FREE_LUN');
    expect(code(() => build([rdmDisk(2000, 0, 100, { deviceName: LUN(4) })]))).toBe('CONFIGSPEC_NO_FREE_LUN'); // 50 GB LUN for 100 GB
    expect(code(() => build([d], { rdmLuns: { 2000: LUN(3) } }))).toBe('CONFIGSPEC_NO_FREE_LUN');
    expect(code(() => build([d], { rdmLuns: { 2000: 'naa.nope' } }))).toBe('CONFIGSPEC_NO_FREE_LUN');
    expect(code(() => build([rdmDisk(2000, 0, 40, {})], { rdmLuns: { 2000: LUN(2) } }))).toBe('CONFIGSPEC_NO_FREE_LUN');
  });

  test('two free LUNs of the same size: ambiguous, choose with rdmLuns', () => {
    const ct = sampleConfigTarget();
    delete ct.scsiDisk![2]!.vm; // LUN 3 free too: 2 and 3 both 20 GB
    expect(code(() => build([rdmDisk(2000, 0, 20, {})], { configTarget: ct }))).toBe('CONFIGSPEC_AMBIGUOUS_LUN');
    expect(build([rdmDisk(2000, 0, 20, {})], { configTarget: ct, rdmLuns: { 2000: LUN(3) } }).disks[0]!.rdm!.deviceName).toBe(LUN(3));
  });

  test('two RDM disks never share a LUN', () => {
    const r = build([rdmDisk(2000, 0, 20, {}), rdmDisk(2001, 1, 50, {})]);
    expect(r.disks.map((d) => d.rdm!.deviceName)).toEqual([LUN(2), LUN(4)]);
    // Both name LUN 1: the first gets it, the second finds no other 10 GB LUN.
    expect(code(() => build([rdmDisk(2000, 0, 10, { deviceName: LUN(1) }), rdmDisk(2001, 1, 10, { deviceName: LUN(1) })]))).toBe('CONFIGSPEC_NO_FREE_LUN');
  });

  test('chooseRdmLuns reads capacity from disk.capacity blocks when the info has none', () => {
    const ct = { scsiDisk: [{ name: 'x', disk: { canonicalName: 'naa.b', uuid: 'u-b', capacity: { block: 2 * 2 ** 20, blockSize: 512 } } }] } as never;
    expect(chooseRdmLuns([{ key: 1, deviceName: undefined, lunUuid: undefined, capacityInKB: 2 ** 20 }], ct).get(1)).toEqual({ deviceName: 'naa.b', lunUuid: 'u-b', matchedBy: 'capacity' });
  });
});

// Each R5 rule alone, then the options (relocation, provisioning, MAC, UUID,
// CBT, extraConfig), on small saved configs.
import { buildCreateSpec } from './build';
import { ConfigSpecError } from './errors';
import { createVmRequest, defaultDevices } from './fixtures';
import type { BuildCreateSpecInput } from './types';

type Json = Record<string, any>;

const pvscsi = { _type: 'ParaVirtualSCSIController', key: 1000, controllerKey: 100, unitNumber: 3, busNumber: 0, sharedBus: 'noSharing', device: [2000] };
const disk = (key = 2000, extra: Json = {}, backing: Json = {}) => ({
  _type: 'VirtualDisk',
  key,
  controllerKey: 1000,
  unitNumber: key - 2000,
  capacityInKB: 1024 * 1024,
  capacityInBytes: 1024 * 1024 * 1024,
  backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: `[old] vm/vm_${key}.vmdk`, diskMode: 'persistent', thinProvisioned: true, ...backing },
  ...extra,
});
const nic = (extra: Json = {}) => ({
  _type: 'VirtualVmxnet3',
  key: 4000,
  controllerKey: 100,
  unitNumber: 7,
  addressType: 'assigned',
  macAddress: '00:50:56:9A:12:34',
  backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' },
  connectable: { startConnected: true, allowGuestControl: true, connected: true },
  ...extra,
});
const config = (devices: Json[], extra: Json = {}): Json => ({
  name: 'old',
  version: 'vmx-19',
  guestId: 'otherLinux64Guest',
  uuid: '4201aaaa-bbbb-cccc-dddd-eeeeffff0000',
  instanceUuid: '5001aaaa-bbbb-cccc-dddd-eeeeffff0000',
  files: { vmPathName: '[old] vm/vm.vmx' },
  hardware: { numCPU: 2, numCoresPerSocket: 2, memoryMB: 2048, device: [...defaultDevices(), ...devices] },
  ...extra,
});
const build = (cfg: Json, opts: Partial<BuildCreateSpecInput> = {}) => {
  const r = buildCreateSpec({ config: cfg, name: 'new', datastore: 'ds1', ...opts });
  expect(createVmRequest(r.spec).problems).toEqual([]);
  return r;
};
const devicesOf = (spec: Json) => (spec.deviceChange as Json[]).map((c) => c.device as Json);
const deviceOf = (spec: Json, type: string) => devicesOf(spec).find((d) => d._type === type)!;
const thrown = (fn: () => unknown): ConfigSpecError => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigSpecError);
    return e as ConfigSpecError;
  }
  throw new Error('did not throw');
};

describe('R5 rules, one at a time', () => {
  test('default devices are left out (IDE, PS2, PCI, SIO, keyboard, VMCI, pointing device)', () => {
    const { spec } = build(config([{ _type: 'VirtualVMCIDevice', key: 12001, controllerKey: 100, unitNumber: 16 }]));
    expect(spec.deviceChange).toEqual([]);
  });

  test('every other controller and device is added', () => {
    const video = { _type: 'VirtualMachineVideoCard', key: 500, controllerKey: 100, unitNumber: 0, videoRamSizeInKB: 4096, numDisplays: 1 };
    const { spec } = build(config([video, pvscsi, disk(), nic()]));
    expect((spec.deviceChange as Json[]).map((c) => [c.operation, c.device._type])).toEqual([
      ['add', 'VirtualMachineVideoCard'],
      ['add', 'ParaVirtualSCSIController'],
      ['add', 'VirtualDisk'],
      ['add', 'VirtualVmxnet3'],
    ]);
  });

  test('disks get fileOperation create; other devices none', () => {
    const { spec } = build(config([pvscsi, disk(), nic()]));
    expect((spec.deviceChange as Json[]).map((c) => c.fileOperation)).toEqual([undefined, 'create', undefined]);
  });

  test('a SCSI controller saved without sharedBus gets noSharing (the schema requires it)', () => {
    const { sharedBus: _omit, ...bare } = pvscsi;
    expect(deviceOf(build(config([bare])).spec, 'ParaVirtualSCSIController').sharedBus).toBe('noSharing');
  });

  test('the device field of every controller is left out', () => {
    const sas = { _type: 'VirtualLsiLogicSASController', key: 1001, controllerKey: 100, unitNumber: 4, busNumber: 1, sharedBus: 'noSharing', device: [] };
    const usb = { _type: 'VirtualUSBXHCIController', key: 14000, controllerKey: 100, unitNumber: 23, busNumber: 0, device: [14100] };
    const { spec } = build(config([pvscsi, sas, usb, disk()]));
    for (const d of devicesOf(spec)) expect(d).not.toHaveProperty('device');
    expect(createVmRequest(spec).body).not.toMatch(/<device>\d+<\/device>/);
  });

  test('new devices get unique negative temporary keys', () => {
    const { spec, tempKeys } = build(config([pvscsi, disk(2000), disk(2001), nic()]));
    const keys = devicesOf(spec).map((d) => d.key as number);
    expect(keys).toEqual([-1, -2, -3, -4]);
    expect([...tempKeys]).toEqual([[1000, -1], [2000, -2], [2001, -3], [4000, -4]]);
  });

  test('controllerKey follows the controller to its temporary key', () => {
    const { spec } = build(config([pvscsi, disk(2000), disk(2001)]), { tempKeys: { 1000: -77 } });
    expect(devicesOf(spec).map((d) => [d.key, d.controllerKey])).toEqual([[-77, 100], [-1, -77], [-2, -77]]);
  });

  test('devices on a default controller keep its real key (as given by defaultControllerKeys)', () => {
    const cd = { _type: 'VirtualCdrom', key: 3000, controllerKey: 201, unitNumber: 0, backing: { _type: 'VirtualCdromRemoteAtapiBackingInfo', deviceName: '' } };
    const ideDisk = { ...disk(2000), controllerKey: 200, unitNumber: 0 };
    const serial = { _type: 'VirtualSerialPort', key: 9000, controllerKey: 400, unitNumber: 0, yieldOnPoll: true, backing: { _type: 'VirtualSerialPortPipeBackingInfo', pipeName: 'p', endpoint: 'server' } };
    const same = build(config([cd, ideDisk, nic()]));
    expect(devicesOf(same.spec).map((d) => d.controllerKey)).toEqual([201, 200, 100]);
    const other = build(config([cd, ideDisk, nic(), serial]), { defaultControllerKeys: { ide0: 210, ide1: 211, pci: 110, sio: 410 } });
    expect(devicesOf(other.spec).map((d) => d.controllerKey)).toEqual([211, 210, 110, 410]);
    expect(other.disks[0]).toMatchObject({ controllerKey: 210, controllerType: 'VirtualIDEController', busNumber: 0, unitNumber: 0 });
    expect(other.warnings).toEqual([]);
  });

  test('a saved config without its default controllers: the usual keys still mean them', () => {
    const cfg = config([{ ...disk(2000), controllerKey: 201, unitNumber: 1 }]);
    cfg.hardware.device = cfg.hardware.device.filter((d: Json) => d._type === 'VirtualDisk');
    const r = build(cfg, { defaultControllerKeys: { ide1: 251 } });
    expect(deviceOf(r.spec, 'VirtualDisk').controllerKey).toBe(251);
    expect(r.disks[0]).toMatchObject({ controllerKey: 251, controllerType: 'VirtualIDEController', busNumber: 1, unitNumber: 1 });
  });

  test('the parent of every FlatVer2 backing is null (no <parent> element)', () => {
    const child = disk(2000, {}, { fileName: '[old] vm/vm-000002.vmdk', parent: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[old] vm/vm-000001.vmdk', diskMode: 'persistent', parent: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[old] vm/vm.vmdk', diskMode: 'persistent' } } });
    const { spec } = build(config([pvscsi, child]));
    expect(deviceOf(spec, 'VirtualDisk').backing.parent).toBeNull();
    expect(createVmRequest(spec).body).not.toContain('<parent');
  });

  test('each HostCpuIdInfo of cpuFeatureMask becomes a VirtualMachineCpuIdInfoSpec with operation add', () => {
    const mask = [
      { _type: 'HostCpuIdInfo', level: 1, vendor: 'amd', ecx: '---- ---- ---- ---- ---- ---- ---- --0-' },
      { _type: 'HostCpuIdInfo', level: -2147483647, edx: '---- 0--- ---- ---- ---- ---- ---- ----' },
    ];
    const { spec } = build(config([], { cpuFeatureMask: mask }));
    expect(spec.cpuFeatureMask).toEqual(mask.map((info) => ({ operation: 'add', info })));
    expect(createVmRequest(spec).body).toContain('<cpuFeatureMask><operation>add</operation><info xsi:type="HostCpuIdInfo"><level>1</level><vendor>amd</vendor>');
    expect(build(config([], { cpuFeatureMask: [] })).spec).not.toHaveProperty('cpuFeatureMask');
  });
});

describe('ConfigInfo -> ConfigSpec fields', () => {
  test('hardware and settings map to their spec names', () => {
    const { spec } = build(
      config([], {
        hardware: { numCPU: 4, numCoresPerSocket: 2, memoryMB: 4096, virtualICH7MPresent: false, virtualSMCPresent: false, device: defaultDevices() },
        defaultPowerOps: { powerOffType: 'soft', suspendType: 'hard', resetType: 'soft', defaultPowerOffType: 'soft', standbyAction: 'checkpoint' },
        tools: { toolsVersion: 12352, toolsInstallType: 'guestToolsTypeOpenVMTools', afterPowerOn: true, syncTimeWithHost: false, lastInstallInfo: { counter: 0 } },
        flags: { diskUuidEnabled: true, faultToleranceType: 'unset' },
        cpuAllocation: { reservation: 0, limit: -1, shares: { shares: 4000, level: 'normal' }, overheadLimit: 1 },
        annotation: 'notes',
        nestedHVEnabled: true,
        memoryHotAddEnabled: true,
      }),
    );
    expect(spec).toMatchObject({
      name: 'new',
      version: 'vmx-19',
      guestId: 'otherLinux64Guest',
      numCPUs: 4,
      numCoresPerSocket: 2,
      memoryMB: 4096,
      virtualICH7MPresent: false,
      powerOpInfo: { powerOffType: 'soft', suspendType: 'hard', resetType: 'soft', standbyAction: 'checkpoint' },
      tools: { afterPowerOn: true, syncTimeWithHost: false },
      flags: { diskUuidEnabled: true },
      cpuAllocation: { reservation: 0, limit: -1, shares: { shares: 4000, level: 'normal' } },
      annotation: 'notes',
      nestedHVEnabled: true,
      memoryHotAddEnabled: true,
    });
    expect(spec.powerOpInfo).not.toHaveProperty('defaultPowerOffType');
    expect(spec.tools).not.toHaveProperty('toolsVersion');
    expect(spec.flags).not.toHaveProperty('faultToleranceType');
    expect(spec.cpuAllocation).not.toHaveProperty('overheadLimit');
  });

  test('EFI firmware and secure boot are kept; the boot order is dropped with a warning', () => {
    const { spec, warnings } = build(
      config([], { firmware: 'efi', bootOptions: { efiSecureBootEnabled: true, bootDelay: 0, bootOrder: [{ _type: 'VirtualMachineBootOptionsBootableDiskDevice', deviceKey: 2000 }] } }),
    );
    expect(spec.firmware).toBe('efi');
    expect(spec.bootOptions).toEqual({ efiSecureBootEnabled: true, bootDelay: 0 });
    expect(warnings.map((w) => w.code)).toEqual(['BOOT_ORDER_DROPPED']);
  });

  test('files.vmPathName is "[datastore]" and nothing else of the old files', () => {
    const { spec } = build(config([], { files: { vmPathName: '[old] vm/vm.vmx', snapshotDirectory: '[old] vm/', logDirectory: '[old] vm/' } }), { datastore: 'new-ds' });
    expect(spec.files).toEqual({ vmPathName: '[new-ds]' });
  });
});

describe('disks', () => {
  test('backing: "[datastore]", diskMode and capacity as saved, no old identity', () => {
    const saved = disk(2000, { diskObjectId: '1-2000', iofilter: ['vmwarevmcrypt'] }, { diskMode: 'independent_persistent', uuid: 'u', changeId: 'c', contentId: 'x', datastore: { type: 'Datastore', value: 'datastore-1' } });
    const { spec, warnings } = build(config([pvscsi, saved]));
    expect(deviceOf(spec, 'VirtualDisk')).toEqual({
      _type: 'VirtualDisk',
      key: -2,
      controllerKey: -1,
      unitNumber: 0,
      capacityInKB: 1024 * 1024,
      capacityInBytes: 1024 * 1024 * 1024,
      backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[ds1]', diskMode: 'independent_persistent', thinProvisioned: true, parent: null },
    });
    expect(warnings.map((w) => w.code)).toEqual(['IOFILTER_DROPPED']);
  });

  test('per-disk datastores', () => {
    const { spec, disks } = build(config([pvscsi, disk(2000), disk(2001)]), { diskDatastores: { 2001: 'fast' } });
    expect(devicesOf(spec).filter((d) => d._type === 'VirtualDisk').map((d) => d.backing.fileName)).toEqual(['[ds1]', '[fast]']);
    expect(disks.map((d) => d.datastore)).toEqual(['ds1', 'fast']);
  });

  test.each([
    ['thin', { thinProvisioned: true, eagerlyScrub: false }],
    ['thick-lazy', { thinProvisioned: false, eagerlyScrub: false }],
    ['thick-eager', { thinProvisioned: false, eagerlyScrub: true }],
  ] as const)('provisioning %s', (p, flags) => {
    const { spec, disks } = build(config([pvscsi, disk()]), { provisioning: p });
    expect(deviceOf(spec, 'VirtualDisk').backing).toMatchObject(flags);
    expect(disks[0]!.provisioning).toBe(p);
  });

  test('provisioning per disk; unlisted disks as saved', () => {
    const { spec, disks } = build(config([pvscsi, disk(2000), disk(2001, {}, { thinProvisioned: false, eagerlyScrub: true })]), { provisioning: { 2000: 'thick-eager' } });
    const [a, b] = devicesOf(spec).filter((d) => d._type === 'VirtualDisk');
    expect(a!.backing).toMatchObject({ thinProvisioned: false, eagerlyScrub: true });
    expect(b!.backing).toMatchObject({ thinProvisioned: false, eagerlyScrub: true });
    expect(disks.map((d) => d.provisioning)).toEqual(['thick-eager', 'thick-eager']);
  });

  test('a sparse or SE sparse disk is recreated flat, with a warning', () => {
    const se = { ...disk(), backing: { _type: 'VirtualDiskSeSparseBackingInfo', fileName: '[old] vm/vm.vmdk', diskMode: 'persistent', grainSize: 4 } };
    const { spec, warnings } = build(config([pvscsi, se]));
    expect(deviceOf(spec, 'VirtualDisk').backing).toEqual({ _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[ds1]', diskMode: 'persistent', parent: null });
    expect(warnings.map((w) => [w.code, w.deviceKey])).toEqual([['DISK_BACKING_CONVERTED', 2000]]);
  });

  test('capacity from capacityInBytes when capacityInKB is missing; none at all is refused', () => {
    const d = disk();
    delete (d as Json).capacityInKB;
    d.capacityInBytes = 5 * 1024 * 1024 + 512;
    expect(deviceOf(build(config([pvscsi, d])).spec, 'VirtualDisk').capacityInKB).toBe(5 * 1024 + 1);
    delete (d as Json).capacityInBytes;
    expect(thrown(() => build(config([pvscsi, d]))).code).toBe('CONFIGSPEC_INVALID_CONFIG');
  });
});

describe('NICs', () => {
  test('regenerate (default): addressType generated, no macAddress', () => {
    const { spec, nics } = build(config([nic()]));
    const n = deviceOf(spec, 'VirtualVmxnet3');
    expect(n.addressType).toBe('generated');
    expect(n).not.toHaveProperty('macAddress');
    expect(nics[0]).toMatchObject({ addressType: 'generated', macAddress: undefined, savedMacAddress: '00:50:56:9A:12:34' });
  });

  test('keep: addressType manual with the saved MAC (normalized), warning when it is a generated one', () => {
    const r = build(config([nic({ macAddress: '00-50-56-3F-00-01' })]), { macAddresses: 'keep' });
    expect(deviceOf(r.spec, 'VirtualVmxnet3')).toMatchObject({ addressType: 'manual', macAddress: '00:50:56:3f:00:01' });
    expect(r.warnings).toEqual([]);
    const g = build(config([nic()]), { macAddresses: 'keep' });
    expect(deviceOf(g.spec, 'VirtualVmxnet3')).toMatchObject({ addressType: 'manual', macAddress: '00:50:56:9a:12:34' });
    expect(g.warnings.map((w) => w.code)).toEqual(['MAC_OUTSIDE_STATIC_RANGE']);
  });

  test('keep refuses a MAC in use on the target, or twice in the config', () => {
    const e = thrown(() => build(config([nic()]), { macAddresses: 'keep', existingUuids: { instanceUuids: [], biosUuids: [], macs: ['00:50:56:9a:12:34'] } }));
    expect(e.code).toBe('CONFIGSPEC_MAC_COLLISION');
    expect(e.permanent).toBe(true);
    expect(e.details).toEqual({ deviceKey: 4000, value: '00:50:56:9a:12:34' });
    const twice = thrown(() => build(config([nic(), nic({ key: 4001, unitNumber: 8 })]), { macAddresses: 'keep' }));
    expect(twice.code).toBe('CONFIGSPEC_MAC_COLLISION');
    // regenerate never collides
    build(config([nic()]), { existingUuids: { instanceUuids: [], biosUuids: [], macs: ['00:50:56:9a:12:34'] } });
  });

  test('networks: a network backing with deviceName and network; others kept as saved', () => {
    const { spec, nics } = build(config([nic(), nic({ key: 4001, unitNumber: 8, macAddress: undefined })]), { networks: { 4000: { name: 'DR LAN', network: { type: 'Network', value: 'network-9' } } } });
    const [a, b] = devicesOf(spec);
    expect(a!.backing).toEqual({ _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'DR LAN', network: { type: 'Network', value: 'network-9' } });
    expect(b!.backing).toEqual({ _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' });
    expect(nics.map((n) => n.network)).toEqual(['DR LAN', 'VM Network']);
  });
});

describe('UUIDs', () => {
  test('new (default): uuid and instanceUuid left out', () => {
    const { spec } = build(config([]));
    expect(spec).not.toHaveProperty('uuid');
    expect(spec).not.toHaveProperty('instanceUuid');
  });

  test('keep: both kept', () => {
    const { spec } = build(config([]), { uuids: 'keep', existingUuids: { instanceUuids: ['5001aaaa-0000-0000-0000-000000000000'], biosUuids: [], macs: [] } });
    expect(spec).toMatchObject({ uuid: '4201aaaa-bbbb-cccc-dddd-eeeeffff0000', instanceUuid: '5001aaaa-bbbb-cccc-dddd-eeeeffff0000' });
  });

  test.each([
    ['instance', { instanceUuids: ['5001AAAA-BBBB-CCCC-DDDD-EEEEFFFF0000'], biosUuids: [], macs: [] }, 'instanceUuid'],
    ['BIOS', { instanceUuids: [], biosUuids: ['42 01 aa aa bb bb cc cc-dd dd ee ee ff ff 00 00'], macs: [] }, 'uuid'],
  ])('keep refuses a %s UUID in use on the target', (_n, existing, field) => {
    const e = thrown(() => build(config([]), { uuids: 'keep', existingUuids: existing }));
    expect(e.code).toBe('CONFIGSPEC_UUID_COLLISION');
    expect(e.details.field).toBe(field);
    build(config([]), { uuids: 'new', existingUuids: existing });
  });
});

describe('CBT and extraConfig', () => {
  test('changeTrackingEnabled false by default (even when the saved VM had CBT), true when asked', () => {
    expect(build(config([], { changeTrackingEnabled: true })).spec.changeTrackingEnabled).toBe(false);
    expect(build(config([]), { cbt: true }).spec.changeTrackingEnabled).toBe(true);
  });

  test('extraConfig keeps user keys and leaves out the ones bound to the old VM', () => {
    const extraConfig = [
      { key: 'sched.swap.derivedName', value: '/vmfs/volumes/x/vm.vswp' },
      { key: 'uuid.bios', value: '42 01' },
      { key: 'vc.uuid', value: '50 01' },
      { key: 'nvram', value: 'old.nvram' },
      { key: 'ctkEnabled', value: 'TRUE' },
      { key: 'SCSI0:1.ctkEnabled', value: 'TRUE' },
      { key: 'migrate.hostLog', value: 'old.hlog' },
      { key: 'disk.EnableUUID', value: 'TRUE' },
      { key: 'guestinfo.userdata', value: 'abc' },
      { key: 'numeric', value: 3 },
    ];
    const r = build(config([], { extraConfig }));
    expect(r.spec.extraConfig).toEqual([
      { key: 'disk.EnableUUID', value: 'TRUE' },
      { key: 'guestinfo.userdata', value: 'abc' },
      { key: 'numeric', value: 3 },
    ]);
    expect(r.droppedExtraConfig).toEqual(['sched.swap.derivedName', 'uuid.bios', 'vc.uuid', 'nvram', 'ctkEnabled', 'SCSI0:1.ctkEnabled', 'migrate.hostLog']);
    expect(createVmRequest(r.spec).body).toContain('<extraConfig><key>numeric</key><value xsi:type="xsd:int">3</value></extraConfig>');
  });
});

describe('refused inputs', () => {
  test.each([
    ['no device list', () => build({ name: 'x', hardware: {} })],
    ['duplicate keys', () => build(config([pvscsi, { ...pvscsi }]))],
    ['a device on a controller that does not exist', () => build(config([{ ...disk(), controllerKey: 1500 }]))],
    ['a device on a non-controller', () => build(config([pvscsi, { ...disk(), controllerKey: 600 }]))],
    ['a disk without controllerKey', () => build(config([pvscsi, { ...disk(), controllerKey: undefined }]))],
  ])('invalid config: %s', (_n, fn) => {
    expect(thrown(fn).code).toBe('CONFIGSPEC_INVALID_CONFIG');
  });

  test.each([
    ['a positive temp key', { tempKeys: { 1000: 5 } }],
    ['a temp key used twice', { tempKeys: { 1000: -5, 2000: -5 } }],
    ['a datastore name with brackets', { datastore: '[ds1]' }],
    ['an empty disk datastore', { diskDatastores: { 2000: '' } }],
    ['no name', { name: ' ' }],
  ])('invalid option: %s', (_n, opts) => {
    expect(thrown(() => build(config([pvscsi, disk()]), opts as Partial<BuildCreateSpecInput>)).code).toBe('CONFIGSPEC_INVALID_OPTION');
  });
});

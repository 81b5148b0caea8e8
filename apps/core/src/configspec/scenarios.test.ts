// Whole saved configs: a modern VM full of host-bound devices, the backup
// fixtures' sample config, RDM disks against a config target, and configs
// from a vSphere newer than the shipped schema.
import { sampleVmConfig } from '../backup/fixtures';
import { buildCreateSpec } from './build';
import { ConfigSpecError } from './errors';
import { createVmRequest, defaultDevices, richConfig, sampleConfigTarget } from './fixtures';
import type { BuildCreateSpecInput } from './types';

type Json = Record<string, any>;
const devicesOf = (spec: Json) => (spec.deviceChange as Json[]).map((c) => c.device as Json);
const MISSING_ISO = '[iso] windows/en_server_2022.iso';

describe('a modern VM with USB, a missing ISO, EFI secure boot, three SCSI types and NVMe', () => {
  const input = (): BuildCreateSpecInput => ({
    config: richConfig(),
    name: 'rich-restored',
    datastore: 'ssd1',
    diskDatastores: { 2004: 'nvme2' },
    configTarget: sampleConfigTarget(),
    fileExists: (p) => p !== MISSING_ISO,
    networks: { 4001: { name: 'VM Network' } },
  });
  const r = buildCreateSpec(input());

  test('the documented warnings, in device order then VM-level', () => {
    expect(r.warnings.map((w) => [w.code, w.deviceKey ?? null])).toEqual([
      ['DEVICE_DROPPED_USB', 14100],
      ['DEVICE_DROPPED_HOST_BACKING', 9000],
      ['DEVICE_DROPPED_HOST_BACKING', 10000],
      ['DEVICE_DROPPED_PASSTHROUGH', 13000],
      ['DEVICE_DROPPED_TPM', 11000],
      ['CDROM_ISO_MISSING', 16000],
      ['BOOT_ORDER_DROPPED', null],
      ['AFFINITY_DROPPED', null],
    ]);
    for (const w of r.warnings) expect(w.message).not.toBe('');
  });

  test('the spec passes the schema check as the body of CreateVM_Task', () => {
    expect(createVmRequest(r.spec).problems).toEqual([]);
  });

  test('controllers and devices kept, with the right keys', () => {
    expect(devicesOf(r.spec).map((d) => [d._type, d.key, d.controllerKey ?? null])).toEqual([
      ['VirtualMachineVideoCard', -1, 100],
      ['VirtualLsiLogicController', -2, 100],
      ['VirtualLsiLogicSASController', -3, 100],
      ['ParaVirtualSCSIController', -4, 100],
      ['VirtualNVMEController', -5, 100],
      ['VirtualAHCIController', -6, 100],
      ['VirtualDisk', -7, -2],
      ['VirtualDisk', -8, -3],
      ['VirtualDisk', -9, -4],
      ['VirtualDisk', -10, -4],
      ['VirtualDisk', -11, -5],
      ['VirtualCdrom', -12, -6],
      ['VirtualVmxnet3', -13, 100],
      ['VirtualE1000e', -14, 100],
      ['VirtualUSBXHCIController', -15, 100],
      ['VirtualSerialPort', -16, 400],
    ]);
    const ctl = devicesOf(r.spec).filter((d) => /Controller$/.test(d._type));
    expect(ctl.map((c) => [c.busNumber, c.sharedBus])).toEqual([[0, 'noSharing'], [1, 'noSharing'], [2, 'noSharing'], [0, undefined], [0, undefined], [0, undefined]]);
    for (const c of ctl) expect(c).not.toHaveProperty('device');
  });

  test('the CD-ROM on the missing ISO stays, empty and not connected', () => {
    const cd = devicesOf(r.spec).find((d) => d._type === 'VirtualCdrom')!;
    expect(cd.backing).toEqual({ _type: 'VirtualCdromRemotePassthroughBackingInfo', deviceName: '', exclusive: false });
    expect(cd.connectable).toEqual({ startConnected: false, allowGuestControl: true, connected: false });
  });

  test('an ISO that exists is kept (without the old datastore moref); unchecked when no fileExists is given', () => {
    for (const fileExists of [() => true, undefined]) {
      const x = buildCreateSpec({ ...input(), fileExists });
      const cd = devicesOf(x.spec).find((d) => d._type === 'VirtualCdrom')!;
      expect(cd.backing).toEqual({ _type: 'VirtualCdromIsoBackingInfo', fileName: MISSING_ISO });
      expect(cd.connectable).toEqual({ startConnected: true, allowGuestControl: true, connected: false });
    }
  });

  test('EFI and secure boot are kept, so the guest boots', () => {
    expect(r.spec.firmware).toBe('efi');
    expect(r.spec.bootOptions).toEqual({ bootDelay: 0, enterBIOSSetup: false, efiSecureBootEnabled: true, bootRetryEnabled: false, bootRetryDelay: 10000, networkBootProtocol: 'ipv4' });
    expect(r.spec.flags).toEqual({ enableLogging: true, snapshotPowerOffBehavior: 'powerOff', diskUuidEnabled: true, virtualMmuUsage: 'automatic', vbsEnabled: true, vvtdEnabled: true });
  });

  test('settings kept; what binds to the old VM left out', () => {
    const s = r.spec as Json;
    expect(s).toMatchObject({
      name: 'rich-restored',
      version: 'vmx-19',
      guestId: 'windows2019srvNext_64Guest',
      annotation: 'restored from backup',
      numCPUs: 8,
      numCoresPerSocket: 4,
      memoryMB: 16384,
      cpuHotAddEnabled: true,
      memoryReservationLockedToMax: true,
      nestedHVEnabled: true,
      swapPlacement: 'inherit',
      maxMksConnections: 40,
      migrateEncryption: 'opportunistic',
      changeTrackingEnabled: false,
      files: { vmPathName: '[ssd1]' },
      tools: { afterPowerOn: true, afterResume: true, beforeGuestStandby: true, beforeGuestShutdown: true, beforeGuestReboot: true, toolsUpgradePolicy: 'manual', syncTimeWithHostAllowed: true, syncTimeWithHost: false },
      powerOpInfo: { powerOffType: 'soft', suspendType: 'hard', resetType: 'soft', standbyAction: 'checkpoint' },
      cpuAllocation: { reservation: 1000, expandableReservation: false, limit: -1, shares: { shares: 8000, level: 'normal' } },
    });
    for (const f of ['uuid', 'instanceUuid', 'cpuAffinity', 'managedBy', 'datastoreUrl', 'initialOverhead', 'vmxConfigChecksum', 'changeVersion', 'modified', 'template', 'guestFullName']) {
      expect(s).not.toHaveProperty(f);
    }
    expect(s.cpuFeatureMask).toHaveLength(2);
    expect(s.extraConfig.map((o: Json) => o.key)).toEqual(['disk.EnableUUID', 'svga.present', 'guestinfo.role', 'pciBridge0.present']);
  });

  test('NICs: the distributed port loses the old port and cookie; the mapped NIC gets its network', () => {
    const [vmxnet3, e1000e] = devicesOf(r.spec).filter((d) => /Vmxnet3|E1000e/.test(d._type));
    expect(vmxnet3!.backing).toEqual({ _type: 'VirtualEthernetCardDistributedVirtualPortBackingInfo', port: { switchUuid: '50 2a 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', portgroupKey: 'dvportgroup-21' } });
    expect(vmxnet3).not.toHaveProperty('externalId');
    expect(vmxnet3!.slotInfo).toEqual({ _type: 'VirtualDevicePciBusSlotInfo', pciSlotNumber: 192 });
    expect(e1000e!.backing).toEqual({ _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network', network: { type: 'Network', value: 'network-1' } });
    expect(r.nics.map((n) => [n.savedKey, n.network, n.addressType])).toEqual([[4000, 'dvportgroup-21', 'generated'], [4001, 'VM Network', 'generated']]);
  });

  test('a network chosen by a distributed portgroup name becomes a distributed port backing', () => {
    const x = buildCreateSpec({ ...input(), networks: { 4000: { name: 'DR' }, 4001: { name: 'Backup LAN' } } });
    const [a, b] = devicesOf(x.spec).filter((d) => /Vmxnet3|E1000e/.test(d._type));
    expect(a!.backing).toEqual({ _type: 'VirtualEthernetCardDistributedVirtualPortBackingInfo', port: { switchUuid: '50 2a 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', portgroupKey: 'dvportgroup-30' } });
    expect(b!.backing).toEqual({ _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'Backup LAN', network: { type: 'Network', value: 'network-8' } });
  });

  test('disks: placements with controller type, bus and unit; datastores and provisioning', () => {
    expect(r.disks.map((d) => [d.savedKey, d.tempKey, d.controllerType, d.busNumber, d.unitNumber, d.datastore, d.provisioning, d.capacityBytes])).toEqual([
      [2000, -7, 'VirtualLsiLogicController', 0, 0, 'ssd1', 'thin', 40 * 2 ** 30],
      [2001, -8, 'VirtualLsiLogicSASController', 1, 0, 'ssd1', 'thin', 100 * 2 ** 30],
      [2002, -9, 'ParaVirtualSCSIController', 2, 0, 'ssd1', 'thick-eager', 200 * 2 ** 30],
      [2003, -10, 'ParaVirtualSCSIController', 2, 1, 'ssd1', 'thin', 10 * 2 ** 30],
      [2004, -11, 'VirtualNVMEController', 0, 0, 'nvme2', 'thin', 60 * 2 ** 30],
    ]);
    const d = devicesOf(r.spec).find((x) => x.key === -10)!;
    expect(d).toEqual({
      _type: 'VirtualDisk',
      key: -10,
      controllerKey: -4,
      unitNumber: 1,
      capacityInKB: 10 * 2 ** 20,
      capacityInBytes: 10 * 2 ** 30,
      shares: { shares: 1000, level: 'normal' },
      storageIOAllocation: { limit: -1, shares: { shares: 1000, level: 'normal' }, reservation: 0 },
      backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[ssd1]', diskMode: 'independent_persistent', split: false, writeThrough: false, thinProvisioned: true, digestEnabled: false, sharing: 'sharingNone', parent: null },
    });
  });

  test('MAC keep: manual addresses, collisions refused', () => {
    const x = buildCreateSpec({ ...input(), macAddresses: 'keep' });
    expect(x.nics.map((n) => [n.addressType, n.macAddress])).toEqual([['manual', '00:50:56:9a:aa:01'], ['manual', '00:50:56:3f:00:02']]);
    expect(x.warnings.filter((w) => w.code === 'MAC_OUTSIDE_STATIC_RANGE').map((w) => w.deviceKey)).toEqual([4000]);
    expect(() => buildCreateSpec({ ...input(), macAddresses: 'keep', existingUuids: { instanceUuids: [], biosUuids: [], macs: ['00:50:56:3F:00:02'] } })).toThrow(
      expect.objectContaining({ code: 'CONFIGSPEC_MAC_COLLISION', details: { deviceKey: 4001, value: '00:50:56:3f:00:02' } }),
    );
  });

  test('UUID keep: kept, collisions refused', () => {
    const x = buildCreateSpec({ ...input(), uuids: 'keep', existingUuids: { instanceUuids: [], biosUuids: [], macs: [] } });
    expect(x.spec).toMatchObject({ uuid: '4212f00d-0000-1111-2222-333344445555', instanceUuid: '5012f00d-6666-7777-8888-9999aaaabbbb' });
    expect(createVmRequest(x.spec).problems).toEqual([]);
    expect(() => buildCreateSpec({ ...input(), uuids: 'keep', existingUuids: { instanceUuids: ['5012F00D-6666-7777-8888-9999AAAABBBB'], biosUuids: [], macs: [] } })).toThrow(
      expect.objectContaining({ code: 'CONFIGSPEC_UUID_COLLISION' }),
    );
  });

  test('the config target must have the datastores and networks', () => {
    expect(() => buildCreateSpec({ ...input(), datastore: 'gone' })).toThrow(expect.objectContaining({ code: 'CONFIGSPEC_DATASTORE_UNAVAILABLE' }));
    expect(() => buildCreateSpec({ ...input(), diskDatastores: { 2001: 'gone' } })).toThrow(expect.objectContaining({ code: 'CONFIGSPEC_DATASTORE_UNAVAILABLE' }));
    expect(() => buildCreateSpec({ ...input(), networks: { 4001: { name: 'gone' } } })).toThrow(expect.objectContaining({ code: 'CONFIGSPEC_NETWORK_UNAVAILABLE' }));
    const noLan = sampleConfigTarget();
    noLan.network = noLan.network!.filter((n) => n.name !== 'Backup LAN');
    expect(() => buildCreateSpec({ ...input(), configTarget: noLan, networks: {} })).toThrow(
      expect.objectContaining({ code: 'CONFIGSPEC_NETWORK_UNAVAILABLE', details: { deviceKey: 4001, value: 'Backup LAN' } }),
    );
    const noPg = sampleConfigTarget();
    noPg.distributedVirtualPortgroup = [{ switchUuid: 'other', portgroupKey: 'dvportgroup-21' }];
    expect(() => buildCreateSpec({ ...input(), configTarget: noPg })).toThrow(expect.objectContaining({ code: 'CONFIGSPEC_NETWORK_UNAVAILABLE' }));
  });
});

describe('more devices that cannot be recreated', () => {
  const base = (devices: Json[]): Json => ({ name: 'x', version: 'vmx-15', guestId: 'otherGuest', hardware: { numCPU: 1, memoryMB: 512, device: [...defaultDevices(), ...devices] } });
  const build = (devices: Json[], opts: Partial<BuildCreateSpecInput> = {}) => {
    const r = buildCreateSpec({ config: base(devices), name: 'n', datastore: 'ds', ...opts });
    expect(createVmRequest(r.spec).problems).toEqual([]);
    return r;
  };

  test('a CD-ROM on a host drive the target lacks is emptied; one the target has is kept', () => {
    const cd = { _type: 'VirtualCdrom', key: 3000, controllerKey: 201, unitNumber: 0, backing: { _type: 'VirtualCdromAtapiBackingInfo', deviceName: '/vmfs/devices/cdrom/mpx.vmhba0:C0:T0:L0' }, connectable: { startConnected: true, allowGuestControl: true, connected: true } };
    const none = build([cd]);
    expect(none.warnings.map((w) => w.code)).toEqual(['CDROM_HOST_DEVICE_UNAVAILABLE']);
    expect(devicesOf(none.spec)[0]!.backing._type).toBe('VirtualCdromRemotePassthroughBackingInfo');
    const has = build([cd], { configTarget: { cdRom: sampleConfigTarget().cdRom } as never });
    expect(has.warnings).toEqual([]);
    expect(devicesOf(has.spec)[0]!.backing).toEqual(cd.backing);
  });

  test('floppies: host drive and missing image dropped; an existing image kept', () => {
    const fl = (key: number, backing: Json) => ({ _type: 'VirtualFloppy', key, controllerKey: 400, unitNumber: key - 8000, backing });
    const r = build([fl(8000, { _type: 'VirtualFloppyDeviceBackingInfo', deviceName: '/dev/fd0' }), fl(8001, { _type: 'VirtualFloppyImageBackingInfo', fileName: '[ds] a.flp' }), fl(8002, { _type: 'VirtualFloppyImageBackingInfo', fileName: '[ds] b.flp' })], {
      fileExists: (p) => p === '[ds] b.flp',
    });
    expect(r.warnings.map((w) => [w.code, w.deviceKey])).toEqual([['DEVICE_DROPPED_HOST_BACKING', 8000], ['DEVICE_DROPPED_MISSING_FILE', 8001]]);
    expect(devicesOf(r.spec).map((d) => d.key)).toEqual([-1]);
  });

  test('SR-IOV NICs, NVDIMMs and their controller, unknown device and backing types are dropped; a device on a dropped controller too', () => {
    const r = build([
      { _type: 'VirtualSriovEthernetCard', key: 4000, controllerKey: 100, unitNumber: 7, addressType: 'generated', backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' } },
      { _type: 'VirtualNVDIMMController', key: 27000, controllerKey: 100, unitNumber: 27, busNumber: 0 },
      { _type: 'VirtualNVDIMM', key: 27001, controllerKey: 27000, unitNumber: 0, capacityInMB: 1024 },
      { _type: 'VirtualFutureController', key: 50000, controllerKey: 100, unitNumber: 40, busNumber: 0 },
      { _type: 'VirtualWDT', key: 50001, controllerKey: 50000, unitNumber: 0, runOnBoot: false },
      { _type: 'VirtualSerialPort', key: 9000, controllerKey: 400, unitNumber: 0, yieldOnPoll: true, backing: { _type: 'VirtualSerialPortFutureBackingInfo', x: 1 } },
    ]);
    expect(r.warnings.map((w) => [w.code, w.deviceKey])).toEqual([
      ['DEVICE_DROPPED_PASSTHROUGH', 4000],
      ['DEVICE_DROPPED_NVDIMM', 27000],
      ['DEVICE_DROPPED_NVDIMM', 27001],
      ['DEVICE_DROPPED_UNKNOWN_TYPE', 50000],
      ['DEVICE_DROPPED_UNKNOWN_TYPE', 9000],
      ['DEVICE_DROPPED_CONTROLLER', 50001],
    ]);
    expect(r.spec.deviceChange).toEqual([]);
  });

  test('a disk on a controller that cannot be recreated is refused, never dropped', () => {
    const e = (() => {
      try {
        build([
          { _type: 'VirtualFutureController', key: 50000, controllerKey: 100, unitNumber: 40, busNumber: 0 },
          { _type: 'VirtualDisk', key: 2000, controllerKey: 50000, unitNumber: 0, capacityInKB: 1024, backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[a] b.vmdk', diskMode: 'persistent' } },
        ]);
      } catch (err) {
        return err as ConfigSpecError;
      }
      throw new Error('accepted');
    })();
    expect(e).toBeInstanceOf(ConfigSpecError);
    expect(e.code).toBe('CONFIGSPEC_UNSUPPORTED_DISK');
  });

  test('fields a newer vSphere saved are left out with a warning; numbers saved as strings are numbers again', () => {
    const r = build([
      { _type: 'VirtualMachineVideoCard', key: 500, controllerKey: 100, unitNumber: '0', videoRamSizeInKB: '8192', futureField: true, backing: undefined },
    ]);
    expect(devicesOf(r.spec)[0]).toEqual({ _type: 'VirtualMachineVideoCard', key: -1, controllerKey: 100, unitNumber: 0, videoRamSizeInKB: 8192 });
    expect(r.warnings.map((w) => [w.code, w.message])).toEqual([['FIELD_DROPPED', 'spec.deviceChange[0].device.futureField is not in the shipped vim25 schema']]);
  });

  test('encrypted VM, vApp, FT/replication and NPIV: left out with warnings', () => {
    const r = buildCreateSpec({
      config: {
        ...base([
          { _type: 'ParaVirtualSCSIController', key: 1000, controllerKey: 100, unitNumber: 3, busNumber: 0, sharedBus: 'noSharing' },
          { _type: 'VirtualDisk', key: 2000, controllerKey: 1000, unitNumber: 0, capacityInKB: 1024, backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[a] b.vmdk', diskMode: 'persistent', keyId: { keyId: 'k', providerId: { id: 'kms' } } } },
        ]),
        keyId: { keyId: 'k', providerId: { id: 'kms' } },
        vAppConfig: { product: [] },
        repConfig: { generation: 1 },
        npivNodeWorldWideName: [123],
      },
      name: 'n',
      datastore: 'ds',
    });
    expect(r.warnings.map((w) => w.code)).toEqual(['VAPP_CONFIG_DROPPED', 'FT_OR_REPLICATION_DROPPED', 'ENCRYPTION_DROPPED', 'NPIV_DROPPED']);
    expect(createVmRequest(r.spec).problems).toEqual([]);
    expect(createVmRequest(r.spec).body).not.toContain('keyId');
  });
});

describe('the backup fixtures\' sample config', () => {
  test('builds a valid spec: PVSCSI, disks, vmxnet3, video card; defaults left out', () => {
    const config = sampleVmConfig('vm-1', [{ key: 2000, capacityBytes: 4 * 2 ** 20 }, { key: 2001, capacityBytes: 3 * 2 ** 20 + 1536 }]);
    const r = buildCreateSpec({ config, name: 'vm-1-restored', datastore: 'datastore2' });
    expect(createVmRequest(r.spec).problems).toEqual([]);
    expect(devicesOf(r.spec).map((d) => d._type)).toEqual(['VirtualMachineVideoCard', 'ParaVirtualSCSIController', 'VirtualCdrom', 'VirtualVmxnet3', 'VirtualDisk', 'VirtualDisk']);
    expect(r.disks.map((d) => [d.savedKey, d.capacityBytes, d.controllerType, d.unitNumber])).toEqual([[2000, 4 * 2 ** 20, 'ParaVirtualSCSIController', 0], [2001, 3 * 2 ** 20 + 1536, 'ParaVirtualSCSIController', 1]]);
    expect(r.spec.firmware).toBe('efi');
    expect(r.spec.changeTrackingEnabled).toBe(false);
    expect(r.spec.extraConfig).toEqual([{ key: 'svga.present', value: 'TRUE' }]);
    expect(r.droppedExtraConfig).toEqual(['ctkEnabled', 'scsi0:0.ctkEnabled', 'scsi0:1.ctkEnabled']);
    expect(r.warnings).toEqual([]);
  });
});

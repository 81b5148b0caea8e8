// Saved configs (VirtualMachineConfigInfo as JSON in the backup) and a
// config target for the ConfigSpec builder's tests and demos.
import { serializeRequest } from '../vsphere/codec';
import { vim25Schema } from '../vsphere/schema';
import { checkRequest } from '../vsphere/schema-check';
import type { ConfigTarget, VirtualMachineConfigSpec } from '../vsphere/types';

type Json = Record<string, unknown>;

/** The default devices every saved config carries (left out of every spec). */
export function defaultDevices(): Json[] {
  return [
    { _type: 'VirtualIDEController', key: 200, busNumber: 0, device: [3000] },
    { _type: 'VirtualIDEController', key: 201, busNumber: 1, device: [] },
    { _type: 'VirtualPS2Controller', key: 300, busNumber: 0, device: [600, 700] },
    { _type: 'VirtualPCIController', key: 100, busNumber: 0, device: [1000, 4000, 12000] },
    { _type: 'VirtualSIOController', key: 400, busNumber: 0, device: [] },
    { _type: 'VirtualKeyboard', key: 600, controllerKey: 300, unitNumber: 0 },
    { _type: 'VirtualPointingDevice', key: 700, controllerKey: 300, unitNumber: 1, backing: { _type: 'VirtualPointingDeviceDeviceBackingInfo', deviceName: '', hostPointingDevice: 'autodetect' } },
    { _type: 'VirtualMachineVMCIDevice', key: 12000, controllerKey: 100, unitNumber: 17, id: 1234567, allowUnrestrictedCommunication: false },
  ];
}

/** The saved config behind the MISSION's worked example (R5). */
export function workedExampleConfig(): Json {
  return {
    name: 'My Old VM',
    guestFullName: 'Microsoft Windows Server 2003, Standard Edition (32-bit)',
    version: 'vmx-04',
    uuid: '564d1a2b-3c4d-5e6f-7081-92a3b4c5d6e7',
    instanceUuid: '5012aabb-ccdd-eeff-0011-223344556677',
    template: false,
    guestId: 'winNetStandardGuest',
    files: { vmPathName: '[plat004-local] My Old VM/My Old VM.vmx', snapshotDirectory: '[plat004-local] My Old VM/', logDirectory: '[plat004-local] My Old VM/' },
    tools: { toolsVersion: 7302, afterPowerOn: true, afterResume: true, beforeGuestStandby: true, beforeGuestShutdown: true, beforeGuestReboot: true },
    flags: { snapshotPowerOffBehavior: 'powerOff' },
    defaultPowerOps: { powerOffType: 'preset', suspendType: 'preset', resetType: 'preset', standbyAction: 'powerOnSuspend' },
    hardware: {
      numCPU: 1,
      memoryMB: 256,
      device: [
        ...defaultDevices(),
        {
          _type: 'VirtualCdrom',
          key: 3000,
          deviceInfo: { label: 'CD/DVD drive 1', summary: 'Remote device' },
          controllerKey: 200,
          unitNumber: 0,
          backing: { _type: 'VirtualCdromRemotePassthroughBackingInfo', deviceName: '', exclusive: false },
        },
        { _type: 'VirtualLsiLogicController', key: 1000, deviceInfo: { label: 'SCSI controller 0', summary: 'LSI Logic' }, busNumber: 0, sharedBus: 'noSharing', device: [2000, 2001] },
        {
          _type: 'VirtualPCNet32',
          key: 4000,
          deviceInfo: { label: 'Network adapter 1', summary: 'Virtual Machine Network' },
          backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'Virtual Machine Network' },
          connectable: { startConnected: true, allowGuestControl: true, connected: true, status: 'ok' },
          addressType: 'generated',
          macAddress: '00:50:56:9a:00:48',
          wakeOnLanEnabled: true,
        },
        {
          _type: 'VirtualDisk',
          key: 2000,
          deviceInfo: { label: 'Hard disk 1', summary: '524,288 KB' },
          controllerKey: 1000,
          unitNumber: 0,
          capacityInKB: 524288,
          backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[plat004-local] My Old VM/My Old VM.vmdk', diskMode: 'persistent', uuid: '6000C290-1111-2222-3333-444455556666' },
        },
        {
          _type: 'VirtualDisk',
          key: 2001,
          deviceInfo: { label: 'Hard disk 2', summary: '131,072 KB' },
          controllerKey: 1000,
          unitNumber: 1,
          capacityInKB: 131072,
          backing: {
            _type: 'VirtualDiskFlatVer2BackingInfo',
            fileName: '[plat004-local] My Old VM/My Old VM_1-000001.vmdk',
            diskMode: 'persistent',
            parent: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[plat004-local] My Old VM/My Old VM_1.vmdk', diskMode: 'persistent' },
          },
        },
      ],
    },
    cpuAllocation: { reservation: 0, shares: { shares: 100, level: 'normal' } },
    memoryAllocation: { reservation: 0, shares: { shares: 100, level: 'normal' } },
  };
}

/** Temporary keys of the worked example, per saved key of workedExampleConfig. */
export const WORKED_EXAMPLE_TEMP_KEYS: Record<number, number> = { 3000: -42, 1000: -44, 4000: -48, 2000: -1000000, 2001: -100 };

/** The worked example of the MISSION (R5), as a VirtualMachineConfigSpec. */
export function workedExampleSpec(): Json {
  const disk = (key: number, unitNumber: number, capacityInKB: number) => ({
    operation: 'add',
    fileOperation: 'create',
    device: {
      _type: 'VirtualDisk',
      key,
      controllerKey: -44,
      unitNumber,
      capacityInKB,
      backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[plat004-local]', diskMode: 'persistent', parent: null },
    },
  });
  return {
    name: 'My New VM',
    version: 'vmx-04',
    guestId: 'winNetStandardGuest',
    files: { vmPathName: '[plat004-local]' },
    tools: { afterPowerOn: true, afterResume: true, beforeGuestStandby: true, beforeGuestShutdown: true, beforeGuestReboot: true },
    flags: { snapshotPowerOffBehavior: 'powerOff' },
    powerOpInfo: { powerOffType: 'preset', suspendType: 'preset', resetType: 'preset', standbyAction: 'powerOnSuspend' },
    numCPUs: 1,
    memoryMB: 256,
    deviceChange: [
      {
        operation: 'add',
        device: {
          _type: 'VirtualCdrom',
          key: -42,
          controllerKey: 200,
          unitNumber: 0,
          backing: { _type: 'VirtualCdromRemotePassthroughBackingInfo', deviceName: '', exclusive: false },
        },
      },
      { operation: 'add', device: { _type: 'VirtualLsiLogicController', key: -44, busNumber: 0, sharedBus: 'noSharing' } },
      {
        operation: 'add',
        device: {
          _type: 'VirtualPCNet32',
          key: -48,
          backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'Virtual Machine Network' },
          connectable: { startConnected: true, allowGuestControl: true, connected: true },
          addressType: 'generated',
          wakeOnLanEnabled: true,
        },
      },
      disk(-1000000, 0, 524288),
      disk(-100, 1, 131072),
    ],
    cpuAllocation: { reservation: 0, shares: { shares: 100, level: 'normal' } },
    memoryAllocation: { reservation: 0, shares: { shares: 100, level: 'normal' } },
  };
}

/**
 * A modern VM with what cannot be recreated: EFI with secure boot, LSI Logic,
 * LSI SAS, ParaVirtual and NVMe controllers, a SATA CD-ROM on a missing ISO,
 * a USB controller with a host USB device, a serial port on a host device,
 * a parallel port, a PCI passthrough device, a vTPM, CPUID masks, affinity,
 * a boot order and old-VM extraConfig keys.
 */
export function richConfig(): Json {
  const disk = (key: number, controllerKey: number, unitNumber: number, gb: number, extra: Json = {}) => ({
    _type: 'VirtualDisk',
    key,
    deviceInfo: { label: `Hard disk ${key - 1999}`, summary: `${gb} GB` },
    controllerKey,
    unitNumber,
    capacityInKB: gb * 1024 * 1024,
    capacityInBytes: gb * 1024 * 1024 * 1024,
    shares: { shares: 1000, level: 'normal' },
    storageIOAllocation: { limit: -1, shares: { shares: 1000, level: 'normal' }, reservation: 0 },
    diskObjectId: `1-${key}`,
    backing: {
      _type: 'VirtualDiskFlatVer2BackingInfo',
      fileName: `[ssd1] rich/rich_${key}.vmdk`,
      datastore: { type: 'Datastore', value: 'datastore-11' },
      diskMode: 'persistent',
      split: false,
      writeThrough: false,
      thinProvisioned: true,
      uuid: `6000C29${key}-aaaa-bbbb-cccc-ddddeeeeffff`,
      contentId: 'c0ffee',
      changeId: '52 3c 8a 1f/12',
      parent: null,
      digestEnabled: false,
      sharing: 'sharingNone',
      ...extra,
    },
  });
  const scsi = (type: string, key: number, bus: number, unit: number, devs: number[]) => ({
    _type: type,
    key,
    deviceInfo: { label: `SCSI controller ${bus}`, summary: type },
    slotInfo: { _type: 'VirtualDevicePciBusSlotInfo', pciSlotNumber: 160 + bus },
    controllerKey: 100,
    unitNumber: unit,
    busNumber: bus,
    device: devs,
    hotAddRemove: true,
    sharedBus: 'noSharing',
    scsiCtlrUnitNumber: 7,
  });
  return {
    changeVersion: '2026-11-20T10:00:00.000Z',
    modified: '1970-01-01T00:00:00Z',
    name: 'rich',
    guestFullName: 'Microsoft Windows Server 2022 (64-bit)',
    version: 'vmx-19',
    uuid: '4212f00d-0000-1111-2222-333344445555',
    instanceUuid: '5012f00d-6666-7777-8888-9999aaaabbbb',
    template: false,
    guestId: 'windows2019srvNext_64Guest',
    alternateGuestName: '',
    annotation: 'restored from backup',
    firmware: 'efi',
    files: { vmPathName: '[ssd1] rich/rich.vmx', snapshotDirectory: '[ssd1] rich/', suspendDirectory: '[ssd1] rich/', logDirectory: '[ssd1] rich/' },
    tools: { toolsVersion: 12352, toolsInstallType: 'guestToolsTypeMSI', afterPowerOn: true, afterResume: true, beforeGuestStandby: true, beforeGuestShutdown: true, beforeGuestReboot: true, toolsUpgradePolicy: 'manual', syncTimeWithHostAllowed: true, syncTimeWithHost: false, lastInstallInfo: { counter: 1 } },
    flags: { enableLogging: true, snapshotPowerOffBehavior: 'powerOff', diskUuidEnabled: true, virtualMmuUsage: 'automatic', vbsEnabled: true, vvtdEnabled: true, faultToleranceType: 'unset' },
    defaultPowerOps: { powerOffType: 'soft', suspendType: 'hard', resetType: 'soft', defaultPowerOffType: 'soft', defaultSuspendType: 'hard', defaultResetType: 'soft', standbyAction: 'checkpoint' },
    hardware: {
      numCPU: 8,
      numCoresPerSocket: 4,
      memoryMB: 16384,
      virtualICH7MPresent: false,
      virtualSMCPresent: false,
      device: [
        ...defaultDevices(),
        { _type: 'VirtualMachineVideoCard', key: 500, controllerKey: 100, unitNumber: 0, videoRamSizeInKB: 8192, numDisplays: 1, useAutoDetect: false, enable3DSupport: false, use3dRenderer: 'automatic', graphicsMemorySizeInKB: 262144 },
        scsi('VirtualLsiLogicController', 1000, 0, 3, [2000]),
        scsi('VirtualLsiLogicSASController', 1001, 1, 4, [2001]),
        scsi('ParaVirtualSCSIController', 1002, 2, 5, [2002, 2003]),
        { _type: 'VirtualNVMEController', key: 31000, controllerKey: 100, unitNumber: 30, busNumber: 0, device: [2004] },
        { _type: 'VirtualAHCIController', key: 15000, controllerKey: 100, unitNumber: 24, busNumber: 0, device: [16000] },
        disk(2000, 1000, 0, 40),
        disk(2001, 1001, 0, 100),
        disk(2002, 1002, 0, 200, { thinProvisioned: false, eagerlyScrub: true }),
        disk(2003, 1002, 1, 10, { diskMode: 'independent_persistent' }),
        disk(2004, 31000, 0, 60),
        {
          _type: 'VirtualCdrom',
          key: 16000,
          controllerKey: 15000,
          unitNumber: 0,
          backing: { _type: 'VirtualCdromIsoBackingInfo', fileName: '[iso] windows/en_server_2022.iso', datastore: { type: 'Datastore', value: 'datastore-99' } },
          connectable: { startConnected: true, allowGuestControl: true, connected: false, status: 'untried' },
        },
        {
          _type: 'VirtualVmxnet3',
          key: 4000,
          controllerKey: 100,
          unitNumber: 7,
          slotInfo: { _type: 'VirtualDevicePciBusSlotInfo', pciSlotNumber: 192 },
          backing: { _type: 'VirtualEthernetCardDistributedVirtualPortBackingInfo', port: { switchUuid: '50 2a 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', portgroupKey: 'dvportgroup-21', portKey: '17', connectionCookie: 123456 } },
          connectable: { migrateConnect: 'unset', startConnected: true, allowGuestControl: true, connected: true, status: 'ok' },
          addressType: 'assigned',
          macAddress: '00:50:56:9a:aa:01',
          wakeOnLanEnabled: true,
          externalId: 'nsx-port-1',
          uptCompatibilityEnabled: true,
        },
        {
          _type: 'VirtualE1000e',
          key: 4001,
          controllerKey: 100,
          unitNumber: 8,
          backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'Backup LAN', network: { type: 'Network', value: 'network-8' } },
          connectable: { startConnected: true, allowGuestControl: true, connected: true },
          addressType: 'manual',
          macAddress: '00:50:56:3F:00:02',
          wakeOnLanEnabled: false,
        },
        { _type: 'VirtualUSBXHCIController', key: 14000, controllerKey: 100, unitNumber: 23, busNumber: 0, device: [14100], autoConnectDevices: false },
        {
          _type: 'VirtualUSB',
          key: 14100,
          controllerKey: 14000,
          unitNumber: 0,
          backing: { _type: 'VirtualUSBUSBBackingInfo', deviceName: 'path:1/0/3 version:2' },
          connectable: { startConnected: true, allowGuestControl: false, connected: true },
          connected: true,
          vendor: 1921,
          product: 21889,
        },
        {
          _type: 'VirtualSerialPort',
          key: 9000,
          controllerKey: 400,
          unitNumber: 0,
          yieldOnPoll: true,
          backing: { _type: 'VirtualSerialPortDeviceBackingInfo', deviceName: '/dev/char/serial/uart0' },
          connectable: { startConnected: true, allowGuestControl: true, connected: true },
        },
        {
          _type: 'VirtualSerialPort',
          key: 9001,
          controllerKey: 400,
          unitNumber: 1,
          yieldOnPoll: true,
          backing: { _type: 'VirtualSerialPortFileBackingInfo', fileName: '[ssd1] rich/serial.log', datastore: { type: 'Datastore', value: 'datastore-11' } },
          connectable: { startConnected: true, allowGuestControl: true, connected: true },
        },
        {
          _type: 'VirtualParallelPort',
          key: 10000,
          controllerKey: 400,
          unitNumber: 0,
          backing: { _type: 'VirtualParallelPortDeviceBackingInfo', deviceName: '/dev/char/parport0' },
          connectable: { startConnected: false, allowGuestControl: true, connected: false },
        },
        {
          _type: 'VirtualPCIPassthrough',
          key: 13000,
          controllerKey: 100,
          unitNumber: 18,
          backing: { _type: 'VirtualPCIPassthroughDeviceBackingInfo', deviceName: 'GPU', id: '0000:3b:00.0', deviceId: '1eb8', systemId: '5f3a', vendorId: 4318 },
        },
        { _type: 'VirtualTPM', key: 11000, controllerKey: 100, unitNumber: 20 },
      ],
    },
    cpuAllocation: { reservation: 1000, expandableReservation: false, limit: -1, shares: { shares: 8000, level: 'normal' }, overheadLimit: 100 },
    memoryAllocation: { reservation: 16384, expandableReservation: false, limit: -1, shares: { shares: 163840, level: 'normal' } },
    memoryReservationLockedToMax: true,
    memoryHotAddEnabled: false,
    cpuHotAddEnabled: true,
    cpuHotRemoveEnabled: false,
    cpuAffinity: { affinitySet: [0, 1] },
    extraConfig: [
      { _type: 'OptionValue', key: 'nvram', value: 'rich.nvram' },
      { key: 'sched.swap.derivedName', value: '/vmfs/volumes/aaa/rich/rich-1234.vswp' },
      { key: 'uuid.bios', value: '42 12 f0 0d 00 00 11 11-22 22 33 33 44 44 55 55' },
      { key: 'uuid.location', value: '56 4d ...' },
      { key: 'vc.uuid', value: '50 12 f0 0d ...' },
      { key: 'ctkEnabled', value: 'TRUE' },
      { key: 'scsi0:0.ctkEnabled', value: 'TRUE' },
      { key: 'ethernet0.generatedAddress', value: '00:50:56:9a:aa:01' },
      { key: 'hostCPUID.0', value: '0000001b756e65476c65746e49656e69' },
      { key: 'disk.EnableUUID', value: 'TRUE' },
      { key: 'svga.present', value: 'TRUE' },
      { key: 'guestinfo.role', value: 'web' },
      { key: 'pciBridge0.present', value: 'TRUE' },
    ],
    cpuFeatureMask: [
      { _type: 'HostCpuIdInfo', level: 1, vendor: 'intel', ecx: '---- ---- ---- ---- ---- ---- ---- --0-' },
      { _type: 'HostCpuIdInfo', level: -2147483647, edx: '---- 0--- ---- ---- ---- ---- ---- ----' },
    ],
    bootOptions: {
      bootDelay: 0,
      enterBIOSSetup: false,
      efiSecureBootEnabled: true,
      bootRetryEnabled: false,
      bootRetryDelay: 10000,
      bootOrder: [{ _type: 'VirtualMachineBootOptionsBootableDiskDevice', deviceKey: 2000 }],
      networkBootProtocol: 'ipv4',
    },
    nestedHVEnabled: true,
    vPMCEnabled: false,
    changeTrackingEnabled: true,
    swapPlacement: 'inherit',
    maxMksConnections: 40,
    migrateEncryption: 'opportunistic',
    managedBy: { extensionKey: 'com.vmware.vcDr', type: 'placeholderVm' },
    datastoreUrl: [{ name: 'ssd1', url: '/vmfs/volumes/aaa' }],
    initialOverhead: { initialMemoryReservation: 1, initialSwapReservation: 2 },
    vmxConfigChecksum: 'AAAA',
    sevEnabled: false,
  };
}

/** A config target with datastores, networks, a DVS portgroup and free and used LUNs. */
export function sampleConfigTarget(): ConfigTarget {
  const lun = (canonicalName: string, uuid: string, capacityKB: number, vm?: Array<{ type: string; value: string }>) => ({
    _type: 'VirtualMachineScsiDiskDeviceInfo',
    name: `/vmfs/devices/disks/${canonicalName}`,
    capacity: capacityKB,
    ...(vm ? { vm } : {}),
    disk: { _type: 'HostScsiDisk', canonicalName, uuid, displayName: `Disk ${canonicalName}`, lunType: 'disk' },
    transportHint: 'fc',
  });
  return {
    _type: 'ConfigTarget',
    numCpus: 64,
    numCpuCores: 32,
    numNumaNodes: 2,
    datastore: [
      { name: 'ssd1', datastore: { datastore: { type: 'Datastore', value: 'datastore-11' }, name: 'ssd1', freeSpace: 1e12 } },
      { name: 'nvme2', datastore: { datastore: { type: 'Datastore', value: 'datastore-12' }, name: 'nvme2', freeSpace: 1e12 } },
      { name: 'plat004-local', datastore: { datastore: { type: 'Datastore', value: 'datastore-13' }, name: 'plat004-local' } },
    ],
    network: [
      { name: 'VM Network', network: { name: 'VM Network', network: { type: 'Network', value: 'network-1' } } },
      { name: 'Backup LAN', network: { name: 'Backup LAN', network: { type: 'Network', value: 'network-8' } } },
      { name: 'Virtual Machine Network', network: { name: 'Virtual Machine Network', network: { type: 'Network', value: 'network-2' } } },
    ],
    distributedVirtualPortgroup: [
      { switchName: 'dvs0', switchUuid: '50 2a 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', portgroupName: 'Prod', portgroupKey: 'dvportgroup-21', portgroupType: 'earlyBinding', uplinkPortgroup: false, portgroup: { type: 'DistributedVirtualPortgroup', value: 'dvportgroup-21' } },
      { switchName: 'dvs0', switchUuid: '50 2a 11 22 33 44 55 66-77 88 99 aa bb cc dd ee', portgroupName: 'DR', portgroupKey: 'dvportgroup-30', portgroupType: 'earlyBinding', uplinkPortgroup: false, portgroup: { type: 'DistributedVirtualPortgroup', value: 'dvportgroup-30' } },
    ],
    cdRom: [{ _type: 'VirtualMachineCdromInfo', name: '/vmfs/devices/cdrom/mpx.vmhba0:C0:T0:L0' }],
    scsiDisk: [
      lun('naa.600a0980000000000000000000000001', '0200000000600a0980000000000000000000000001', 10 * 1024 * 1024),
      lun('naa.600a0980000000000000000000000002', '0200010000600a0980000000000000000000000002', 20 * 1024 * 1024),
      lun('naa.600a0980000000000000000000000003', '0200020000600a0980000000000000000000000003', 20 * 1024 * 1024, [{ type: 'VirtualMachine', value: 'vm-7' }]),
      lun('naa.600a0980000000000000000000000004', '0200030000600a0980000000000000000000000004', 50 * 1024 * 1024),
    ],
  } as ConfigTarget;
}

/** CreateVM_Task's SOAP body for a spec, with the schema check's problems (empty when it conforms). */
export function createVmRequest(spec: VirtualMachineConfigSpec): { body: string; problems: string[] } {
  const schema = vim25Schema();
  const body = serializeRequest(schema, 'CreateVM_Task', {
    _this: { type: 'Folder', value: 'group-v3' },
    config: spec,
    pool: { type: 'ResourcePool', value: 'resgroup-8' },
    host: { type: 'HostSystem', value: 'host-10' },
  });
  return { body, problems: checkRequest(body, schema) };
}

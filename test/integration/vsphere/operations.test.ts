// VM operations against vcsim: power (guest shutdown then hard off),
// snapshots with real delta disks (create -> current file is the delta ->
// revert -> remove, CID mismatch, by name, remove all), reconfigure (CBT,
// device edits), CreateVM_Task with disks and an RDM, Destroy_Task.
import fs from 'node:fs';
import path from 'node:path';
import {
  VSphereClient,
  configTargetLuns,
  createSnapshot,
  createVm,
  destroyVm,
  findResourcePool,
  findSnapshotByName,
  findFolder,
  findVm,
  getPowerState,
  getVmConfig,
  getVmInfo,
  layoutDiskChains,
  listSnapshots,
  powerOff,
  powerOn,
  queryConfigTarget,
  reconfigureVm,
  removeAllSnapshots,
  removeSnapshot,
  removeSnapshotByName,
  revertToSnapshot,
  revertToSnapshotByName,
  setChangeTracking,
  type MoRef,
  type VirtualMachineConfigSpec,
} from '../../../apps/core/src/vsphere';
import { clientOptions, expectAllRequestsConform, startVcsim, type Vcsim } from '../../support/vcsim';

let sim: Vcsim;
let c: VSphereClient;
beforeAll(async () => {
  sim = await startVcsim(['-luns', '2']);
  c = await VSphereClient.connect(clientOptions(sim));
}, 180_000);
afterAll(async () => {
  await c?.close();
  await sim?.stop();
});
afterEach(async () => {
  await sim.clearFaults();
});

const fast = { pollMs: 20, timeoutMs: 30_000 };

function descriptor(sim: Vcsim, dsPath: string) {
  const file = sim.localPath(dsPath);
  const text = fs.readFileSync(file, 'utf8');
  const get = (k: string) => new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm').exec(text)?.[1];
  const extent = /^RW (\d+) FLAT "([^"]+)" 0$/m.exec(text)!;
  return { file, CID: get('CID'), parentCID: get('parentCID'), flat: path.join(path.dirname(file), extent[2]!), sectors: Number(extent[1]) };
}
function writeAt(file: string, offset: number, s: string) {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from(s), 0, s.length, offset);
  fs.closeSync(fd);
}
/** What a SAN-mode VDDK write does to the base behind a snapshot: data and a new CID. */
function writeBehindSnapshot(file: string, flat: string) {
  writeAt(flat, 2 * 1024 * 1024, 'SAN-WRITE');
  const text = fs.readFileSync(file, 'utf8').replace(/^CID=.*$/m, 'CID=0badc1d0');
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

describe('power', () => {
  let vm: MoRef;
  beforeAll(async () => {
    vm = await findVm(c, { inventoryPath: 'DC0/vm/DC0_C0_RP0_VM0' });
  });

  test('guest shutdown first; then on; hard off; idempotent when already in the state', async () => {
    await sim.clearCalls();
    expect(await powerOff(c, vm, { guestPollMs: 20, ...fast })).toBe('guestShutdown');
    expect(await getPowerState(c, vm)).toBe('poweredOff');
    expect((await sim.calls('ShutdownGuest')).length).toBe(1);
    expect((await sim.calls('PowerOffVM_Task')).length).toBe(0);
    expect(await powerOff(c, vm)).toBe('alreadyOff');

    await powerOn(c, vm, fast);
    expect(await getPowerState(c, vm)).toBe('poweredOn');
    await powerOn(c, vm, fast);
    expect((await sim.calls('PowerOnVM_Task')).length).toBe(1);

    expect(await powerOff(c, vm, { guestShutdown: false, ...fast })).toBe('hardOff');
    expect(await getPowerState(c, vm)).toBe('poweredOff');
    await powerOn(c, vm, fast);
  });

  test('guest shutdown refused (no tools): hard power off, unless hard off is not allowed', async () => {
    await sim.injectFault({ method: 'ShutdownGuest', moref: vm.value, fault: 'ToolsUnavailable', count: 2 });
    await expect(powerOff(c, vm, { hardOff: false, ...fast })).rejects.toMatchObject({ code: 'VSPHERE_TOOLS_UNAVAILABLE' });
    expect(await getPowerState(c, vm)).toBe('poweredOn');
    expect(await powerOff(c, vm, fast)).toBe('hardOff');
    expect(await getPowerState(c, vm)).toBe('poweredOff');
    await powerOn(c, vm, fast);
  });
});

describe('snapshots', () => {
  let vm: MoRef;
  const base = '[LocalDS_0] DC0_H0_VM1/DC0_H0_VM1.vmdk';
  const delta1 = '[LocalDS_0] DC0_H0_VM1/DC0_H0_VM1-000001.vmdk';
  const delta2 = '[LocalDS_0] DC0_H0_VM1/DC0_H0_VM1-000002.vmdk';
  beforeAll(async () => {
    vm = await findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM1' });
  });

  test('create -> the current disk file is the delta -> revert -> remove', async () => {
    const snap = await createSnapshot(c, vm, { name: 'restore-temp', description: 'vmrestore temporary snapshot' }, fast);
    expect(snap.type).toBe('VirtualMachineSnapshot');
    let info = await getVmInfo(c, vm);
    expect(info.disks[0]).toMatchObject({ fileName: delta1, chain: [delta1, base] });
    expect(info.snapshot?.currentSnapshot).toEqual(snap);
    expect(info.snapshot?.rootSnapshotList?.[0]).toMatchObject({ name: 'restore-temp', description: 'vmrestore temporary snapshot', snapshot: snap });
    expect(fs.existsSync(sim.localPath(delta1))).toBe(true);
    expect(descriptor(sim, delta1).parentCID).toBe(descriptor(sim, base).CID);
    const chains = [...layoutDiskChains(info.layoutEx).values()];
    expect(chains[0]!.slice().sort()).toEqual([base, delta1].sort());

    writeAt(descriptor(sim, delta1).flat, 1024 * 1024, 'IN-DELTA');
    await revertToSnapshot(c, snap, fast);
    info = await getVmInfo(c, vm);
    expect(info.disks[0]!.fileName).toBe(delta1);

    await removeSnapshot(c, snap, fast);
    info = await getVmInfo(c, vm);
    expect(info.disks[0]).toMatchObject({ fileName: base, chain: [base] });
    expect(info.snapshot).toBeUndefined();
    expect(fs.existsSync(sim.localPath(delta1))).toBe(false);
  });

  test('CID mismatch: a write into the base behind the snapshot fails the remove; revert then remove works', async () => {
    const snap = await createSnapshot(c, vm, { name: 'san' }, fast);
    const b = descriptor(sim, base);
    writeBehindSnapshot(b.file, b.flat);
    await expect(removeSnapshot(c, snap, fast)).rejects.toMatchObject({
      code: 'VSPHERE_VM_CONFIG_FAULT',
      faultType: 'GenericVmConfigFault',
      message: expect.stringMatching(/^RemoveSnapshot_Task on snapshot-\d+: GenericVmConfigFault: CID mismatch:/),
    });
    expect((await getVmInfo(c, vm)).disks[0]!.fileName).toBe(delta1);
    await revertToSnapshotByName(c, vm, 'san', fast);
    expect(descriptor(sim, delta1).parentCID).toBe('0badc1d0');
    await removeSnapshotByName(c, vm, 'san', fast);
    expect((await getVmInfo(c, vm)).disks[0]!.fileName).toBe(base);
  });

  test('a tree of two: names, morefs, children; by-name lookups; remove all', async () => {
    const a = await createSnapshot(c, vm, { name: 'a' }, fast);
    const b = await createSnapshot(c, vm, { name: 'b', memory: false, quiesce: false }, fast);
    const list = await listSnapshots(c, vm);
    expect(list.current).toEqual(b);
    expect(list.roots).toHaveLength(1);
    expect(list.roots[0]).toMatchObject({ ref: a, name: 'a', depth: 0, children: [expect.objectContaining({ ref: b, name: 'b', depth: 1, children: [] })] });
    expect(list.all.map((s) => s.name)).toEqual(['a', 'b']);
    expect(await findSnapshotByName(c, vm, 'b')).toEqual(b);
    await expect(findSnapshotByName(c, vm, 'zzz')).rejects.toMatchObject({ code: 'VSPHERE_NOT_FOUND' });
    expect((await getVmInfo(c, vm)).disks[0]!.chain).toEqual([delta2, delta1, base]);

    // Reverting to a snapshot that has later ones is NotSupported in the harness.
    await expect(revertToSnapshot(c, a, fast)).rejects.toMatchObject({ code: 'VSPHERE_NOT_SUPPORTED', permanent: true });

    await createSnapshot(c, vm, { name: 'dup' }, fast);
    await createSnapshot(c, vm, { name: 'dup' }, fast);
    await expect(findSnapshotByName(c, vm, 'dup')).rejects.toThrow(/2 snapshots of vm-\d+ are named "dup"/);

    await removeAllSnapshots(c, vm, fast);
    const after = await getVmInfo(c, vm);
    expect(after.disks[0]).toMatchObject({ fileName: base, chain: [base] });
    expect((await listSnapshots(c, vm)).all).toEqual([]);
  });
});

describe('reconfigure', () => {
  let vm: MoRef;
  beforeAll(async () => {
    vm = await findVm(c, { inventoryPath: 'DC0/vm/DC0_C0_RP0_VM1' });
  });

  test('CBT on and off', async () => {
    await setChangeTracking(c, vm, true, fast);
    expect((await getVmConfig(c, vm)).changeTrackingEnabled).toBe(true);
    await setChangeTracking(c, vm, false, fast);
    expect((await getVmConfig(c, vm)).changeTrackingEnabled).toBe(false);
  });

  test('device edits: add a new disk (file created), grow it, remove it', async () => {
    const before = await getVmInfo(c, vm);
    const first = before.disks[0]!;
    await reconfigureVm(
      c,
      vm,
      {
        deviceChange: [
          {
            operation: 'add',
            fileOperation: 'create',
            device: {
              _type: 'VirtualDisk',
              key: -1,
              controllerKey: first.controllerKey,
              unitNumber: 1,
              capacityInKB: 2048,
              backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '', diskMode: 'persistent', thinProvisioned: true },
            },
          },
        ],
      },
      fast,
    );
    let disks = (await getVmInfo(c, vm)).disks;
    expect(disks).toHaveLength(2);
    const added = disks.find((d) => d.key !== first.key)!;
    expect(added.fileName).toBe('[LocalDS_0] DC0_C0_RP0_VM1/DC0_C0_RP0_VM1_1.vmdk');
    expect(fs.statSync(descriptor(sim, added.fileName).flat).size).toBe(2048 * 1024);

    const config = await getVmConfig(c, vm);
    const device = config.hardware.device!.find((d) => d.key === added.key)!;
    await reconfigureVm(c, vm, { deviceChange: [{ operation: 'edit', device: { ...device, capacityInKB: 4096, capacityInBytes: 4096 * 1024 } }] }, fast);
    disks = (await getVmInfo(c, vm)).disks;
    expect(disks.find((d) => d.key === added.key)!.capacityInBytes).toBe(4096 * 1024);

    await reconfigureVm(c, vm, { deviceChange: [{ operation: 'remove', device }] }, fast);
    expect((await getVmInfo(c, vm)).disks.map((d) => d.key)).toEqual([first.key]);
  });

  test('a spec the schema refuses is never sent: VSPHERE_SCHEMA_VIOLATION', async () => {
    await sim.clearCalls();
    const nic = { _type: 'VirtualE1000', key: -1, connectable: { startConnected: true, connected: true } }; // allowGuestControl is required
    await expect(reconfigureVm(c, vm, { deviceChange: [{ operation: 'add', device: nic }] }, fast)).rejects.toMatchObject({
      code: 'VSPHERE_SCHEMA_VIOLATION',
      permanent: true,
      message: expect.stringContaining('VirtualDeviceConnectInfo requires <allowGuestControl>'),
    });
    await expect(reconfigureVm(c, vm, { deviceChange: [{ operation: 'add', device: { ...nic, colour: 'red' } }] }, fast)).rejects.toMatchObject({
      code: 'VSPHERE_SCHEMA_VIOLATION',
      message: expect.stringContaining('VirtualE1000 has no field "colour"'),
    });
    expect(await sim.calls('ReconfigVM_Task')).toEqual([]);
  });
});

describe('CreateVM_Task', () => {
  let folder: MoRef;
  let pool: MoRef;
  beforeAll(async () => {
    folder = await findFolder(c, 'DC0/vm');
    pool = await findResourcePool(c, 'DC0/host/DC0_H0/Resources');
  });

  const disk = (key: number, unit: number, kb: number) => ({
    operation: 'add' as const,
    fileOperation: 'create' as const,
    device: {
      _type: 'VirtualDisk',
      key,
      controllerKey: -44,
      unitNumber: unit,
      capacityInKB: kb,
      backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '', diskMode: 'persistent', parent: null },
    },
  });

  test('the MISSION R5 example spec: VM with cdrom, SCSI controller, NIC and two disks (files created); then destroy', async () => {
    const spec: VirtualMachineConfigSpec = {
      name: 'My New VM',
      version: 'vmx-04',
      guestId: 'winNetStandardGuest',
      files: { vmPathName: '[LocalDS_0]' },
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
            backing: { _type: 'VirtualCdromRemotePassthroughBackingInfo', deviceName: '', exclusive: false },
            controllerKey: 200,
            unitNumber: 0,
          },
        },
        { operation: 'add', device: { _type: 'VirtualLsiLogicController', key: -44, busNumber: 0, sharedBus: 'noSharing' } },
        {
          operation: 'add',
          device: {
            _type: 'VirtualPCNet32',
            key: -48,
            backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' },
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
    const created = await createVm(c, { folder, config: spec, pool }, fast);
    expect(created.type).toBe('VirtualMachine');
    const info = await getVmInfo(c, created);
    expect(info.name).toBe('My New VM');
    expect(info.disks.map((d) => d.fileName)).toEqual(['[LocalDS_0] My New VM/My New VM.vmdk', '[LocalDS_0] My New VM/My New VM_1.vmdk']);
    expect(info.disks.map((d) => d.capacityInBytes)).toEqual([524288 * 1024, 131072 * 1024]);
    for (const d of info.disks) expect(fs.statSync(descriptor(sim, d.fileName).flat).size).toBe(d.capacityInBytes);
    const types = info.config.hardware.device!.map((d) => d._type);
    expect(types).toEqual(expect.arrayContaining(['VirtualCdrom', 'VirtualLsiLogicController', 'VirtualPCNet32', 'VirtualDisk']));
    expect(await findVm(c, { inventoryPath: 'DC0/vm/My New VM' })).toEqual(created);

    await destroyVm(c, created, fast);
    await expect(findVm(c, { moref: created.value })).rejects.toMatchObject({ code: 'VSPHERE_NOT_FOUND' });
  });

  test('an RDM disk from the config target LUN (MISSION R4); the host\'s uuid is refused', async () => {
    const vm0 = await findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
    const [lun] = configTargetLuns(await queryConfigTarget(c, vm0));
    const rdmSpec = (name: string, lunUuid: string): VirtualMachineConfigSpec => ({
      name,
      guestId: 'otherGuest',
      files: { vmPathName: '[LocalDS_0]' },
      deviceChange: [
        { operation: 'add', device: { _type: 'VirtualLsiLogicController', key: -44, busNumber: 0, sharedBus: 'noSharing' } },
        disk(-100, 0, 4096),
        {
          operation: 'add',
          fileOperation: 'create',
          device: {
            _type: 'VirtualDisk',
            key: -101,
            controllerKey: -44,
            unitNumber: 1,
            capacityInKB: lun!.capacityInKB!,
            backing: { _type: 'VirtualDiskRawDiskMappingVer1BackingInfo', fileName: '', deviceName: lun!.deviceName, lunUuid, compatibilityMode: 'physicalMode', diskMode: '' },
          },
        },
      ],
    });
    const hostUuid = `0100${lun!.lunUuid.slice(4)}`;
    await expect(createVm(c, { folder, config: rdmSpec('rdm-bad', hostUuid), pool }, fast)).rejects.toMatchObject({ code: 'VSPHERE_INVALID_DEVICE_SPEC', permanent: true });
    const created = await createVm(c, { folder, config: rdmSpec('rdm-ok', lun!.lunUuid), pool }, fast);
    const info = await getVmInfo(c, created);
    const rdm = info.disks.find((d) => d.rdm)!;
    expect(rdm).toMatchObject({ backingType: 'VirtualDiskRawDiskMappingVer1BackingInfo', rdm: { lunUuid: lun!.lunUuid, compatibilityMode: 'physicalMode' } });
    expect(fs.existsSync(sim.localPath(rdm.fileName))).toBe(true);
  });
});

afterAll(() => {
  const methods = expectAllRequestsConform();
  for (const m of [
    'PowerOnVM_Task',
    'PowerOffVM_Task',
    'ShutdownGuest',
    'CreateSnapshot_Task',
    'RevertToSnapshot_Task',
    'RemoveSnapshot_Task',
    'RemoveAllSnapshots_Task',
    'ReconfigVM_Task',
    'CreateVM_Task',
    'Destroy_Task',
    'QueryConfigTarget',
  ]) {
    expect(methods).toContain(m);
  }
});

// Reading through the PropertyCollector and SearchIndex against vcsim: VM
// lookups, the typed config and device list, power state, snapshot tree,
// layoutEx chains, inventory lookups, QueryConfigTarget LUNs.
import {
  VSphereClient,
  configTargetLuns,
  findAll,
  findComputeResource,
  findDatacenter,
  findDatastore,
  findFolder,
  findHost,
  findResourcePool,
  findVm,
  getProperty,
  getVmConfig,
  getVmInfo,
  layoutDiskChains,
  listDatastores,
  propValue,
  queryConfigTarget,
  retrieveAll,
  type MoRef,
  type VirtualDisk,
} from '../../../apps/core/src/vsphere';
import { clientOptions, expectAllRequestsConform, startVcsim, type Vcsim } from '../../support/vcsim';

let sim: Vcsim;
let c: VSphereClient;
let vm: MoRef;
beforeAll(async () => {
  sim = await startVcsim(['-luns', '2', '-datastores', '2']);
  c = await VSphereClient.connect(clientOptions(sim));
  vm = await findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
}, 180_000);
afterAll(async () => {
  await c?.close();
  await sim?.stop();
});

describe('finding a VM', () => {
  test('by inventory path, moref, instance UUID and BIOS UUID: the same VM', async () => {
    expect(vm.type).toBe('VirtualMachine');
    const config = await getVmConfig(c, vm);
    expect(config.name).toBe('DC0_H0_VM0');
    expect(await findVm(c, { moref: vm.value })).toEqual(vm);
    expect(await findVm(c, { instanceUuid: config.instanceUuid! })).toEqual(vm);
    expect(await findVm(c, { biosUuid: config.uuid })).toEqual(vm);
    const dc = await findDatacenter(c, 'DC0');
    expect(await findVm(c, { biosUuid: config.uuid, datacenter: dc })).toEqual(vm);
  });

  test('a VM that is not there: VSPHERE_NOT_FOUND, permanent', async () => {
    for (const loc of [{ moref: 'vm-999999' }, { inventoryPath: 'DC0/vm/nope' }, { instanceUuid: '00000000-0000-0000-0000-000000000000' }, { biosUuid: 'nope' }]) {
      await expect(findVm(c, loc)).rejects.toMatchObject({ code: 'VSPHERE_NOT_FOUND', permanent: true });
    }
    // A path to something that is not a VM is not a VM.
    await expect(findVm(c, { inventoryPath: 'DC0/host/DC0_H0' })).rejects.toMatchObject({ code: 'VSPHERE_NOT_FOUND' });
  });
});

describe('reading a VM', () => {
  test('config with the whole device list typed by xsi:type, power state, disks', async () => {
    const info = await getVmInfo(c, vm);
    expect(info.name).toBe('DC0_H0_VM0');
    expect(info.powerState).toBe('poweredOn');
    const devices = info.config.hardware.device!;
    const types = devices.map((d) => d._type);
    expect(types).toEqual(expect.arrayContaining(['VirtualIDEController', 'VirtualPS2Controller', 'VirtualPCIController', 'VirtualSIOController', 'VirtualKeyboard', 'VirtualDisk']));
    for (const d of devices) expect(typeof d.key).toBe('number');
    const disk = devices.find((d) => d._type === 'VirtualDisk') as VirtualDisk;
    expect(disk).toMatchObject({
      capacityInKB: 32 * 1024,
      capacityInBytes: 32 * 1024 * 1024,
      backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk', diskMode: 'persistent', thinProvisioned: expect.any(Boolean) },
    });
    expect(typeof disk.controllerKey).toBe('number');
    expect(devices.some((d) => d.key === disk.controllerKey && /Controller$/.test(d._type ?? ''))).toBe(true);
    expect(info.disks).toEqual([expect.objectContaining({ fileName: '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk', chain: ['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk'] })]);
    expect(info.snapshot).toBeUndefined();
    expect(layoutDiskChains(info.layoutEx).get(disk.key)).toEqual(['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk']);
  });

  test('retrieveAll over the inventory (maxObjects given; vcsim answers in one page)', async () => {
    const vms = await findAll(c, 'VirtualMachine', ['name', 'runtime.powerState'], 2);
    expect(vms.map((o) => propValue<string>(o, 'name')).sort()).toEqual(['DC0_C0_RP0_VM0', 'DC0_C0_RP0_VM1', 'DC0_H0_VM0', 'DC0_H0_VM1']);
    expect(vms.every((o) => propValue(o, 'runtime.powerState') === 'poweredOn')).toBe(true);
    const direct = await retrieveAll(c, [{ propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }], objectSet: [{ obj: vm }] }]);
    expect(direct).toHaveLength(1);
  });
});

describe('inventory lookups', () => {
  test('by name and by inventory path', async () => {
    const dc = await findDatacenter(c, 'DC0');
    expect(dc.type).toBe('Datacenter');
    expect(await findFolder(c, 'DC0/vm')).toMatchObject({ type: 'Folder' });
    const pool = await findResourcePool(c, 'DC0/host/DC0_H0/Resources');
    expect(pool.type).toBe('ResourcePool');
    expect(await findResourcePool(c, 'DC0/host/DC0_C0/Resources')).toMatchObject({ type: 'ResourcePool' });
    const host = await findHost(c, 'DC0_H0');
    expect(host.type).toBe('HostSystem');
    expect(await findHost(c, 'DC0/host/DC0_H0/DC0_H0')).toEqual(host);
    expect(await getProperty(c, vm, 'runtime.host')).toEqual(host);
    const ds = await findDatastore(c, 'LocalDS_1');
    expect(ds.type).toBe('Datastore');
    expect(await findDatastore(c, 'DC0/datastore/LocalDS_1')).toEqual(ds);
    expect((await findComputeResource(c, 'DC0_C0')).type).toBe('ClusterComputeResource');
    expect((await findComputeResource(c, 'DC0/host/DC0_H0')).type).toBe('ComputeResource');
  });

  test('not found and ambiguous names', async () => {
    await expect(findDatastore(c, 'NoSuchDS')).rejects.toMatchObject({ code: 'VSPHERE_NOT_FOUND', message: 'Datastore named NoSuchDS not found' });
    await expect(findHost(c, 'DC0/host/none')).rejects.toMatchObject({ code: 'VSPHERE_NOT_FOUND' });
    await expect(findFolder(c, 'DC0/vm/DC0_H0_VM0')).rejects.toMatchObject({ code: 'VSPHERE_NOT_FOUND' });
    // Every cluster and standalone host has a pool named "Resources".
    await expect(findResourcePool(c, 'Resources')).rejects.toThrow(/are named Resources: give an inventory path/);
  });

  test('datastores with capacity and free space', async () => {
    const all = await listDatastores(c);
    expect(all.map((d) => d.name).sort()).toEqual(['LocalDS_0', 'LocalDS_1']);
    for (const d of all) {
      expect(d.capacity).toBeGreaterThan(0);
      expect(typeof d.freeSpace).toBe('number');
    }
  });
});

describe('QueryConfigTarget', () => {
  test('through the VM: datastores, networks and the free LUNs (uuid differs from the host\'s)', async () => {
    const ct = await queryConfigTarget(c, vm);
    expect(ct.datastore?.map((d) => d.name).sort()).toEqual(['LocalDS_0', 'LocalDS_1']);
    expect(ct.network?.map((n) => n.name)).toContain('VM Network');
    const luns = configTargetLuns(ct);
    expect(luns).toHaveLength(2);
    for (const l of luns) {
      expect(l.deviceName).toMatch(/^naa\.6000c29[0-9a-f]{25}$/);
      expect(l.lunUuid).toMatch(/^0200[0-9a-f]+566972747561$/);
      expect(l.lunUuid).toContain(l.deviceName.slice(4));
      expect(l.capacityInKB).toBe(1048576);
      expect(l.path).toBe(`/vmfs/devices/disks/${l.deviceName}`);
    }
    expect(ct.scsiDisk![0]!.disk._type).toBe('HostScsiDisk');
    const host = (await getProperty<MoRef>(c, vm, 'runtime.host'))!;
    const hostLuns = (await getProperty<Array<{ canonicalName: string; uuid: string }>>(c, host, 'config.storageDevice.scsiLun'))!;
    const same = hostLuns.find((h) => h.canonicalName === luns[0]!.deviceName)!;
    expect(same).toBeDefined();
    expect(same.uuid).not.toBe(luns[0]!.lunUuid);
  });

  test('through a compute resource gives the same LUNs', async () => {
    const cr = await findComputeResource(c, 'DC0/host/DC0_H0');
    const viaCr = configTargetLuns(await queryConfigTarget(c, cr));
    const viaVm = configTargetLuns(await queryConfigTarget(c, vm));
    expect(viaCr.map((l) => l.lunUuid).sort()).toEqual(viaVm.map((l) => l.lunUuid).sort());
  });
});

afterAll(() => {
  expect([...expectAllRequestsConform()]).toEqual(expect.arrayContaining(['FindByUuid', 'FindByInventoryPath', 'RetrievePropertiesEx', 'QueryConfigTarget']));
});

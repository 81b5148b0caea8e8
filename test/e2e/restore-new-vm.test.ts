import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vsphere, type FixtureChain } from '@vmrestore/core';
import { apiCalls } from '../support/api';
import { waitFor } from '../support/env';
import { startApi, stop, type Proc } from '../support/processes';
import { startRestoreEnv, startWorkerProcess, type RestoreEnv } from '../support/restore-env';

// MISSION R2-R5 end to end: a new VM built from the saved config (ConfigSpec
// rules of R5), its disks written from a restore point (with the saved disk
// metadata), through the API and the production worker into vcsim.

let renv: RestoreEnv;
let api: Proc & { url: string };
let worker: Proc | undefined;
let chain: FixtureChain;

const { http, ended } = apiCalls(() => api.url, () => renv.headers);
const restoreNew = (name: string, point: string, options: Record<string, unknown>) =>
  http('POST', '/v1/restores', '/v1/restores', { kind: 'new_vm', vcenter: renv.vcenterName, source: { vm: 'dr-src', point }, target: { name, datastore: 'LocalDS_0' }, options });

async function vmByName(name: string) {
  const c = await renv.client();
  try {
    const all = await vsphere.findAll(c, 'VirtualMachine', ['name']);
    const hit = all.find((o) => vsphere.propValue<string>(o, 'name') === name);
    if (!hit) return null;
    const info = await vsphere.getVmInfo(c, hit.obj);
    return { ref: hit.obj, info, snaps: (await vsphere.listSnapshots(c, hit.obj)).all };
  } finally {
    await c.close();
  }
}

function flatAndDescriptor(dsPath: string) {
  return { text: readFileSync(renv.sim.localPath(dsPath), 'utf8'), flat: readFileSync(renv.sim.flatPath(dsPath)) };
}

beforeAll(async () => {
  renv = await startRestoreEnv([], { VMRESTORE_WRITE_BATCH_EXTENTS: '4' });
  const c = await renv.client();
  const src = await vsphere.findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
  await c.close();
  // A backup whose disks match a harness VM's (its config is the fixture's: EFI, PVSCSI, VMXNET3, CD-ROM, CBT on).
  chain = await renv.backupFor(src.value, 'dr-src', { incrementals: 3, seed: 17 });
  api = await startApi(renv.env);
  worker = await startWorkerProcess(renv.env);
});
afterAll(async () => {
  await stop(worker, 'SIGKILL');
  await stop(api);
  await renv?.close();
});

function expectDisks(vm: NonNullable<Awaited<ReturnType<typeof vmByName>>>, pointId: string) {
  const point = chain.points.find((p) => p.pointId === pointId)!;
  const savedDisks = point.manifest.disks;
  expect(vm.info.disks).toHaveLength(savedDisks.length);
  vm.info.disks.forEach((d, i) => {
    const saved = savedDisks[i]!;
    const { text, flat } = flatAndDescriptor(d.fileName);
    expect(flat.subarray(0, saved.capacityBytes).equals(point.images.get(saved.key)!)).toBe(true);
    // R2: the saved disk metadata is written back.
    expect(text).toContain(`ddb.adapterType = "${saved.metadata['ddb.adapterType']}"`);
  });
}

it('builds a new VM from a full point: devices from the saved config, disks and metadata written, CBT back on, powered on', async () => {
  const r = await restoreNew('dr-full', 'p0', { transports: ['file'] });
  expect(r.status).toBe(202);
  const job = await ended(r.body.id);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  const vm = (await vmByName('dr-full'))!;
  expect(vm.info.powerState).toBe('poweredOn');
  expect(vm.snaps).toEqual([]);
  const types = (vm.info.config.hardware.device ?? []).map((d) => d._type);
  for (const t of ['ParaVirtualSCSIController', 'VirtualVmxnet3', 'VirtualCdrom', 'VirtualDisk']) expect(types).toContain(t);
  expect(vm.info.config.firmware).toBe('efi');
  expect(vm.info.config.changeTrackingEnabled).toBe(true);
  expect(job.steps.find((s: any) => s.name === 'restore_cbt').result).toEqual({ changeTracking: true });
  expectDisks(vm, 'p0');
});

it('builds from a point deep in the chain through VDDK, backward and forward giving the same disks, no snapshot left', async () => {
  const back = await ended((await restoreNew('dr-deep-back', 'p3', { transports: ['nbdssl'], powerOn: false })).body.id);
  const fwd = await ended((await restoreNew('dr-deep-fwd', 'p3', { transports: ['hotadd'], powerOn: false, incrementalOrder: 'forward' })).body.id);
  for (const [job, name] of [[back, 'dr-deep-back'], [fwd, 'dr-deep-fwd']] as const) {
    expect([job.state, job.error]).toEqual(['succeeded', null]);
    expect(job.steps.find((s: any) => s.name === 'temp_snapshot').result.adopted).toBe(false);
    const vm = (await vmByName(name))!;
    expect(vm.snaps).toEqual([]);
    expect(vm.info.powerState).toBe('poweredOff');
    expectDisks(vm, 'p3');
  }
});

it('refuses a name that is taken, before creating anything', async () => {
  await renv.sim.clearCalls();
  const job = await ended((await restoreNew('DC0_H0_VM1', 'p0', { transports: ['file'] })).body.id);
  expect([job.state, job.error.code]).toEqual(['failed', 'VM_NAME_TAKEN']);
  expect(await renv.sim.calls('CreateVM_Task')).toHaveLength(0);
});

it('a worker killed right after CreateVM: the resumed job adopts the VM, never creates a second', async () => {
  await renv.sim.clearCalls();
  await renv.sim.injectFault({ method: 'CreateVM_Task', delayMs: 1500, count: 1 });
  const id = (await restoreNew('dr-crash', 'p2', { transports: ['file'] })).body.id;
  await waitFor('CreateVM_Task', async () => (await renv.sim.calls('CreateVM_Task')).length > 0, 30_000);
  await stop(worker, 'SIGKILL');
  worker = await startWorkerProcess(renv.env);
  const job = await ended(id, 90_000);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  expect(await renv.sim.calls('CreateVM_Task')).toHaveLength(1);
  expect(job.steps.find((s: any) => s.name === 'create_vm').result.adopted).toBe(true);
  expectDisks((await vmByName('dr-crash'))!, 'p2');
});

it('a permanent fault after CreateVM fails the job and removes the half-restored VM', async () => {
  await renv.sim.injectFault({ method: 'PowerOnVM_Task', fault: 'NoPermission', count: -1 });
  try {
    const job = await ended((await restoreNew('dr-doomed', 'p1', { transports: ['file'] })).body.id);
    expect([job.state, job.error.code]).toEqual(['failed', 'VSPHERE_NO_PERMISSION']);
    expect(job.steps.find((s: any) => s.name === 'remove_incomplete_vm').result).toMatchObject({ removed: true });
    expect(await vmByName('dr-doomed')).toBeNull();
  } finally {
    await renv.sim.clearFaults();
  }
});

it('recreates an RDM disk against a free LUN, with deviceName and lunUuid from QueryConfigTarget (R4)', async () => {
  const { writeFileSync } = await import('node:fs');
  const c = await renv.client();
  let luns: Array<{ deviceName: string; lunUuid: string; capacityInKB: number | undefined }>;
  let hostUuids: string[] = [];
  try {
    const cr = (await vsphere.findAll(c, 'ComputeResource', ['name']))[0]!;
    luns = vsphere.configTargetLuns(await vsphere.queryConfigTarget(c, cr.obj));
    const hosts = await vsphere.findAll(c, 'HostSystem', ['config.storageDevice.scsiLun']);
    hostUuids = hosts.flatMap((h) => (vsphere.propValue<Array<{ uuid?: string }>>(h, 'config.storageDevice.scsiLun') ?? []).map((l) => l.uuid ?? ''));
  } finally {
    await c.close();
  }
  const lun = luns[0]!;
  const capacityBytes = (lun.capacityInKB ?? 0) * 1024;
  const rdmChain = await (await import('@vmrestore/core')).generateFixtureChain({
    root: renv.root,
    vmId: 'rdm-src',
    disks: [{ key: 2000, capacityBytes: 8 * 1024 * 1024 }, { key: 2001, capacityBytes }],
    incrementals: 1,
    seed: 5,
    areasPerPoint: 4,
  });
  // Make disk 2001 an RDM in the saved config: the LUN by name, with a stale uuid (as the old host reported it).
  for (const p of rdmChain.points) {
    const file = join(renv.root, 'rdm-src', p.pointId, 'point.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    const d = m.config.hardware.device.find((x: { key: number }) => x.key === 2001);
    d.backing = { _type: 'VirtualDiskRawDiskMappingVer1BackingInfo', fileName: '[datastore1] rdm-src/rdm-src_1.vmdk', deviceName: lun.deviceName, lunUuid: '0200000000stale-host-uuid', compatibilityMode: 'virtualMode', diskMode: 'persistent' };
    writeFileSync(file, JSON.stringify(m));
  }
  const r = await http('POST', '/v1/restores', '/v1/restores', { kind: 'new_vm', vcenter: renv.vcenterName, source: { vm: 'rdm-src', point: 'p1' }, target: { name: 'dr-rdm', datastore: 'LocalDS_0' }, options: { transports: ['nbdssl'], powerOn: false } }); // an RDM's data is on the LUN: VDDK, not the datastore's files
  const job = await ended(r.body.id, 120_000);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  const vm = (await vmByName('dr-rdm'))!;
  const rdm = vm.info.disks.find((d) => d.rdm)!;
  // vCenter reports the mapped device by its path (/vmfs/devices/disks/<canonicalName>).
  expect((rdm.rdm!.deviceName ?? '').replace('/vmfs/devices/disks/', '')).toBe(lun.deviceName);
  expect(rdm.rdm!.lunUuid).toBe(lun.lunUuid);
  expect(hostUuids).not.toContain(rdm.rdm!.lunUuid); // the config target's uuid, not the host's
  const point = rdmChain.points.find((p) => p.pointId === 'p1')!;
  const { flat } = flatAndDescriptor(rdm.fileName);
  expect(flat.subarray(0, capacityBytes).equals(point.images.get(2001)!)).toBe(true);
}, 180_000);

it('a dry run returns the exact ConfigSpec, the bytes per disk and the warnings, and creates nothing', async () => {
  await renv.sim.clearCalls();
  const firstKey = chain.points[0]!.manifest.disks[0]!.key;
  const r = await http('POST', '/v1/restores', '/v1/restores', {
    kind: 'new_vm',
    vcenter: renv.vcenterName,
    source: { vm: 'dr-src', point: 'p3' },
    target: { name: 'dr-dry', datastore: 'LocalDS_0', diskProvisioning: { [String(firstKey)]: 'thick-eager' }, networks: { '4000': 'VM Network' } },
    options: { transports: ['file'] },
    dryRun: true,
  });
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ dryRun: true, kind: 'new_vm', target: 'file', chain: ['p0', 'p1', 'p2', 'p3'] });
  expect(r.body.newVm.name).toBe('dr-dry');
  const types = r.body.newVm.spec.deviceChange.map((c: any) => c.device._type);
  expect(types).toEqual(expect.arrayContaining(['ParaVirtualSCSIController', 'VirtualVmxnet3', 'VirtualDisk']));
  expect(types).not.toContain('VirtualKeyboard'); // R5: default devices left out
  const disk = r.body.newVm.spec.deviceChange.find((c: any) => c.device._type === 'VirtualDisk').device;
  expect(disk.backing).toMatchObject({ thinProvisioned: false, eagerlyScrub: true });
  expect(r.body.newVm.spec.deviceChange.find((c: any) => c.device._type === 'VirtualVmxnet3').device.backing.deviceName).toBe('VM Network');
  const point = chain.points.find((p) => p.pointId === 'p3')!;
  expect(r.body.disks.map((d: any) => d.key)).toEqual(point.manifest.disks.map((d) => d.key));
  expect(r.body.bytes).toBeGreaterThan(0);
  expect(await renv.sim.calls('CreateVM_Task')).toHaveLength(0);
  expect(await vmByName('dr-dry')).toBeNull();
  const refused = await http('POST', '/v1/restores', '/v1/restores', { kind: 'new_vm', vcenter: renv.vcenterName, source: { vm: 'dr-src', point: 'p0' }, target: { name: 'DC0_H0_VM1' }, dryRun: true });
  expect([refused.status, refused.body.code]).toEqual([422, 'DRY_RUN_REFUSED']);
  expect(refused.body.detail).toMatch(/^VM_NAME_TAKEN/);
});

it('rebuilds a modern VM (USB, serial/parallel host ports, a CD-ROM on an ISO that is gone, EFI secure boot, LSI/SAS/PVSCSI, NVMe, passthrough, vTPM) with the documented warnings', async () => {
  const { writeFileSync } = await import('node:fs');
  const core = await import('@vmrestore/core');
  const { richConfig } = await import('../../apps/core/src/configspec/fixtures');
  const config = richConfig() as Record<string, any>;
  // Small disks, so the test stays quick; everything else as saved.
  const disks = config.hardware.device.filter((d: any) => d._type === 'VirtualDisk');
  for (const d of disks) {
    d.capacityInKB = 2048;
    d.capacityInBytes = 2 * 1024 * 1024;
  }
  const rich = await core.generateFixtureChain({ root: renv.root, vmId: 'rich-src', disks: disks.map((d: any) => ({ key: d.key, capacityBytes: d.capacityInBytes })), incrementals: 1, seed: 61, areasPerPoint: 4 });
  for (const p of rich.points) {
    const file = join(renv.root, 'rich-src', p.pointId, 'point.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    m.config = config;
    writeFileSync(file, JSON.stringify(m));
  }
  const r = await http('POST', '/v1/restores', '/v1/restores', {
    kind: 'new_vm',
    vcenter: renv.vcenterName,
    source: { vm: 'rich-src', point: 'p1' },
    target: { name: 'dr-rich', datastore: 'LocalDS_0', networks: { '4000': 'VM Network', '4001': 'VM Network' } },
    options: { transports: ['file'], powerOn: false },
  });
  const job = await ended(r.body.id, 120_000);
  expect([job.state, job.error]).toEqual(['succeeded', null]);
  const events = await http('GET', `/v1/restores/${job.id}/events?limit=1000`, '/v1/restores/{id}/events');
  const warnings = events.body.items.filter((e: any) => e.type === 'restore.warning').map((e: any) => e.data.code);
  expect(warnings).toEqual(expect.arrayContaining(['DEVICE_DROPPED_USB', 'DEVICE_DROPPED_PASSTHROUGH', 'DEVICE_DROPPED_HOST_BACKING', 'CDROM_ISO_MISSING']));
  const vm = (await vmByName('dr-rich'))!;
  const types = (vm.info.config.hardware.device ?? []).map((d) => d._type);
  for (const t of ['VirtualLsiLogicController', 'VirtualLsiLogicSASController', 'ParaVirtualSCSIController', 'VirtualNVMEController']) expect(types).toContain(t);
  for (const t of ['VirtualUSB', 'VirtualPCIPassthrough']) expect(types).not.toContain(t);
  expect(vm.info.config.firmware).toBe('efi');
  expect((vm.info.config.bootOptions as { efiSecureBootEnabled?: boolean } | undefined)?.efiSecureBootEnabled).toBe(true);
  const point = rich.points.find((p) => p.pointId === 'p1')!;
  expect(vm.info.disks).toHaveLength(5);
  for (const d of vm.info.disks) {
    const { flat } = flatAndDescriptor(d.fileName);
    const match = [...point.images.values()].some((img) => flat.subarray(0, img.length).equals(img));
    expect(match).toBe(true);
  }
}, 180_000);

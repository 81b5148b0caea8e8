// QueryChangedDiskAreas against the harness: paginated answers merged into
// one area list, stale changeIds refused as vCenter refuses them, the
// powered-on rule, a VM without CBT.
import {
  VSphereClient,
  createSnapshot,
  findVm,
  getVmInfo,
  mergeAreas,
  powerOff,
  powerOn,
  queryChangedDiskAreas,
  removeSnapshot,
  VSphereError,
  type MoRef,
} from '../../../apps/core/src/vsphere';
import { clientOptions, expectAllRequestsConform, startVcsim, type Vcsim } from '../../support/vcsim';

const MiB = 1024 * 1024;
let sim: Vcsim;
let c: VSphereClient;
let vm: MoRef;
let key: number;
let capacity: number;
const BASE = '52 3c 8a 1f 9e 0b 44 d2-a7 61 0e 5c 3b 28 f9 07/4';

beforeAll(async () => {
  sim = await startVcsim(['-disk-mb', '64']);
  c = await VSphereClient.connect(clientOptions(sim));
  vm = await findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
  const info = await getVmInfo(c, vm);
  key = info.disks[0]!.key;
  capacity = info.disks[0]!.capacityInBytes;
  await powerOff(c, vm, { guestShutdown: false, pollMs: 20 });
}, 180_000);
afterAll(async () => {
  await c?.close();
  await sim?.stop();
});

const query = (changeId: string, snapshot?: MoRef) => queryChangedDiskAreas(c, vm, { deviceKey: key, changeId, capacityBytes: capacity, ...(snapshot ? { snapshot } : {}) });

test('a VM without CBT: a FileFault, mapped to its code', async () => {
  const err = await query(BASE).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(VSphereError);
  expect((err as VSphereError).code).toBe('VSPHERE_FILE_FAULT');
});

test('the areas changed since a changeId, across pages, merged and sorted; the backing shows the current changeId', async () => {
  expect(await sim.cbt.baseline(vm.value, key, BASE)).toBe(BASE);
  await sim.cbt.changed(vm.value, key, [{ start: 40 * MiB, length: 2 * MiB }]);
  const id5 = '52 3c 8a 1f 9e 0b 44 d2-a7 61 0e 5c 3b 28 f9 07/5';
  // The second change touches the first one and crosses a page boundary.
  const id6 = await sim.cbt.changed(vm.value, key, [
    { start: 42 * MiB, length: MiB },
    { start: 15 * MiB, length: 2 * MiB },
    { start: 64 * 1024, length: 64 * 1024 },
  ]);
  expect(id6).toMatch(/\/6$/);
  await sim.cbt.page(16 * MiB);
  const info = await getVmInfo(c, vm);
  expect(info.config.changeTrackingEnabled).toBe(true);
  expect(info.disks[0]!.changeId).toBe(id6);

  const all = await query(BASE);
  expect(all.calls).toBe(Math.ceil(capacity / (16 * MiB)));
  expect(all.areas).toEqual([
    { start: 64 * 1024, length: 64 * 1024 },
    { start: 15 * MiB, length: 2 * MiB },
    { start: 40 * MiB, length: 3 * MiB },
  ]);
  expect(all.bytes).toBe(64 * 1024 + 5 * MiB);
  // Only what changed after sequence 5; nothing after the current one.
  expect((await query(id5)).areas).toEqual([
    { start: 64 * 1024, length: 64 * 1024 },
    { start: 15 * MiB, length: 2 * MiB },
    { start: 42 * MiB, length: MiB },
  ]);
  expect((await query(id6)).areas).toEqual([]);
  // "*": every allocated area (the harness: the whole disk).
  expect((await query('*')).bytes).toBe(capacity);
  expectAllRequestsConform();
});

test('stale changeIds are refused: another epoch, from the future, after a reset', async () => {
  await sim.cbt.baseline(vm.value, key, BASE);
  const codes = async (id: string) => ((await query(id).catch((e: unknown) => e)) as VSphereError).code;
  expect(await codes('52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/4')).toBe('VSPHERE_FILE_FAULT');
  expect(await codes(BASE.replace(/\/4$/, '/9'))).toBe('VSPHERE_FILE_FAULT');
  expect(await codes('not-a-change-id')).toBe('VSPHERE_FILE_FAULT');
  const fresh = await sim.cbt.reset(vm.value, key);
  expect(fresh).not.toBe(BASE);
  expect(await codes(BASE)).toBe('VSPHERE_FILE_FAULT');
  expect((await query(fresh)).areas).toEqual([]);
});

test('a powered-on VM needs a snapshot to compare with', async () => {
  await sim.cbt.baseline(vm.value, key, BASE);
  await sim.cbt.changed(vm.value, key, [{ start: 0, length: MiB }]);
  await powerOn(c, vm, { pollMs: 20 });
  try {
    const err = (await query(BASE).catch((e: unknown) => e)) as VSphereError;
    expect(err.code).toBe('VSPHERE_INVALID_POWER_STATE');
    const snap = await createSnapshot(c, vm, { name: 'cbt-test' }, { pollMs: 20 });
    expect((await query(BASE, snap)).areas).toEqual([{ start: 0, length: MiB }]);
    await removeSnapshot(c, snap, { pollMs: 20 });
  } finally {
    await powerOff(c, vm, { guestShutdown: false, pollMs: 20 });
  }
});

test('mergeAreas: clips, sorts, merges adjacent and overlapping areas, drops empty ones', () => {
  expect(
    mergeAreas(
      [
        { start: 100, length: 50 },
        { start: 0, length: 10 },
        { start: 10, length: 5 },
        { start: 140, length: 100 },
        { start: 300, length: 0 },
        { start: -5, length: 2 },
      ],
      200,
    ),
  ).toEqual([
    { start: 0, length: 15 },
    { start: 100, length: 100 },
  ]);
});

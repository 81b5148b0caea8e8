// Every injected vSphere fault becomes a VSphereError with its stable code,
// for task methods (the task ends in error) and plain calls (SOAP fault);
// task deadlines (a slow call, a slow poll) end in VSPHERE_TASK_TIMEOUT and
// CancelTask.
import {
  VSphereClient,
  createSnapshot,
  findVm,
  powerOn,
  powerOff,
  runTask,
  waitForTask,
  VSphereError,
  type MoRef,
} from '../../../apps/core/src/vsphere';
import { clientOptions, expectAllRequestsConform, startVcsim, type Vcsim } from '../../support/vcsim';

let sim: Vcsim;
let c: VSphereClient;
let vm: MoRef;
beforeAll(async () => {
  sim = await startVcsim();
  c = await VSphereClient.connect(clientOptions(sim));
  vm = await findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' });
}, 180_000);
afterAll(async () => {
  await c?.close();
  await sim?.stop();
});
afterEach(async () => {
  await sim.clearFaults();
});

const fast = { pollMs: 20, timeoutMs: 20_000 };
const FAULTS: Array<[string, string, boolean]> = [
  ['InvalidPowerState', 'VSPHERE_INVALID_POWER_STATE', false],
  ['TaskInProgress', 'VSPHERE_TASK_IN_PROGRESS', false],
  ['FileNotFound', 'VSPHERE_FILE_NOT_FOUND', true],
  ['InvalidDeviceSpec', 'VSPHERE_INVALID_DEVICE_SPEC', true],
  ['NoPermission', 'VSPHERE_NO_PERMISSION', true],
  ['InsufficientResourcesFault', 'VSPHERE_INSUFFICIENT_RESOURCES', false],
  ['InvalidState', 'VSPHERE_INVALID_STATE', false],
  ['GenericVmConfigFault', 'VSPHERE_VM_CONFIG_FAULT', true],
  ['NotSupported', 'VSPHERE_NOT_SUPPORTED', true],
  ['InvalidArgument', 'VSPHERE_INVALID_ARGUMENT', true],
  ['DuplicateName', 'VSPHERE_DUPLICATE_NAME', true],
  ['NoDiskSpace', 'VSPHERE_NO_DISK_SPACE', true],
  ['SnapshotFault', 'VSPHERE_SNAPSHOT_FAULT', false],
  ['HostNotConnected', 'VSPHERE_HOST_COMMUNICATION', false],
  ['ConcurrentAccess', 'VSPHERE_CONCURRENT_ACCESS', false],
  ['InvalidLogin', 'VSPHERE_INVALID_LOGIN', true],
  ['NotImplemented', 'VSPHERE_NOT_SUPPORTED', true],
  // Not mapped on its own: falls back to an ancestor (InvalidDatastorePath -> InvalidDatastore), or the default.
  ['InvalidDatastorePath', 'VSPHERE_INVALID_DATASTORE', true],
  ['VmWwnConflict', 'VSPHERE_FAULT', false],
];

describe('task faults (the task ends in error)', () => {
  test.each(FAULTS)('%s -> %s (permanent: %s)', async (fault, code, permanent) => {
    await sim.injectFault({ method: 'CreateSnapshot_Task', moref: vm.value, fault, message: `injected ${fault}` });
    let err: VSphereError | undefined;
    try {
      await createSnapshot(c, vm, { name: 'x' }, fast);
    } catch (e) {
      err = e as VSphereError;
    }
    expect(err).toBeInstanceOf(VSphereError);
    expect(err).toMatchObject({ code, permanent, faultType: fault, fault: { _type: fault } });
    expect(err!.message).toBe(`CreateSnapshot_Task on ${vm.value}: ${fault}: injected ${fault}`);
  });
});

describe('call faults (SOAP fault)', () => {
  test.each(FAULTS)('%s -> %s (permanent: %s)', async (fault, code, permanent) => {
    await sim.injectFault({ method: 'FindByInventoryPath', fault, message: `injected ${fault}` });
    await expect(findVm(c, { inventoryPath: 'DC0/vm/DC0_H0_VM0' })).rejects.toMatchObject({
      code,
      permanent,
      faultType: fault,
      message: `FindByInventoryPath: ${fault}: injected ${fault}`,
    });
  });

  test('NoPermission carries the object and privilege', async () => {
    await sim.injectFault({ method: 'ShutdownGuest', moref: vm.value, fault: 'NoPermission' });
    await expect(powerOff(c, vm, { hardOff: false })).rejects.toMatchObject({
      code: 'VSPHERE_NO_PERMISSION',
      fault: { _type: 'NoPermission', object: vm, privilegeId: 'System.View' },
    });
  });
});

describe('task deadlines', () => {
  test('a task call slower than the deadline: VSPHERE_TASK_TIMEOUT, transient', async () => {
    await sim.injectFault({ method: 'PowerOffVM_Task', moref: vm.value, delayMs: 2_000 });
    const t0 = Date.now();
    await expect(powerOff(c, vm, { guestShutdown: false, timeoutMs: 400, pollMs: 20 })).rejects.toMatchObject({
      code: 'VSPHERE_TASK_TIMEOUT',
      permanent: false,
      message: expect.stringContaining(`PowerOffVM_Task on ${vm.value}: not started within 400 ms`),
    });
    expect(Date.now() - t0).toBeLessThan(1_500);
    await new Promise((r) => setTimeout(r, 1_800)); // let the delayed call finish on the server
    await powerOn(c, vm, fast);
  });

  test('a task not finished by the deadline (its polls are slow): CancelTask is sent, VSPHERE_TASK_TIMEOUT', async () => {
    await sim.clearCalls();
    const task = await c.call<MoRef>('CreateSnapshot_Task', vm, { name: 'slow', memory: false, quiesce: false });
    await sim.injectFault({ method: 'RetrievePropertiesEx', delayMs: 1_500, count: 1 });
    await expect(waitForTask(c, task, { timeoutMs: 300, pollMs: 20 })).rejects.toMatchObject({ code: 'VSPHERE_TASK_TIMEOUT' });
    const cancels = await sim.calls('CancelTask');
    expect(cancels.map((x) => x.moref)).toEqual([task.value]);
  });

  test('a task error after a delay is still reported with its code', async () => {
    await sim.injectFault({ method: 'PowerOffVM_Task', moref: vm.value, fault: 'TaskInProgress', delayMs: 200 });
    await expect(runTask(c, 'PowerOffVM_Task', vm, {}, fast)).rejects.toMatchObject({ code: 'VSPHERE_TASK_IN_PROGRESS' });
  });
});

afterAll(() => {
  expect([...expectAllRequestsConform()]).toEqual(expect.arrayContaining(['CreateSnapshot_Task', 'CancelTask', 'FindByInventoryPath']));
});

import type { DataObject, MoRef } from './codec';
import type { ServiceContent } from './client';
import { VSphereError, faultError } from './errors';
import { retrieveAll, getProperties, type VimCaller } from './properties';
import { runTask, waitForTask } from './tasks';
import { powerOff } from './vm';

/** A scripted VimCaller: each method answers through a handler (no server). */
type Handler = (self: MoRef, args: Record<string, unknown>) => unknown;

class FakeVim implements VimCaller {
  readonly calls: Array<{ method: string; self: MoRef; args: Record<string, unknown> }> = [];
  readonly serviceContent = {
    rootFolder: { type: 'Folder', value: 'group-d1' },
    propertyCollector: { type: 'PropertyCollector', value: 'propertyCollector' },
    searchIndex: { type: 'SearchIndex', value: 'SearchIndex' },
    sessionManager: { type: 'SessionManager', value: 'SessionManager' },
    about: { apiVersion: '7.0', apiType: 'VirtualCenter', fullName: 'fake' },
  } as ServiceContent;

  constructor(private readonly handlers: Record<string, Handler>) {}

  async call<T>(method: string, self: MoRef, args: Record<string, unknown> = {}): Promise<T> {
    this.calls.push({ method, self, args });
    const h = this.handlers[method];
    if (!h) throw new Error(`unexpected call ${method}`);
    return (await h(self, args)) as T;
  }

  taskError(where: string, error: DataObject | undefined): VSphereError {
    const fault = error?.fault as DataObject | undefined;
    return faultError(fault, fault?._type ?? 'MethodFault', String(error?.localizedMessage ?? ''), where);
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }
}

/** A RetrievePropertiesEx answer with one object's properties. */
const propsResult = (obj: MoRef, props: Record<string, unknown>) => ({
  objects: [{ obj, propSet: Object.entries(props).map(([name, val]) => ({ name, val })) }],
});

const vm: MoRef = { type: 'VirtualMachine', value: 'vm-1' };
const task: MoRef = { type: 'Task', value: 'task-1' };
const spec = { propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }], objectSet: [{ obj: vm }] };

describe('PropertyCollector pagination', () => {
  test('follows tokens with ContinueRetrievePropertiesEx until none is left', async () => {
    const obj = (n: number) => ({ obj: { type: 'VirtualMachine', value: `vm-${n}` } });
    const fake = new FakeVim({
      RetrievePropertiesEx: (_s, args) => {
        expect(args.options).toEqual({ maxObjects: 2 });
        return { token: 't1', objects: [obj(1), obj(2)] };
      },
      ContinueRetrievePropertiesEx: (_s, args) => (args.token === 't1' ? { token: 't2', objects: [obj(3), obj(4)] } : { objects: [obj(5)] }),
    });
    const all = await retrieveAll(fake, [spec], 2);
    expect(all.map((o) => o.obj.value)).toEqual(['vm-1', 'vm-2', 'vm-3', 'vm-4', 'vm-5']);
    expect(fake.calls.map((c) => c.method)).toEqual(['RetrievePropertiesEx', 'ContinueRetrievePropertiesEx', 'ContinueRetrievePropertiesEx']);
  });

  test('an empty result (no objects matched) is an empty list', async () => {
    expect(await retrieveAll(new FakeVim({ RetrievePropertiesEx: () => undefined }), [spec])).toEqual([]);
  });

  test('a property vCenter could not read (missingSet) is an error with the fault code', async () => {
    const fake = new FakeVim({
      RetrievePropertiesEx: () => ({ objects: [{ obj: vm, missingSet: [{ path: 'config', fault: { _type: 'NoPermission', privilegeId: 'System.Read' } }] }] }),
    });
    await expect(getProperties(fake, vm, ['config'])).rejects.toMatchObject({ code: 'VSPHERE_NO_PERMISSION', permanent: true });
  });
});

describe('tasks', () => {
  test('reports progress, resolves to the result', async () => {
    const states = [
      { state: 'running', progress: 10 },
      { state: 'running', progress: 60 },
      { state: 'success', result: { type: 'VirtualMachineSnapshot', value: 'snapshot-1' } },
    ];
    const fake = new FakeVim({
      CreateSnapshot_Task: () => task,
      RetrievePropertiesEx: () => propsResult(task, { info: { key: 'task-1', task, ...states.shift() } }),
    });
    const progress: number[] = [];
    const res = await runTask(fake, 'CreateSnapshot_Task', vm, { name: 'x' }, { pollMs: 1, onProgress: (p) => progress.push(p) });
    expect(res).toEqual({ type: 'VirtualMachineSnapshot', value: 'snapshot-1' });
    expect(progress).toEqual([10, 60]);
  });

  test('a task that ends in error throws its fault with the localized message', async () => {
    const fake = new FakeVim({
      PowerOnVM_Task: () => task,
      RetrievePropertiesEx: () =>
        propsResult(task, { info: { state: 'error', error: { fault: { _type: 'InsufficientResourcesFault' }, localizedMessage: 'no memory' } } }),
    });
    await expect(runTask(fake, 'PowerOnVM_Task', vm, {}, { pollMs: 1 })).rejects.toMatchObject({
      code: 'VSPHERE_INSUFFICIENT_RESOURCES',
      message: 'PowerOnVM_Task on vm-1: InsufficientResourcesFault: no memory',
    });
  });

  test('past the deadline: CancelTask, then VSPHERE_TASK_TIMEOUT (transient)', async () => {
    const fake = new FakeVim({
      RetrievePropertiesEx: () => propsResult(task, { info: { state: 'running', progress: 5 } }),
      CancelTask: () => undefined,
    });
    await expect(waitForTask(fake, task, { timeoutMs: 30, pollMs: 5 })).rejects.toMatchObject({ code: 'VSPHERE_TASK_TIMEOUT', permanent: false });
    expect(fake.calls.at(-1)).toMatchObject({ method: 'CancelTask', self: task });
  });

  test('a failing CancelTask does not hide the timeout', async () => {
    const fake = new FakeVim({
      RetrievePropertiesEx: () => propsResult(task, { info: { state: 'queued' } }),
      CancelTask: () => {
        throw new Error('not cancelable');
      },
    });
    await expect(waitForTask(fake, task, { timeoutMs: 10, pollMs: 5 })).rejects.toMatchObject({ code: 'VSPHERE_TASK_TIMEOUT' });
  });
});

describe('powerOff', () => {
  /** A VM whose guest takes `offAfterPolls` state reads to go down after ShutdownGuest (Infinity: never). */
  function vmSim(offAfterPolls: number, shutdownFault?: string) {
    let state = 'poweredOn';
    let polls = -1;
    return new FakeVim({
      ShutdownGuest: () => {
        if (shutdownFault) throw faultError(undefined, shutdownFault, 'no tools', 'ShutdownGuest');
        polls = 0;
      },
      PowerOffVM_Task: () => {
        state = 'poweredOff';
        return task;
      },
      RetrievePropertiesEx: (_s, args) => {
        const path = (args.specSet as Array<{ propSet: Array<{ pathSet: string[] }> }>)[0]!.propSet[0]!.pathSet[0];
        if (path === 'info') return propsResult(task, { info: { state: 'success' } });
        if (polls >= 0 && ++polls > offAfterPolls) state = 'poweredOff';
        return propsResult(vm, { 'runtime.powerState': state });
      },
    });
  }

  test('guest shutdown that completes: no hard power off', async () => {
    const fake = vmSim(2);
    expect(await powerOff(fake, vm, { guestPollMs: 1 })).toBe('guestShutdown');
    expect(fake.count('PowerOffVM_Task')).toBe(0);
  });

  test('guest that does not go down in time: hard power off', async () => {
    const fake = vmSim(Infinity);
    expect(await powerOff(fake, vm, { guestTimeoutMs: 20, guestPollMs: 2, pollMs: 1 })).toBe('hardOff');
    expect(fake.count('ShutdownGuest')).toBe(1);
    expect(fake.count('PowerOffVM_Task')).toBe(1);
  });

  test('guest that does not go down, hard off not allowed: VSPHERE_GUEST_SHUTDOWN_TIMEOUT', async () => {
    const fake = vmSim(Infinity);
    await expect(powerOff(fake, vm, { guestTimeoutMs: 10, guestPollMs: 2, hardOff: false })).rejects.toMatchObject({ code: 'VSPHERE_GUEST_SHUTDOWN_TIMEOUT' });
    expect(fake.count('PowerOffVM_Task')).toBe(0);
  });

  test('ShutdownGuest refused (no tools): hard power off, or the fault when hard off is not allowed', async () => {
    let fake = vmSim(0, 'ToolsUnavailable');
    expect(await powerOff(fake, vm, { pollMs: 1 })).toBe('hardOff');
    fake = vmSim(0, 'ToolsUnavailable');
    await expect(powerOff(fake, vm, { hardOff: false })).rejects.toMatchObject({ code: 'VSPHERE_TOOLS_UNAVAILABLE' });
  });

  test('no guest shutdown asked: straight to PowerOffVM_Task', async () => {
    const fake = vmSim(0);
    expect(await powerOff(fake, vm, { guestShutdown: false, pollMs: 1 })).toBe('hardOff');
    expect(fake.count('ShutdownGuest')).toBe(0);
  });
});

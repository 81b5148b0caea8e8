// Snapshots: create, list (tree), find by name, revert, remove, remove all,
// consolidate the disks a failed removal left.
import type { MoRef } from './codec';
import { VSphereError } from './errors';
import { getProperty, type VimCaller } from './properties';
import { runTask, type TaskOptions } from './tasks';
import type { VirtualMachineSnapshotInfo, VirtualMachineSnapshotTree } from './types';

export interface SnapshotArgs {
  name: string;
  description?: string;
  /** Include the VM's memory. Default false (restores never need it). */
  memory?: boolean;
  /** Quiesce the guest file system. Default false. */
  quiesce?: boolean;
}

export async function createSnapshot(client: VimCaller, vm: MoRef, args: SnapshotArgs, opts: TaskOptions = {}): Promise<MoRef> {
  return runTask<MoRef>(
    client,
    'CreateSnapshot_Task',
    vm,
    { name: args.name, description: args.description, memory: args.memory ?? false, quiesce: args.quiesce ?? false },
    opts,
  );
}

export interface SnapshotNode {
  ref: MoRef;
  name: string;
  description: string;
  createTime: string;
  /** Depth in the tree, 0 for roots. */
  depth: number;
  children: SnapshotNode[];
}

export interface SnapshotList {
  current: MoRef | undefined;
  roots: SnapshotNode[];
  /** Every snapshot, depth first. */
  all: SnapshotNode[];
}

export async function listSnapshots(client: VimCaller, vm: MoRef): Promise<SnapshotList> {
  const info = await getProperty<VirtualMachineSnapshotInfo>(client, vm, 'snapshot');
  const all: SnapshotNode[] = [];
  const walk = (t: VirtualMachineSnapshotTree, depth: number): SnapshotNode => {
    const node: SnapshotNode = { ref: t.snapshot, name: t.name, description: t.description, createTime: t.createTime, depth, children: [] };
    all.push(node);
    node.children = (t.childSnapshotList ?? []).map((c) => walk(c, depth + 1));
    return node;
  };
  const roots = (info?.rootSnapshotList ?? []).map((t) => walk(t, 0));
  return { current: info?.currentSnapshot, roots, all };
}

/** The one snapshot of the VM with this name (VSPHERE_NOT_FOUND if none, or if the name is ambiguous). */
export async function findSnapshotByName(client: VimCaller, vm: MoRef, name: string): Promise<MoRef> {
  const hits = (await listSnapshots(client, vm)).all.filter((s) => s.name === name);
  if (hits.length === 1) return hits[0]!.ref;
  throw VSphereError.client('NOT_FOUND', hits.length ? `${hits.length} snapshots of ${vm.value} are named "${name}"` : `no snapshot "${name}" on ${vm.value}`);
}

export async function revertToSnapshot(client: VimCaller, snapshot: MoRef, opts: TaskOptions & { suppressPowerOn?: boolean } = {}): Promise<void> {
  await runTask(client, 'RevertToSnapshot_Task', snapshot, { suppressPowerOn: opts.suppressPowerOn }, opts);
}

export async function revertToSnapshotByName(client: VimCaller, vm: MoRef, name: string, opts: TaskOptions = {}): Promise<void> {
  await revertToSnapshot(client, await findSnapshotByName(client, vm, name), opts);
}

export async function removeSnapshot(
  client: VimCaller,
  snapshot: MoRef,
  opts: TaskOptions & { removeChildren?: boolean; consolidate?: boolean } = {},
): Promise<void> {
  await runTask(client, 'RemoveSnapshot_Task', snapshot, { removeChildren: opts.removeChildren ?? false, consolidate: opts.consolidate }, opts);
}

export async function removeSnapshotByName(client: VimCaller, vm: MoRef, name: string, opts: TaskOptions = {}): Promise<void> {
  await removeSnapshot(client, await findSnapshotByName(client, vm, name), opts);
}

export async function removeAllSnapshots(client: VimCaller, vm: MoRef, opts: TaskOptions & { consolidate?: boolean } = {}): Promise<void> {
  await runTask(client, 'RemoveAllSnapshots_Task', vm, { consolidate: opts.consolidate }, opts);
}

/**
 * ConsolidateVMDisks_Task: merges the delta disks a failed snapshot removal
 * left behind (the VM's runtime.consolidationNeeded) into their parents.
 * VMware's escalation when RemoveSnapshot keeps failing.
 */
export async function consolidateVmDisks(client: VimCaller, vm: MoRef, opts: TaskOptions = {}): Promise<void> {
  await runTask(client, 'ConsolidateVMDisks_Task', vm, {}, opts);
}

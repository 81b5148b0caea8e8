// Finding the objects a restore names: VMs (moref, instance UUID, BIOS UUID,
// inventory path), datacenters, folders, resource pools, hosts, datastores,
// compute resources (by name or inventory path).
import type { MoRef } from './codec';
import { VSphereError } from './errors';
import { findAll, getProperty, notFound, propValue, type VimCaller } from './properties';

export type VmLocator =
  | { moref: string }
  | { instanceUuid: string; datacenter?: MoRef }
  | { biosUuid: string; datacenter?: MoRef }
  | { inventoryPath: string };

/** SearchIndex.FindByInventoryPath, e.g. "DC0/vm/folder/vm1"; undefined when nothing is there. */
export async function findByInventoryPath(client: VimCaller, inventoryPath: string): Promise<MoRef | undefined> {
  return client.call<MoRef | undefined>('FindByInventoryPath', client.serviceContent.searchIndex, { inventoryPath });
}

/** The VM a locator names; VSPHERE_NOT_FOUND (permanent) when there is none. */
export async function findVm(client: VimCaller, loc: VmLocator): Promise<MoRef> {
  const si = client.serviceContent.searchIndex;
  if ('moref' in loc) {
    const ref: MoRef = { type: 'VirtualMachine', value: loc.moref };
    try {
      await getProperty(client, ref, 'name');
    } catch (err) {
      if (err instanceof VSphereError && err.faultType === 'ManagedObjectNotFound') throw notFound(`VM ${loc.moref}`);
      throw err;
    }
    return ref;
  }
  if ('inventoryPath' in loc) {
    const ref = await findByInventoryPath(client, loc.inventoryPath);
    if (!ref || ref.type !== 'VirtualMachine') throw notFound(`VM at inventory path ${loc.inventoryPath}`);
    return ref;
  }
  const instance = 'instanceUuid' in loc;
  const uuid = instance ? loc.instanceUuid : loc.biosUuid;
  const ref = await client.call<MoRef | undefined>('FindByUuid', si, {
    datacenter: loc.datacenter,
    uuid,
    vmSearch: true,
    instanceUuid: instance,
  });
  if (!ref) throw notFound(`VM with ${instance ? 'instance' : 'BIOS'} UUID ${uuid}`);
  return ref;
}

/** An inventory object of `type` by inventory path ("DC0/host/DC0_H0") or, without a slash, by unique name. */
export async function findObject(client: VimCaller, type: string, nameOrPath: string): Promise<MoRef> {
  if (nameOrPath.includes('/')) {
    const ref = await findByInventoryPath(client, nameOrPath);
    if (!ref || !typeMatches(ref.type, type)) throw notFound(`${type} at inventory path ${nameOrPath}`);
    return ref;
  }
  const all = await findAll(client, type, ['name']);
  const hits = all.filter((oc) => propValue<string>(oc, 'name') === nameOrPath);
  if (hits.length === 0) throw notFound(`${type} named ${nameOrPath}`);
  if (hits.length > 1) {
    throw VSphereError.client('NOT_FOUND', `${hits.length} objects of type ${type} are named ${nameOrPath}: give an inventory path`);
  }
  return hits[0]!.obj;
}

/** ClusterComputeResource is a ComputeResource; the rest must match exactly. */
function typeMatches(actual: string, wanted: string): boolean {
  return actual === wanted || (wanted === 'ComputeResource' && actual === 'ClusterComputeResource');
}

export const findDatacenter = (c: VimCaller, nameOrPath: string) => findObject(c, 'Datacenter', nameOrPath);
export const findFolder = (c: VimCaller, nameOrPath: string) => findObject(c, 'Folder', nameOrPath);
export const findResourcePool = (c: VimCaller, nameOrPath: string) => findObject(c, 'ResourcePool', nameOrPath);
export const findHost = (c: VimCaller, nameOrPath: string) => findObject(c, 'HostSystem', nameOrPath);
export const findDatastore = (c: VimCaller, nameOrPath: string) => findObject(c, 'Datastore', nameOrPath);
export const findComputeResource = (c: VimCaller, nameOrPath: string) => findObject(c, 'ComputeResource', nameOrPath);

/** Name and summary of every datastore (capacity and free space in bytes). */
export async function listDatastores(
  client: VimCaller,
): Promise<Array<{ ref: MoRef; name: string; capacity: number | undefined; freeSpace: number | undefined; accessible: boolean | undefined }>> {
  const all = await findAll(client, 'Datastore', ['name', 'summary']);
  return all.map((oc) => {
    const s = propValue<{ capacity?: number; freeSpace?: number; accessible?: boolean }>(oc, 'summary');
    return { ref: oc.obj, name: propValue<string>(oc, 'name') ?? '', capacity: s?.capacity, freeSpace: s?.freeSpace, accessible: s?.accessible };
  });
}

// PropertyCollector reads: RetrievePropertiesEx, then ContinueRetrievePropertiesEx
// while vCenter hands back a token (results are paginated by maxObjects).
import type { DataObject, MoRef } from './codec';
import { VSphereError, faultError } from './errors';
import type { CallOptions, ServiceContent } from './client';

/** What the read and operation helpers need from a client (a fake in unit tests). */
export interface VimCaller {
  readonly serviceContent: ServiceContent;
  call<T = unknown>(method: string, self: MoRef, args?: Record<string, unknown>, opts?: CallOptions): Promise<T>;
  taskError(where: string, error: DataObject | undefined): VSphereError;
}

export interface ObjectContent {
  obj: MoRef;
  propSet?: Array<{ name: string; val: unknown }>;
  missingSet?: Array<{ path: string; fault: DataObject }>;
}

export interface PropertyFilterSpec extends DataObject {
  propSet: Array<{ type: string; all?: boolean; pathSet?: string[] }>;
  objectSet: Array<{ obj: MoRef; skip?: boolean; selectSet?: DataObject[] }>;
}

interface RetrieveResult {
  token?: string;
  objects?: ObjectContent[];
}

/** Every ObjectContent matching the specs, following continuation tokens. */
export async function retrieveAll(
  client: VimCaller,
  specSet: PropertyFilterSpec[],
  maxObjects?: number,
  opts: CallOptions = {},
): Promise<ObjectContent[]> {
  const pc = client.serviceContent.propertyCollector;
  const options = maxObjects ? { maxObjects } : {};
  let res = await client.call<RetrieveResult | undefined>('RetrievePropertiesEx', pc, { specSet, options }, opts);
  const out: ObjectContent[] = [...(res?.objects ?? [])];
  while (res?.token) {
    res = await client.call<RetrieveResult | undefined>('ContinueRetrievePropertiesEx', pc, { token: res.token }, opts);
    out.push(...(res?.objects ?? []));
  }
  return out;
}

/** Selected properties of one object as { path: value }; a property vCenter could not read is an error. */
export async function getProperties(
  client: VimCaller,
  obj: MoRef,
  paths: string[],
  opts: CallOptions = {},
): Promise<Record<string, unknown>> {
  const [oc] = await retrieveAll(client, [{ propSet: [{ type: obj.type, pathSet: paths }], objectSet: [{ obj }] }], undefined, opts);
  const out: Record<string, unknown> = {};
  for (const p of oc?.propSet ?? []) out[p.name] = p.val;
  const missing = oc?.missingSet?.[0];
  if (missing) {
    const type = missing.fault?._type ?? 'MethodFault';
    throw faultError(missing.fault, type, `cannot read ${missing.path} of ${obj.type}:${obj.value}`, 'RetrievePropertiesEx');
  }
  return out;
}

export async function getProperty<T>(client: VimCaller, obj: MoRef, path: string, opts: CallOptions = {}): Promise<T | undefined> {
  return (await getProperties(client, obj, [path], opts))[path] as T | undefined;
}

/**
 * Traversal of the whole inventory from the root folder: folders, datacenters'
 * folders, compute resources' hosts/pools/datastores, pools' children and VMs.
 */
export function inventoryTraversal(): DataObject[] {
  const ts = (name: string, type: string, path: string, select: string[]): DataObject => ({
    _type: 'TraversalSpec',
    name,
    type,
    path,
    skip: false,
    selectSet: select.map((s) => ({ _type: 'SelectionSpec', name: s })),
  });
  const all = ['folder', 'dcVm', 'dcHost', 'dcDs', 'dcNet', 'crHost', 'crRp', 'crDs', 'rpRp', 'rpVm'];
  return [
    ts('folder', 'Folder', 'childEntity', all),
    ts('dcVm', 'Datacenter', 'vmFolder', all),
    ts('dcHost', 'Datacenter', 'hostFolder', all),
    ts('dcDs', 'Datacenter', 'datastoreFolder', all),
    ts('dcNet', 'Datacenter', 'networkFolder', all),
    ts('crHost', 'ComputeResource', 'host', []),
    ts('crRp', 'ComputeResource', 'resourcePool', ['rpRp', 'rpVm']),
    ts('crDs', 'ComputeResource', 'datastore', []),
    ts('rpRp', 'ResourcePool', 'resourcePool', ['rpRp', 'rpVm']),
    ts('rpVm', 'ResourcePool', 'vm', []),
  ];
}

/** All objects of a type under the root folder, with the given properties. */
export async function findAll(client: VimCaller, type: string, paths: string[], maxObjects?: number): Promise<ObjectContent[]> {
  const spec: PropertyFilterSpec = {
    propSet: [{ type, pathSet: paths }],
    objectSet: [{ obj: client.serviceContent.rootFolder, skip: false, selectSet: inventoryTraversal() }],
  };
  return retrieveAll(client, [spec], maxObjects);
}

export const propValue = <T>(oc: ObjectContent, name: string): T | undefined => oc.propSet?.find((p) => p.name === name)?.val as T | undefined;

export function notFound(what: string): VSphereError {
  return VSphereError.client('NOT_FOUND', `${what} not found`);
}

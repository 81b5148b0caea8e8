// Virtual machine reads and operations: config (with the typed device list),
// power state, disks with their current file and chain, power on/off (guest
// shutdown first), reconfigure (CBT, device edits), create, destroy,
// QueryConfigTarget.
import type { DataObject, MoRef } from './codec';
import { VSphereError } from './errors';
import { getProperties, getProperty, type VimCaller } from './properties';
import { runTask, type TaskOptions } from './tasks';
import type {
  ConfigTarget,
  PowerState,
  VirtualDevice,
  VirtualDisk,
  VirtualDiskFlatVer2BackingInfo,
  VirtualDiskRawDiskMappingVer1BackingInfo,
  VirtualMachineConfigInfo,
  VirtualMachineConfigSpec,
  VirtualMachineFileLayoutEx,
  VirtualMachineSnapshotInfo,
  VmDisk,
} from './types';

export interface VmInfo {
  ref: MoRef;
  name: string;
  config: VirtualMachineConfigInfo;
  powerState: PowerState;
  snapshot: VirtualMachineSnapshotInfo | undefined;
  layoutEx: VirtualMachineFileLayoutEx | undefined;
  disks: VmDisk[];
}

/** Everything a restore reads about a VM, in one RetrievePropertiesEx. */
export async function getVmInfo(client: VimCaller, vm: MoRef): Promise<VmInfo> {
  const p = await getProperties(client, vm, ['name', 'config', 'runtime.powerState', 'snapshot', 'layoutEx']);
  const config = p.config as VirtualMachineConfigInfo | undefined;
  if (!config) throw VSphereError.client('NOT_FOUND', `VM ${vm.value} has no config (is it being created?)`);
  return {
    ref: vm,
    name: p.name as string,
    config,
    powerState: p['runtime.powerState'] as PowerState,
    snapshot: p.snapshot as VirtualMachineSnapshotInfo | undefined,
    layoutEx: p.layoutEx as VirtualMachineFileLayoutEx | undefined,
    disks: vmDisks(config.hardware.device ?? []),
  };
}

export async function getVmConfig(client: VimCaller, vm: MoRef): Promise<VirtualMachineConfigInfo> {
  const c = await getProperty<VirtualMachineConfigInfo>(client, vm, 'config');
  if (!c) throw VSphereError.client('NOT_FOUND', `VM ${vm.value} has no config`);
  return c;
}

export async function getPowerState(client: VimCaller, vm: MoRef): Promise<PowerState> {
  return (await getProperty<PowerState>(client, vm, 'runtime.powerState'))!;
}

export const isVirtualDisk = (d: VirtualDevice): d is VirtualDisk => d._type === 'VirtualDisk';

/** The VM's disks: the file to open now (incl. the delta's sequence number) and the chain from the backing's parents. */
export function vmDisks(devices: VirtualDevice[]): VmDisk[] {
  return devices.filter(isVirtualDisk).map((d) => {
    const b = (d.backing ?? {}) as VirtualDiskFlatVer2BackingInfo & VirtualDiskRawDiskMappingVer1BackingInfo;
    const chain: string[] = [];
    for (let x: { fileName?: string; parent?: unknown } | undefined = b; x?.fileName; x = x.parent as typeof x) chain.push(x.fileName);
    const disk: VmDisk = {
      key: d.key,
      label: d.deviceInfo?.label,
      controllerKey: d.controllerKey,
      unitNumber: d.unitNumber,
      capacityInBytes: d.capacityInBytes ?? d.capacityInKB * 1024,
      backingType: b._type,
      fileName: b.fileName ?? '',
      chain,
      changeId: b.changeId,
      thinProvisioned: b.thinProvisioned === true,
    };
    if (b._type === 'VirtualDiskRawDiskMappingVer1BackingInfo') {
      disk.rdm = { lunUuid: b.lunUuid, deviceName: b.deviceName, compatibilityMode: b.compatibilityMode };
    }
    return disk;
  });
}

/** layoutEx disk chains as file names (descriptors only), in the order vCenter lists them. */
export function layoutDiskChains(layout: VirtualMachineFileLayoutEx | undefined): Map<number, string[]> {
  const files = new Map((layout?.file ?? []).map((f) => [f.key, f]));
  const out = new Map<number, string[]>();
  for (const d of layout?.disk ?? []) {
    const names: string[] = [];
    for (const unit of d.chain ?? []) {
      for (const k of unit.fileKey ?? []) {
        const f = files.get(k);
        if (f && f.type === 'diskDescriptor') names.push(f.name);
      }
    }
    out.set(d.key, names);
  }
  return out;
}

// ---------------------------------------------------------------- power

export interface PowerOptions extends TaskOptions {
  host?: MoRef;
}

/** Powers on; a VM already on is left as it is. */
export async function powerOn(client: VimCaller, vm: MoRef, opts: PowerOptions = {}): Promise<void> {
  if ((await getPowerState(client, vm)) === 'poweredOn') return;
  await runTask(client, 'PowerOnVM_Task', vm, { host: opts.host }, opts);
}

export interface PowerOffOptions extends TaskOptions {
  /** Try ShutdownGuest first (needs VMware Tools). Default true. */
  guestShutdown?: boolean;
  /** How long to wait for the guest to power off (ms). Default 5 minutes. */
  guestTimeoutMs?: number;
  /** Poll period of the power state during a guest shutdown (ms). Default 1 s. */
  guestPollMs?: number;
  /** Power off hard when the guest shutdown fails or times out. Default true. */
  hardOff?: boolean;
}

/** How a VM ended up off. */
export type PowerOffResult = 'alreadyOff' | 'guestShutdown' | 'hardOff';

/** Powers off: guest shutdown first (if asked), then a hard power off (if allowed). */
export async function powerOff(client: VimCaller, vm: MoRef, opts: PowerOffOptions = {}): Promise<PowerOffResult> {
  const state = await getPowerState(client, vm);
  if (state === 'poweredOff') return 'alreadyOff';
  const hardOff = opts.hardOff ?? true;
  let guestError: VSphereError | undefined;
  if ((opts.guestShutdown ?? true) && state === 'poweredOn') {
    try {
      await client.call('ShutdownGuest', vm);
      const deadline = Date.now() + (opts.guestTimeoutMs ?? 5 * 60_000);
      for (;;) {
        if ((await getPowerState(client, vm)) === 'poweredOff') return 'guestShutdown';
        if (Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, Math.min(opts.guestPollMs ?? 1_000, Math.max(0, deadline - Date.now()))));
      }
      guestError = VSphereError.client('SHUTDOWN_TIMEOUT', `ShutdownGuest on ${vm.value}: the guest did not power off within ${opts.guestTimeoutMs ?? 300_000} ms`);
    } catch (err) {
      if (!(err instanceof VSphereError)) throw err;
      guestError = err;
    }
    if (!hardOff) throw guestError;
  }
  try {
    await runTask(client, 'PowerOffVM_Task', vm, {}, opts);
  } catch (err) {
    // Raced with the guest finishing its shutdown: off is off.
    if (err instanceof VSphereError && err.faultType === 'InvalidPowerState' && (await getPowerState(client, vm)) === 'poweredOff') {
      return guestError ? 'guestShutdown' : 'hardOff';
    }
    throw err;
  }
  return 'hardOff';
}

// ---------------------------------------------------------------- config

export async function reconfigureVm(client: VimCaller, vm: MoRef, spec: VirtualMachineConfigSpec, opts: TaskOptions = {}): Promise<void> {
  await runTask(client, 'ReconfigVM_Task', vm, { spec }, opts);
}

/** Turns changed block tracking on or off (MISSION R3: off during full and SAN restores). */
export async function setChangeTracking(client: VimCaller, vm: MoRef, enabled: boolean, opts: TaskOptions = {}): Promise<void> {
  await reconfigureVm(client, vm, { changeTrackingEnabled: enabled }, opts);
}

export interface CreateVmArgs {
  folder: MoRef;
  config: VirtualMachineConfigSpec;
  pool: MoRef;
  host?: MoRef;
}

/** CreateVM_Task; resolves to the new VM. */
export async function createVm(client: VimCaller, args: CreateVmArgs, opts: TaskOptions = {}): Promise<MoRef> {
  return runTask<MoRef>(client, 'CreateVM_Task', args.folder, { config: args.config, pool: args.pool, host: args.host }, opts);
}

/** Destroy_Task: unregisters the VM and deletes its files. */
export async function destroyVm(client: VimCaller, vm: MoRef, opts: TaskOptions = {}): Promise<void> {
  await runTask(client, 'Destroy_Task', vm, {}, opts);
}

/**
 * QueryConfigTarget through the VM's or a compute resource's environment
 * browser: datastores, networks, and the free LUNs (scsiDisk) whose
 * canonicalName/uuid build an RDM backing (MISSION R4).
 */
export async function queryConfigTarget(client: VimCaller, on: MoRef, host?: MoRef): Promise<ConfigTarget> {
  const eb = await getProperty<MoRef>(client, on, 'environmentBrowser');
  if (!eb) throw VSphereError.client('NOT_FOUND', `${on.type} ${on.value} has no environment browser`);
  return ((await client.call<ConfigTarget | undefined>('QueryConfigTarget', eb, { host })) ?? {}) as ConfigTarget;
}

/** The free LUNs of a config target as RDM backing inputs. */
export function configTargetLuns(ct: ConfigTarget): Array<{ deviceName: string; lunUuid: string; capacityInKB: number | undefined; path: string }> {
  return (ct.scsiDisk ?? []).map((s) => {
    const cap = s.disk.capacity as DataObject | undefined;
    const blocks = cap?.block as number | undefined;
    const blockSize = cap?.blockSize as number | undefined;
    const fromDisk = blocks !== undefined && blockSize !== undefined ? (blocks * blockSize) / 1024 : undefined;
    return {
      deviceName: s.disk.canonicalName,
      lunUuid: s.disk.uuid,
      capacityInKB: (s.capacity as number | undefined) ?? fromDisk,
      path: s.name,
    };
  });
}

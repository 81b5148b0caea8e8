// buildCreateSpec: the VirtualMachineConfigSpec of CreateVM_Task for a
// restore as a new VM, from the VirtualMachineConfigInfo saved at backup time
// (MISSION R2, R4, R5). Pure: no I/O; the inputs say what the target has.
import type { MoRef } from '../vsphere/codec';
import { vim25Schema, type Schema } from '../vsphere/schema';
import type { ConfigTarget, VirtualMachineConfigSpec } from '../vsphere/types';
import { DEFAULT_CONTROLLER_KEYS, DEFAULT_DEVICE_TYPES, defaultControllerKey, dropReason, isController } from './devices';
import { ConfigSpecError, ConfigSpecErrorCode } from './errors';
import { filterExtraConfig } from './extra-config';
import { assignTempKeys } from './keys';
import { pruneToSchema } from './prune';
import { chooseRdmLuns, type RdmChoice } from './rdm';
import type {
  BuildCreateSpecInput,
  BuildCreateSpecResult,
  ConfigSpecWarning,
  DiskPlacement,
  NicPlacement,
  Provisioning,
  WarningCode,
} from './types';

type Json = Record<string, unknown>;

const FLAT = 'VirtualDiskFlatVer2BackingInfo';
const RDM = 'VirtualDiskRawDiskMappingVer1BackingInfo';
const EMPTY_CDROM_BACKING = { _type: 'VirtualCdromRemotePassthroughBackingInfo', deviceName: '', exclusive: false };

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const clone = <T>(v: T): T => structuredClone(v);

function pick(o: unknown, keys: readonly string[]): Json | undefined {
  if (!isObj(o)) return undefined;
  const out: Json = {};
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) out[k] = clone(o[k]);
  return Object.keys(out).length ? out : undefined;
}

function omit(o: unknown, keys: readonly string[]): Json | undefined {
  if (!isObj(o)) return undefined;
  const out = clone(o);
  for (const k of keys) delete out[k];
  return out;
}

/** The editable fields of ToolsConfigInfo (version, install type and last install are read-only). */
const TOOLS_FIELDS = ['afterPowerOn', 'afterResume', 'beforeGuestStandby', 'beforeGuestShutdown', 'beforeGuestReboot', 'toolsUpgradePolicy', 'syncTimeWithHostAllowed', 'syncTimeWithHost'];
const POWER_OP_FIELDS = ['powerOffType', 'suspendType', 'resetType', 'standbyAction'];
/** ConfigInfo fields copied as they are (same name and type in ConfigSpec). */
const COPIED_FIELDS = [
  'guestId', 'alternateGuestName', 'annotation', 'consolePreferences', 'vcpuConfig', 'memoryHotAddEnabled', 'cpuHotAddEnabled',
  'cpuHotRemoveEnabled', 'latencySensitivity', 'networkShaper', 'swapPlacement', 'vAssertsEnabled', 'firmware', 'maxMksConnections',
  'guestAutoLockEnabled', 'memoryReservationLockedToMax', 'nestedHVEnabled', 'vPMCEnabled', 'messageBusTunnelEnabled',
  'migrateEncryption', 'sgxInfo', 'guestMonitoringModeInfo', 'sevEnabled',
];

function checkDatastoreName(ds: unknown, field: string): string {
  if (typeof ds !== 'string' || ds === '' || /[[\]]/.test(ds)) {
    throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_OPTION, `${field}: "${String(ds)}" is not a datastore name`, { field });
  }
  return ds;
}

const normalizeMac = (m: string) => m.toLowerCase().replace(/-/g, ':');
const normalizeUuid = (u: string) => u.toLowerCase().replace(/[^0-9a-f]/g, '');

/** Builds the CreateVM_Task spec; throws ConfigSpecError when no valid spec exists. */
export function buildCreateSpec(input: BuildCreateSpecInput): BuildCreateSpecResult {
  const schema: Schema = input.schema ?? vim25Schema();
  const config = input.config;
  if (typeof input.name !== 'string' || input.name.trim() === '') {
    throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_OPTION, 'name: the new VM needs a name', { field: 'name' });
  }
  const homeDs = checkDatastoreName(input.datastore, 'datastore');
  const hardware = config.hardware;
  if (!isObj(hardware) || !Array.isArray(hardware.device)) {
    throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_CONFIG, 'the saved config has no hardware.device list', { field: 'hardware.device' });
  }
  const devices = hardware.device as unknown[];
  const byKey = new Map<number, Json>();
  for (const d of devices) {
    if (!isObj(d) || !Number.isInteger(d.key) || typeof d._type !== 'string') {
      throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_CONFIG, `a saved device has no integer key or no _type: ${JSON.stringify(d)?.slice(0, 200)}`);
    }
    if (byKey.has(d.key as number)) throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_CONFIG, `device key ${String(d.key)} appears twice`, { deviceKey: d.key as number });
    byKey.set(d.key as number, d);
  }

  const warnings: ConfigSpecWarning[] = [];
  const warn = (code: WarningCode, message: string, dev?: Json) => {
    const w: ConfigSpecWarning = { code, message };
    if (dev) {
      w.deviceKey = dev.key as number;
      w.deviceType = dev._type as string;
    }
    warnings.push(w);
  };
  const uuidsKeep = input.uuids === 'keep';
  const macsKeep = input.macAddresses === 'keep';
  checkIdentityCollisions(input, config, devices as Json[], schema, uuidsKeep, macsKeep);

  // 1. Which devices go in: default ones never, host-bound ones are dropped with a warning.
  const realKeys = new Map<number, number>(); // saved default controller key -> real key on the new VM
  let kept: Json[] = [];
  const dropped = new Set<number>();
  for (const d of byKey.values()) {
    const key = d.key as number;
    if (DEFAULT_DEVICE_TYPES.has(d._type as string)) {
      const rk = defaultControllerKey(d, input.defaultControllerKeys);
      if (rk !== undefined) realKeys.set(key, rk);
      continue;
    }
    // Disks always get a new backing; NICs do when a network is chosen for them.
    const replaced = d._type === 'VirtualDisk' || input.networks?.[key] !== undefined;
    const why = dropReason(d, schema, input.fileExists, replaced);
    if (why) {
      warn(why.code, why.message, d);
      dropped.add(key);
      continue;
    }
    kept.push(d);
  }
  // A default controller the saved list does not carry, referred to by its usual key.
  const dk = { ...DEFAULT_CONTROLLER_KEYS, ...input.defaultControllerKeys };
  const usualDefault = new Map<number, number>([[200, dk.ide0], [201, dk.ide1], [300, dk.ps2], [100, dk.pci], [400, dk.sio]]);
  for (let changed = true; changed; ) {
    changed = false;
    kept = kept.filter((d) => {
      const ck = d.controllerKey;
      if (ck === undefined || ck === null) return true;
      if (typeof ck !== 'number') throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_CONFIG, `device ${String(d.key)}: controllerKey is not a number`, { deviceKey: d.key as number });
      if (dropped.has(ck)) {
        if (d._type === 'VirtualDisk') {
          throw new ConfigSpecError(ConfigSpecErrorCode.UNSUPPORTED_DISK, `disk ${String(d.key)} sits on controller ${ck}, which cannot be recreated`, { deviceKey: d.key as number });
        }
        warn('DEVICE_DROPPED_CONTROLLER', `its controller ${ck} was left out`, d);
        dropped.add(d.key as number);
        changed = true;
        return false;
      }
      const c = byKey.get(ck);
      if (c ? !isController(schema, c._type) : !usualDefault.has(ck)) {
        throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_CONFIG, `device ${String(d.key)} refers to controller ${ck}, which is not a controller of the saved config`, { deviceKey: d.key as number });
      }
      if (!c) realKeys.set(ck, usualDefault.get(ck)!);
      return true;
    });
  }

  // 2. Temporary keys, and every controllerKey remapped to its controller's new key.
  const tempKeys = assignTempKeys(kept.map((d) => d.key as number), input.tempKeys);
  const newControllerKey = (ck: unknown): number | undefined => (typeof ck === 'number' ? realKeys.get(ck) ?? tempKeys.get(ck) : undefined);

  // 3. RDM LUNs (R4), all disks together so two never share a LUN.
  const savedRdms = kept
    .filter((d) => d._type === 'VirtualDisk' && isObj(d.backing) && d.backing._type === RDM)
    .map((d) => {
      const b = d.backing as Json;
      return { key: d.key as number, deviceName: str(b.deviceName), lunUuid: str(b.lunUuid), capacityInKB: diskCapacity(d).kb };
    });
  const rdm = savedRdms.length ? chooseRdmLuns(savedRdms, input.configTarget, input.rdmLuns) : new Map<number, RdmChoice>();

  // 4. The device changes.
  const deviceChange: Json[] = [];
  const disks: DiskPlacement[] = [];
  const nics: NicPlacement[] = [];
  let encrypted = isObj(config.keyId);
  for (const saved of kept) {
    const key = saved.key as number;
    const dev = baseDevice(saved, tempKeys.get(key)!, newControllerKey(saved.controllerKey), schema);
    const change: Json = { operation: 'add', device: dev };
    if (saved._type === 'VirtualDisk') {
      const ds = checkDatastoreName(input.diskDatastores?.[key] ?? homeDs, `diskDatastores[${key}]`);
      checkDatastoreInTarget(input.configTarget, ds);
      const p = buildDisk(saved, dev, ds, provisioningFor(input.provisioning, key), rdm.get(key), warn);
      encrypted ||= p.encrypted;
      if (typeof saved.controllerKey !== 'number') {
        throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_CONFIG, `disk ${key} has no controllerKey`, { deviceKey: key });
      }
      // A controller missing from the saved list can only be a default one by its usual key (200/201: IDE).
      const ctl = byKey.get(saved.controllerKey);
      disks.push({
        ...p.placement,
        savedKey: key,
        tempKey: dev.key as number,
        controllerKey: dev.controllerKey as number,
        controllerType: (ctl?._type as string | undefined) ?? (saved.controllerKey === 200 || saved.controllerKey === 201 ? 'VirtualIDEController' : 'unknown'),
        busNumber: num(ctl?.busNumber) ?? (saved.controllerKey === 201 ? 1 : 0),
        unitNumber: num(saved.unitNumber),
      });
      change.fileOperation = 'create';
    } else if (schema.isSubtype(saved._type as string, 'VirtualEthernetCard')) {
      nics.push(buildNic(saved, dev, input, macsKeep, warn));
    } else if (saved._type === 'VirtualCdrom') {
      fixCdrom(saved, dev, input.configTarget, input.fileExists, warn);
    }
    deviceChange.push(change);
  }

  // 5. The rest of the spec, field by field from ConfigInfo.
  const spec: Json = { name: input.name };
  if (config.version !== undefined) spec.version = config.version;
  if (uuidsKeep) {
    if (config.uuid !== undefined) spec.uuid = config.uuid;
    if (config.instanceUuid !== undefined) spec.instanceUuid = config.instanceUuid;
  }
  for (const f of COPIED_FIELDS) if (config[f] !== undefined && config[f] !== null) spec[f] = clone(config[f]);
  spec.files = { vmPathName: `[${homeDs}]` };
  checkDatastoreInTarget(input.configTarget, homeDs);
  const tools = pick(config.tools, TOOLS_FIELDS);
  if (tools) spec.tools = tools;
  const flags = omit(config.flags, ['faultToleranceType']);
  if (flags && Object.keys(flags).length) spec.flags = flags;
  const powerOp = pick(config.defaultPowerOps, POWER_OP_FIELDS);
  if (powerOp) spec.powerOpInfo = powerOp;
  if (hardware.numCPU !== undefined) spec.numCPUs = hardware.numCPU;
  if (hardware.numCoresPerSocket !== undefined) spec.numCoresPerSocket = hardware.numCoresPerSocket;
  if (hardware.memoryMB !== undefined) spec.memoryMB = hardware.memoryMB;
  if (hardware.virtualICH7MPresent !== undefined) spec.virtualICH7MPresent = hardware.virtualICH7MPresent;
  if (hardware.virtualSMCPresent !== undefined) spec.virtualSMCPresent = hardware.virtualSMCPresent;
  spec.deviceChange = deviceChange;
  for (const f of ['cpuAllocation', 'memoryAllocation'] as const) {
    const a = omit(config[f], ['overheadLimit']);
    if (a) spec[f] = a;
  }
  if (Array.isArray(config.cpuFeatureMask) && config.cpuFeatureMask.length) {
    spec.cpuFeatureMask = config.cpuFeatureMask.map((info) => ({ operation: 'add', info: clone(info) }));
  }
  const extra = filterExtraConfig(config.extraConfig);
  if (extra.kept.length) spec.extraConfig = extra.kept;
  if (isObj(config.bootOptions)) {
    const boot = clone(config.bootOptions);
    if (Array.isArray(boot.bootOrder) && boot.bootOrder.length) {
      warn('BOOT_ORDER_DROPPED', 'the saved boot order refers to the old device keys; set it again once the VM exists');
    }
    delete boot.bootOrder;
    if (Object.keys(boot).length) spec.bootOptions = boot;
  }
  spec.changeTrackingEnabled = input.cbt ?? false;

  // What binds to the old VM or its host, and is left out with a warning.
  if (config.vAppConfig) warn('VAPP_CONFIG_DROPPED', 'vApp options (products, properties, OVF environment) are not recreated');
  if (config.ftInfo || config.repConfig) warn('FT_OR_REPLICATION_DROPPED', 'fault tolerance / vSphere Replication settings belong to the old VM');
  if (hasAffinity(config.cpuAffinity) || hasAffinity(config.memoryAffinity)) warn('AFFINITY_DROPPED', 'CPU/memory affinity names resources of the old host');
  if (encrypted) warn('ENCRYPTION_DROPPED', 'the saved VM was encrypted; the new VM and its disks are created unencrypted');
  if (hasValues(config.npivNodeWorldWideName) || hasValues(config.npivPortWorldWideName)) warn('NPIV_DROPPED', 'NPIV world wide names belong to the old VM');

  // 6. Fit everything to the shipped schema (a newer vSphere may have saved fields it does not know).
  const droppedFields: string[] = [];
  const fitted = pruneToSchema(schema, spec, 'VirtualMachineConfigSpec', 'spec', droppedFields) as VirtualMachineConfigSpec;
  for (const path of droppedFields) warn('FIELD_DROPPED', `${path} is not in the shipped vim25 schema`);

  return { spec: fitted, warnings, disks, nics, tempKeys, droppedExtraConfig: extra.dropped };
}

const hasAffinity = (a: unknown) => isObj(a) && Array.isArray(a.affinitySet) && a.affinitySet.length > 0;
const hasValues = (a: unknown) => Array.isArray(a) && a.length > 0;

function provisioningFor(p: BuildCreateSpecInput['provisioning'], key: number): Provisioning | undefined {
  if (p === undefined) return undefined;
  if (typeof p === 'string') return p;
  return p[key];
}

function diskCapacity(d: Json): { kb: number; bytes: number | undefined } {
  const kb = num(d.capacityInKB);
  const bytes = num(d.capacityInBytes);
  if (kb !== undefined) return { kb, bytes };
  if (bytes !== undefined) return { kb: Math.ceil(bytes / 1024), bytes };
  throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_CONFIG, `disk ${String(d.key)} has neither capacityInKB nor capacityInBytes`, { deviceKey: d.key as number });
}

/** The saved device with its new key and controller key, minus what binds it to the old VM. */
function baseDevice(saved: Json, tempKey: number, controllerKey: number | undefined, schema: Schema): Json {
  const dev = clone(saved);
  dev.key = tempKey;
  if (controllerKey === undefined) delete dev.controllerKey;
  else dev.controllerKey = controllerKey;
  delete dev.deviceInfo; // labels and summaries are vCenter's (and name the old network, file, ...)
  if (isController(schema, saved._type)) delete dev.device; // R5: leave out `device` of every controller
  if (schema.isSubtype(saved._type as string, 'VirtualSCSIController')) dev.sharedBus ??= 'noSharing'; // required by the schema
  if (isObj(dev.connectable)) {
    delete dev.connectable.status;
    dev.connectable.connected ??= false;
    dev.connectable.allowGuestControl ??= true;
    dev.connectable.startConnected ??= false;
  }
  if (isObj(dev.backing)) {
    // File backings: the datastore path says where; a moref from the old vCenter may not exist here.
    delete dev.backing.datastore;
    delete dev.backing.backingObjectId;
  }
  return dev;
}

function buildDisk(
  saved: Json,
  dev: Json,
  ds: string,
  prov: Provisioning | undefined,
  lun: RdmChoice | undefined,
  warn: (c: WarningCode, m: string, d?: Json) => void,
): { placement: Pick<DiskPlacement, 'capacityInKB' | 'capacityBytes' | 'datastore' | 'fileName' | 'diskMode' | 'provisioning' | 'rdm'>; encrypted: boolean } {
  const b = isObj(saved.backing) ? saved.backing : {};
  const cap = diskCapacity(saved);
  const fileName = `[${ds}]`;
  for (const f of ['diskObjectId', 'vDiskId', 'nativeUnmanagedLinkedClone', 'vFlashCacheConfigInfo', 'iofilter']) delete dev[f];
  if (Array.isArray(saved.iofilter) && saved.iofilter.length) warn('IOFILTER_DROPPED', `I/O filters ${saved.iofilter.join(', ')} are not attached`, saved);
  dev.capacityInKB = cap.kb;
  if (cap.bytes !== undefined) dev.capacityInBytes = cap.bytes;
  const diskMode = str(b.diskMode);
  const encrypted = isObj(b.keyId);
  let backing: Json;
  let rdmPlacement: DiskPlacement['rdm'];
  let provisioning: Provisioning | undefined;
  if (b._type === RDM) {
    backing = { _type: RDM, fileName, deviceName: lun!.deviceName, lunUuid: lun!.lunUuid };
    if (b.compatibilityMode !== undefined) backing.compatibilityMode = b.compatibilityMode;
    if (diskMode !== undefined) backing.diskMode = diskMode;
    if (b.sharing !== undefined) backing.sharing = b.sharing;
    rdmPlacement = { deviceName: lun!.deviceName, lunUuid: lun!.lunUuid, compatibilityMode: str(b.compatibilityMode), matchedBy: lun!.matchedBy };
    if (lun!.matchedBy === 'capacity') warn('RDM_LUN_BY_CAPACITY', `LUN ${lun!.deviceName} chosen by capacity alone`, saved);
  } else {
    if (b._type !== FLAT) warn('DISK_BACKING_CONVERTED', `${String(b._type ?? 'no backing')} is recreated as a flat disk (${FLAT})`, saved);
    backing = { _type: FLAT, fileName, diskMode: diskMode ?? 'persistent' };
    for (const f of ['split', 'writeThrough', 'thinProvisioned', 'eagerlyScrub', 'digestEnabled', 'sharing']) if (b[f] !== undefined && b[f] !== null) backing[f] = b[f];
    if (b._type !== FLAT) {
      delete backing.split;
      delete backing.digestEnabled;
    }
    if (prov === 'thin') Object.assign(backing, { thinProvisioned: true, eagerlyScrub: false });
    else if (prov === 'thick-lazy') Object.assign(backing, { thinProvisioned: false, eagerlyScrub: false });
    else if (prov === 'thick-eager') Object.assign(backing, { thinProvisioned: false, eagerlyScrub: true });
    provisioning = prov ?? (backing.thinProvisioned === true ? 'thin' : backing.eagerlyScrub === true ? 'thick-eager' : backing.thinProvisioned === false ? 'thick-lazy' : undefined);
    backing.parent = null; // R5: a new disk has no parent (the codec writes no <parent>)
  }
  dev.backing = backing;
  const placement: ReturnType<typeof buildDisk>['placement'] = {
    capacityInKB: cap.kb,
    capacityBytes: cap.bytes ?? cap.kb * 1024,
    datastore: ds,
    fileName,
    diskMode,
    provisioning,
  };
  if (rdmPlacement) placement.rdm = rdmPlacement;
  return { placement, encrypted };
}

function buildNic(saved: Json, dev: Json, input: BuildCreateSpecInput, macsKeep: boolean, warn: (c: WarningCode, m: string, d?: Json) => void): NicPlacement {
  const key = saved.key as number;
  delete dev.externalId; // an NSX/external id of the old VM's port
  const choice = input.networks?.[key];
  const ct = input.configTarget;
  if (choice) {
    dev.backing = networkBacking(choice.name, choice.network, ct, key);
  } else if (isObj(dev.backing)) {
    const b = dev.backing;
    if (b._type === 'VirtualEthernetCardNetworkBackingInfo' && ct?.network?.length) {
      checkNetworkInTarget(ct, str(b.deviceName) ?? '', key);
    }
    if (b._type === 'VirtualEthernetCardDistributedVirtualPortBackingInfo' && isObj(b.port)) {
      // The old VM's port and its connection cookie: the new VM gets its own port in the portgroup.
      delete b.port.portKey;
      delete b.port.connectionCookie;
      if (ct?.distributedVirtualPortgroup?.length) {
        const pg = str(b.port.portgroupKey);
        const sw = str(b.port.switchUuid);
        const ok = ct.distributedVirtualPortgroup.some((p) => p.portgroupKey === pg && p.switchUuid === sw);
        if (!ok) throw new ConfigSpecError(ConfigSpecErrorCode.NETWORK_UNAVAILABLE, `NIC ${key}: distributed portgroup ${pg ?? '?'} is not in the config target; choose a network`, { deviceKey: key, value: pg });
      }
    }
  }
  const savedMac = str(saved.macAddress);
  let addressType: 'manual' | 'generated' = 'generated';
  delete dev.macAddress;
  if (macsKeep) {
    if (savedMac) {
      addressType = 'manual';
      dev.macAddress = normalizeMac(savedMac);
      if (/^00:50:56:[89ab][0-9a-f]:/.test(dev.macAddress as string)) {
        warn('MAC_OUTSIDE_STATIC_RANGE', `${String(dev.macAddress)} is a vCenter-generated address; vCenter accepts manual VMware addresses only in 00:50:56:00:00:00-00:50:56:3f:ff:ff`, saved);
      }
    } else {
      warn('MAC_NOT_SAVED', 'no saved MAC address to keep; a new one is generated', saved);
    }
  }
  dev.addressType = addressType;
  const b = isObj(dev.backing) ? dev.backing : undefined;
  const port = isObj(b?.port) ? b.port : undefined;
  return {
    savedKey: key,
    tempKey: dev.key as number,
    deviceType: saved._type as string,
    backingType: str(b?._type),
    network: str(b?.deviceName) ?? str(port?.portgroupKey) ?? str(b?.opaqueNetworkId),
    addressType,
    macAddress: str(dev.macAddress),
    savedMacAddress: savedMac,
  };
}

/** A chosen network: a distributed portgroup when the config target says the name is one, else a network backing. */
function networkBacking(name: string, network: MoRef | undefined, ct: ConfigTarget | undefined, key: number): Json {
  const pg = ct?.distributedVirtualPortgroup?.find((p) => p.portgroupName === name && p.uplinkPortgroup !== true);
  if (pg) {
    return { _type: 'VirtualEthernetCardDistributedVirtualPortBackingInfo', port: { switchUuid: pg.switchUuid, portgroupKey: pg.portgroupKey } };
  }
  if (ct?.network?.length || ct?.distributedVirtualPortgroup?.length) checkNetworkInTarget(ct, name, key);
  const b: Json = { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: name };
  const ref = network ?? ct?.network?.find((n) => n.name === name || n.network?.name === name)?.network?.network;
  if (ref) b.network = ref;
  return b;
}

function checkNetworkInTarget(ct: ConfigTarget, name: string, key: number): void {
  if (!(ct.network ?? []).some((n) => n.name === name || n.network?.name === name)) {
    throw new ConfigSpecError(ConfigSpecErrorCode.NETWORK_UNAVAILABLE, `NIC ${key}: network "${name}" is not in the config target; choose one with networks`, { deviceKey: key, value: name });
  }
}

function checkDatastoreInTarget(ct: ConfigTarget | undefined, ds: string): void {
  if (!ct?.datastore?.length) return;
  if (!ct.datastore.some((d) => d.name === ds || d.datastore?.name === ds)) {
    throw new ConfigSpecError(ConfigSpecErrorCode.DATASTORE_UNAVAILABLE, `datastore "${ds}" is not in the config target`, { value: ds });
  }
}

/** A CD-ROM whose medium the target lacks stays, empty and not connected at power on. */
function fixCdrom(saved: Json, dev: Json, ct: ConfigTarget | undefined, fileExists: ((p: string) => boolean) | undefined, warn: (c: WarningCode, m: string, d?: Json) => void): void {
  const b = isObj(saved.backing) ? saved.backing : undefined;
  const type = str(b?._type);
  let why: { code: WarningCode; message: string } | undefined;
  if (type === 'VirtualCdromIsoBackingInfo') {
    const file = str(b?.fileName);
    if (fileExists && file && !fileExists(file)) why = { code: 'CDROM_ISO_MISSING', message: `ISO ${file} does not exist on the target; the CD-ROM is left empty` };
  } else if (type === 'VirtualCdromAtapiBackingInfo' || type === 'VirtualCdromPassthroughBackingInfo') {
    const name = str(b?.deviceName);
    const cdRoms = (ct?.cdRom as Array<{ name?: string }> | undefined) ?? [];
    if (!name || !cdRoms.some((c) => c.name === name)) why = { code: 'CDROM_HOST_DEVICE_UNAVAILABLE', message: `host drive ${name ?? '?'} is not on the target; the CD-ROM is left empty` };
  }
  if (!why) return;
  warn(why.code, why.message, saved);
  dev.backing = { ...EMPTY_CDROM_BACKING };
  const c = isObj(dev.connectable) ? dev.connectable : {};
  dev.connectable = { ...c, startConnected: false, connected: false, allowGuestControl: c.allowGuestControl ?? true };
}

/** Refuses to keep a UUID or a MAC that a VM on the target already has. */
function checkIdentityCollisions(input: BuildCreateSpecInput, config: Json, devices: Json[], schema: Schema, uuidsKeep: boolean, macsKeep: boolean): void {
  const ex = input.existingUuids;
  if (uuidsKeep && ex) {
    const inst = str(config.instanceUuid);
    if (inst && ex.instanceUuids.some((u) => normalizeUuid(u) === normalizeUuid(inst))) {
      throw new ConfigSpecError(ConfigSpecErrorCode.UUID_COLLISION, `instance UUID ${inst} is in use on the target; restore with uuids: 'new'`, { field: 'instanceUuid', value: inst });
    }
    const bios = str(config.uuid);
    if (bios && ex.biosUuids.some((u) => normalizeUuid(u) === normalizeUuid(bios))) {
      throw new ConfigSpecError(ConfigSpecErrorCode.UUID_COLLISION, `BIOS UUID ${bios} is in use on the target; restore with uuids: 'new'`, { field: 'uuid', value: bios });
    }
  }
  if (!macsKeep) return;
  const inUse = new Set((ex?.macs ?? []).map(normalizeMac));
  const seen = new Set<string>();
  for (const d of devices) {
    if (typeof d._type !== 'string' || !schema.complex.has(d._type) || !schema.isSubtype(d._type, 'VirtualEthernetCard')) continue;
    const mac = str(d.macAddress);
    if (!mac) continue;
    const m = normalizeMac(mac);
    if (inUse.has(m) || seen.has(m)) {
      throw new ConfigSpecError(ConfigSpecErrorCode.MAC_COLLISION, `MAC ${m} of NIC ${String(d.key)} is ${inUse.has(m) ? 'in use on the target' : 'used twice in the saved config'}; restore with macAddresses: 'regenerate'`, { deviceKey: d.key as number, value: m });
    }
    seen.add(m);
  }
}

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { verifyChain, isBackupError, type BackupRepository, type PointManifest } from '../backup';
import { localDatastoreDir, type Config } from '../config';
import { JobError, permanent } from '../errors';
import * as configspec from '../configspec';
import * as vsphere from '../vsphere';

// The checks a restore makes before it touches anything, as functions of a
// vSphere client, the repository and the configuration: the worker's
// preflight steps run them (then take the VM lock, record warnings), and a
// dry run runs them alone and reports what a restore would do.

export type VddkTransport = 'san' | 'hotadd' | 'nbdssl' | 'nbd';
export const ADVANCED_TRANSPORTS: VddkTransport[] = ['san', 'hotadd', 'nbdssl'];
export const VDDK_TRANSPORTS: VddkTransport[] = ['san', 'hotadd', 'nbdssl', 'nbd'];
/** extraConfig key marking a VM as created by a job: a resumed job adopts it. */
export const JOB_MARKER = 'vmrestore.job';

export interface InPlaceRequest {
  vcenter: string;
  source: { vm: string; point: string };
  target: { vm: string };
  options: {
    transports: string[];
    powerOn?: boolean;
    gracefulShutdownSeconds: number;
    removeExistingSnapshots: boolean;
    incrementalOrder: 'backward' | 'forward';
    /** Per saved disk key, the VDDK transports to try for that disk (overrides the thin/thick rule). */
    diskTransports?: Record<string, string[]>;
    /** quick_rollback: write only what CBT says changed since the point (falls back to full, with the reason). */
    mode: 'full' | 'quick_rollback';
    /** Read the written areas back through the target and compare them with the backup (default false in place). */
    verify: boolean;
    /** Bandwidth cap of this job (MiB/s); absent: none. */
    maxMBps?: number;
    /** Check every block's SHA-256 of the chain before power off (default true, false for quick_rollback). */
    verifyBackup: boolean;
  };
}

export interface NewVmRequest {
  vcenter: string;
  source: { vm: string; point: string };
  target: { name?: string; folder?: string; resourcePool?: string; host?: string; datastore?: string; diskDatastores?: Record<string, string>; diskProvisioning?: Record<string, 'thin' | 'thick-lazy' | 'thick-eager'>; networks?: Record<string, string> };
  options: {
    transports: string[];
    powerOn: boolean;
    incrementalOrder: 'backward' | 'forward';
    macAddresses: 'keep' | 'regenerate';
    uuids: 'keep' | 'new';
    provisioning?: 'thin' | 'thick-lazy' | 'thick-eager';
    /** Per saved disk key, the VDDK transports to try for that disk (overrides the thin/thick rule). */
    diskTransports?: Record<string, string[]>;
    /** Read the written areas back through the target and compare them with the backup (default true for a new VM). */
    verify: boolean;
    /** Bandwidth cap of this job (MiB/s); absent: none. */
    maxMBps?: number;
  };
}

type Raw = Record<string, any>;

export function inPlaceRequest(request: unknown): InPlaceRequest {
  const r = request as Raw;
  const o = (r.options ?? {}) as Raw;
  return {
    vcenter: r.vcenter,
    source: r.source,
    target: r.target,
    options: {
      transports: o.transports ?? ['nbdssl', 'nbd'],
      ...(o.powerOn !== undefined ? { powerOn: o.powerOn } : {}),
      gracefulShutdownSeconds: o.gracefulShutdownSeconds ?? 0,
      removeExistingSnapshots: o.removeExistingSnapshots ?? false,
      incrementalOrder: o.incrementalOrder ?? 'backward',
      ...(o.diskTransports ? { diskTransports: o.diskTransports } : {}),
      mode: o.mode ?? 'full',
      verify: o.verify ?? false,
      verifyBackup: o.verifyBackup ?? (o.mode ?? 'full') !== 'quick_rollback',
      ...(o.maxMBps ? { maxMBps: o.maxMBps } : {}),
    },
  };
}

export function newVmRequest(request: unknown): NewVmRequest {
  const r = request as Raw;
  const o = (r.options ?? {}) as Raw;
  return {
    vcenter: r.vcenter,
    source: r.source,
    target: r.target ?? {},
    options: {
      transports: o.transports ?? ['nbdssl', 'nbd'],
      powerOn: o.powerOn ?? true,
      incrementalOrder: o.incrementalOrder ?? 'backward',
      macAddresses: o.macAddresses ?? 'regenerate',
      uuids: o.uuids ?? 'new',
      verify: o.verify ?? true,
      ...(o.maxMBps ? { maxMBps: o.maxMBps } : {}),
      ...(o.diskTransports ? { diskTransports: o.diskTransports } : {}),
      ...(o.provisioning ? { provisioning: o.provisioning } : {}),
    },
  };
}

/** "[LocalDS_0] vm/vm-000001.vmdk" → { datastore, path } */
export function parseDatastorePath(p: string): { datastore: string; path: string } {
  const m = /^\[([^\]]+)\]\s*(.+)$/.exec(p);
  if (!m) throw permanent('DISK_PATH_INVALID', `disk file "${p}" is not a datastore path`);
  return { datastore: m[1]!, path: m[2]! };
}

/** Backup errors are about the data: retrying will not fix them. */
export function backupJobError(err: unknown): unknown {
  return isBackupError(err) ? new JobError((err as { code: string }).code, (err as Error).message, true, { cause: err }) : err;
}

/** The point, with its chain checked (structure, parents, sizes; block checksums are checked again as each block is written). */
export async function checkedPoint(repo: BackupRepository | null, source: { vm: string; point: string }): Promise<{ point: PointManifest; chain: string[] }> {
  if (!repo) throw permanent('BACKUP_REPOSITORY_NOT_CONFIGURED', 'no backup repository is configured (VMRESTORE_BACKUP_ROOTS)');
  const point = await repo.getPoint(source.vm, source.point).catch((e) => Promise.reject(backupJobError(e)));
  const report = await verifyChain(repo, source.vm, source.point, { skipChecksums: true });
  if (!report.ok) throw backupJobError(report.errors[0]);
  return { point, chain: report.chain };
}

function chooseTarget(config: Config, wanted: string[], fileReachable: boolean): { target: 'file' | 'vddk'; vddkTransports: VddkTransport[] } {
  const vddkTransports = wanted.filter((t): t is VddkTransport => (VDDK_TRANSPORTS as string[]).includes(t));
  const fileOk = wanted.includes('file') && fileReachable;
  const vddkOk = vddkTransports.length > 0 && config.restore.vddkLibDir !== null;
  if (fileOk && (wanted[0] === 'file' || !vddkOk)) return { target: 'file', vddkTransports };
  if (vddkOk) return { target: 'vddk', vddkTransports };
  const why = [
    wanted.includes('file') ? 'file: a disk is on a datastore not in VMRESTORE_DATASTORE_PATHS (or is an RDM)' : null,
    vddkTransports.length ? 'VDDK: no VMRESTORE_VDDK_LIB_DIR' : null,
  ].filter(Boolean);
  throw permanent('TRANSPORT_UNAVAILABLE', `no requested transport (${wanted.join(', ')}) can reach these disks: ${why.join('; ')}`);
}

/** The transports a disk's writes may use, and why. */
export interface DiskTransportChoice {
  key: number;
  transports: VddkTransport[];
  reason: string;
}

const SAN_ONLY_THICK = 'thin disk: SAN writes only thick disks';
const SAN_NO_MIX = 'SAN dropped: a SAN restore ends with a revert that would discard the other disks\' writes, so one restore never mixes SAN with other transports';

/**
 * The transports of each disk by rule (pure): SAN only for thick disks,
 * the other requested transports (hotadd, nbdssl, nbd) for thin ones; a
 * per-disk override wins; and never SAN for some disks and not for others.
 */
export function chooseDiskTransports(requested: string[], disks: Array<{ key: number; thin: boolean }>, overrides: Record<string, string[]> = {}): DiskTransportChoice[] {
  const vddk = (list: string[]) => list.filter((t): t is VddkTransport => (VDDK_TRANSPORTS as string[]).includes(t));
  const base = vddk(requested);
  const out = disks.map((d): DiskTransportChoice => {
    const o = overrides[String(d.key)];
    if (o) return { key: d.key, transports: vddk(o), reason: 'options.diskTransports' };
    if (d.thin && base.includes('san')) return { key: d.key, transports: base.filter((t) => t !== 'san'), reason: SAN_ONLY_THICK };
    return { key: d.key, transports: base, reason: d.thin ? 'thin disk: as requested' : 'thick disk: as requested' };
  });
  const someSan = out.some((c) => c.transports.includes('san'));
  const someWithout = out.some((c) => c.transports.length > 0 && !c.transports.includes('san')) || out.some((c) => c.transports.length === 0);
  if (someSan && someWithout) {
    for (const c of out) {
      if (!c.transports.includes('san')) continue;
      const rest = c.transports.filter((t) => t !== 'san');
      if (!rest.length) throw permanent('TRANSPORT_UNAVAILABLE', `disk ${c.key} can only use SAN, but other disks of this restore cannot: ${SAN_NO_MIX}`);
      c.transports = rest;
      c.reason = `${c.reason}; ${SAN_NO_MIX}`;
    }
  }
  for (const c of out) {
    if (!c.transports.length) {
      throw permanent('TRANSPORT_UNAVAILABLE', `no requested transport can write disk ${c.key} (${c.reason}): allow hotadd, nbdssl or nbd, or set options.diskTransports`);
    }
  }
  return out;
}

/** The job's transports: every disk's, in the order requested. */
const unionTransports = (requested: string[], choices: DiskTransportChoice[]): VddkTransport[] =>
  requested.filter((t) => choices.some((c) => c.transports.includes(t as VddkTransport))) as VddkTransport[];

/** The local directories of these datastores on this host (the file target), by name. */
function dirsOf(config: Config, vcenterUrl: string, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of new Set(names)) {
    const dir = localDatastoreDir(config, vcenterUrl, n);
    if (dir) out[n] = dir;
  }
  return out;
}

export interface InPlaceChecks {
  vm: string;
  vmName: string;
  /** Identities checked again by every later step: the same vCenter, the same VM. */
  vcenterInstanceUuid: string | null;
  vmInstanceUuid: string | null;
  powerStateBefore: string;
  target: 'file' | 'vddk';
  vddkTransports: VddkTransport[];
  /** VDDK target: each disk's transports and why (the thin/thick rule). */
  diskTransports: DiskTransportChoice[];
  /** File target: the local directory of each datastore of the VM (VMRESTORE_DATASTORE_PATHS, by vCenter then name). */
  datastoreDirs: Record<string, string>;
  needsSnapshot: boolean;
  snapshotsBefore: number;
  disks: Array<{ key: number; capacityBytes: number; vmCapacityBytes: number; fileName: string }>;
  chain: string[];
}

/** Everything an in-place restore checks before power off (MISSION R1). No side effect. */
export async function checkInPlace(
  client: vsphere.VSphereClient,
  repo: BackupRepository | null,
  config: Config,
  req: InPlaceRequest,
  ownSnapshotName: string | null,
): Promise<InPlaceChecks> {
  const { point, chain } = await checkedPoint(repo, req.source);
  const ref = await vsphere.findVm(client, { moref: req.target.vm });
  const info = await vsphere.getVmInfo(client, ref);
  const snaps = (await vsphere.listSnapshots(client, ref)).all.filter((s) => s.name !== ownSnapshotName);

  // The VM must match the backup disk for disk.
  const vmDisks = info.disks.filter((d) => !d.rdm);
  const disks: InPlaceChecks['disks'] = [];
  for (const d of point.disks) {
    const target = vmDisks.find((v) => v.key === d.key);
    if (!target) throw permanent('DISK_MISMATCH', `the backup's disk ${d.key} is not a disk of ${req.target.vm} (its disks: ${vmDisks.map((v) => v.key).join(', ') || 'none'})`);
    if (target.capacityInBytes < d.capacityBytes) {
      throw permanent('TARGET_DISK_TOO_SMALL', `disk ${d.key} of ${req.target.vm} has ${target.capacityInBytes} bytes, the backup needs ${d.capacityBytes}`);
    }
    disks.push({ key: d.key, capacityBytes: d.capacityBytes, vmCapacityBytes: target.capacityInBytes, fileName: target.fileName });
  }
  if (vmDisks.length !== point.disks.length) {
    throw permanent('DISK_MISMATCH', `${req.target.vm} has ${vmDisks.length} disks, the backup ${point.disks.length}: restore as a new VM instead`);
  }

  const datastoreDirs = dirsOf(config, client.url, vmDisks.map((d) => parseDatastorePath(d.fileName).datastore));
  const fileReachable = vmDisks.every((d) => datastoreDirs[parseDatastorePath(d.fileName).datastore] !== undefined);
  const chosen = chooseTarget(config, req.options.transports, fileReachable);
  const { target } = chosen;
  const diskTransports =
    target === 'vddk' ? chooseDiskTransports(chosen.vddkTransports, point.disks.map((d) => ({ key: d.key, thin: vmDisks.find((v) => v.key === d.key)!.thinProvisioned })), req.options.diskTransports) : [];
  const vddkTransports = target === 'vddk' ? unionTransports(chosen.vddkTransports, diskTransports) : chosen.vddkTransports;
  if (target === 'vddk' && vddkTransports.includes('san') && snaps.length > 0 && !req.options.removeExistingSnapshots) {
    throw permanent('SAN_SNAPSHOTS_PRESENT', `${req.target.vm} has ${snaps.length} snapshot(s); a SAN restore needs them removed: allow it with options.removeExistingSnapshots`);
  }
  return {
    vm: req.target.vm,
    vmName: info.name,
    vcenterInstanceUuid: client.serviceContent.about.instanceUuid ?? null,
    vmInstanceUuid: info.config.instanceUuid ?? null,
    powerStateBefore: info.powerState,
    target,
    vddkTransports,
    diskTransports,
    datastoreDirs,
    needsSnapshot: target === 'vddk' && vddkTransports.some((t) => ADVANCED_TRANSPORTS.includes(t)),
    snapshotsBefore: snaps.length,
    disks,
    chain,
  };
}

export interface NewVmChecks {
  name: string;
  folder: string;
  pool: string;
  host: string | null;
  datastore: string;
  /** The exact CreateVM_Task spec (the video card apart: see `video`). */
  spec: Record<string, unknown>;
  warnings: Array<{ code: string; message: string }>;
  placements: configspec.DiskPlacement[];
  target: 'file' | 'vddk';
  vddkTransports: VddkTransport[];
  /** VDDK target: each disk's transports and why (the thin/thick rule). */
  diskTransports: DiskTransportChoice[];
  /** File target: the local directory of each datastore of the new disks. */
  datastoreDirs: Record<string, string>;
  needsSnapshot: boolean;
  cbtAfter: boolean;
  chain: string[];
  /** The saved video card, applied to the one vCenter gives the new VM. */
  video: Record<string, unknown> | null;
}

/** A VM by name, and whether this job made it (its marker). */
export async function findVmByName(client: vsphere.VSphereClient, name: string, jobId: string | null): Promise<{ ref: vsphere.MoRef; ours: boolean } | null> {
  const all = await vsphere.findAll(client, 'VirtualMachine', ['name', 'config.extraConfig']);
  const hit = all.find((oc) => vsphere.propValue<string>(oc, 'name') === name);
  if (!hit) return null;
  const extra = vsphere.propValue<Array<{ key: string; value: unknown }>>(hit, 'config.extraConfig') ?? [];
  return { ref: hit.obj, ours: jobId !== null && extra.some((o) => o.key === JOB_MARKER && String(o.value) === jobId) };
}

async function firstDatacenterVmFolder(client: vsphere.VSphereClient): Promise<vsphere.MoRef> {
  const dcs = await vsphere.findAll(client, 'Datacenter', ['vmFolder']);
  const folder = dcs[0] ? vsphere.propValue<vsphere.MoRef>(dcs[0], 'vmFolder') : undefined;
  if (!folder) throw permanent('PLACEMENT_NOT_FOUND', 'no datacenter with a VM folder: give target.folder');
  return folder;
}

async function defaultPool(client: vsphere.VSphereClient, host: vsphere.MoRef | null): Promise<vsphere.MoRef> {
  if (host) {
    const parent = await vsphere.getProperty<vsphere.MoRef>(client, host, 'parent');
    const pool = parent ? await vsphere.getProperty<vsphere.MoRef>(client, parent, 'resourcePool') : undefined;
    if (pool) return pool;
  }
  const crs = await vsphere.findAll(client, 'ComputeResource', ['resourcePool']);
  const pool = crs.map((c) => vsphere.propValue<vsphere.MoRef>(c, 'resourcePool')).find(Boolean);
  if (!pool) throw permanent('PLACEMENT_NOT_FOUND', 'no resource pool found: give target.resourcePool');
  return pool;
}

/** A saved disk's provisioning, for disks a per-disk choice leaves as they were. */
function savedProvisioning(config: Record<string, unknown>, key: number): configspec.Provisioning {
  const devices = ((config.hardware as { device?: Array<Record<string, any>> } | undefined)?.device ?? []) as Array<Record<string, any>>;
  const b = devices.find((d) => d.key === key)?.backing ?? {};
  return b.thinProvisioned ? 'thin' : b.eagerlyScrub ? 'thick-eager' : 'thick-lazy';
}

/** Everything a new-VM restore decides before CreateVM (MISSION R2-R5). No side effect. */
export async function checkNewVm(
  client: vsphere.VSphereClient,
  repo: BackupRepository | null,
  config: Config,
  req: NewVmRequest,
  jobId: string | null,
): Promise<NewVmChecks> {
  const { point, chain } = await checkedPoint(repo, req.source);
  const name = req.target.name ?? `${String(point.config.name ?? req.source.vm)}-restored`;
  const existing = await findVmByName(client, name, jobId);
  if (existing && !existing.ours) throw permanent('VM_NAME_TAKEN', `a VM named "${name}" already exists: give target.name`);
  const host = req.target.host ? await vsphere.findHost(client, req.target.host) : null;
  const folder = req.target.folder ? await vsphere.findFolder(client, req.target.folder) : await firstDatacenterVmFolder(client);
  const pool = req.target.resourcePool ? await vsphere.findResourcePool(client, req.target.resourcePool) : await defaultPool(client, host);
  let datastore = req.target.datastore;
  if (!datastore) {
    const best = (await vsphere.listDatastores(client)).filter((d) => d.accessible !== false).sort((a, b) => (b.freeSpace ?? 0) - (a.freeSpace ?? 0))[0];
    if (!best) throw permanent('PLACEMENT_NOT_FOUND', 'no accessible datastore: give target.datastore');
    datastore = best.name;
  }
  const crs = await vsphere.findAll(client, 'ComputeResource', ['name']);
  const configTarget = crs[0] ? await vsphere.queryConfigTarget(client, crs[0].obj, host ?? undefined).catch(() => undefined) : undefined;

  // Identities in use, so that keeping the saved MACs or UUIDs cannot duplicate them.
  let existingUuids: configspec.ExistingIdentities | undefined;
  if (req.options.macAddresses === 'keep' || req.options.uuids === 'keep') {
    const vms = await vsphere.findAll(client, 'VirtualMachine', ['config.instanceUuid', 'config.uuid', 'config.hardware.device']);
    existingUuids = { instanceUuids: [], biosUuids: [], macs: [] };
    for (const oc of vms) {
      const iu = vsphere.propValue<string>(oc, 'config.instanceUuid');
      const bu = vsphere.propValue<string>(oc, 'config.uuid');
      if (iu) existingUuids.instanceUuids.push(iu);
      if (bu) existingUuids.biosUuids.push(bu);
      for (const d of vsphere.propValue<Array<{ macAddress?: string }>>(oc, 'config.hardware.device') ?? []) if (d.macAddress) existingUuids.macs.push(d.macAddress);
    }
  }
  const byKey = <T>(m: Record<string, T> | undefined, f: (v: T) => unknown) =>
    m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [Number(k), f(v)])) : undefined;
  const diskDatastores = byKey(req.target.diskDatastores, (v) => v) as Record<number, string> | undefined;
  const networks = byKey(req.target.networks, (name) => {
    const net = (configTarget?.network ?? []).find((n) => n.network?.name === name);
    return { name, ...(net?.network?.network ? { network: net.network.network } : {}) };
  }) as Record<number, configspec.NetworkChoice> | undefined;

  // Whether an ISO or image file the saved config names is there: its
  // datastore must exist on the target, and when this host mounts it, the file.
  const datastores = new Set((await vsphere.listDatastores(client)).map((d) => d.name));
  const fileExists = (dsPath: string): boolean => {
    const m = /^\[([^\]]+)\]\s*(.*)$/.exec(dsPath);
    if (!m || !datastores.has(m[1]!)) return false;
    const local = localDatastoreDir(config, client.url, m[1]!);
    return local === undefined || existsSync(join(local, m[2]!));
  };

  const built = configspec.buildCreateSpec({
    config: point.config,
    name,
    datastore,
    fileExists,
    ...(diskDatastores ? { diskDatastores } : {}),
    ...(networks ? { networks } : {}),
    ...(existingUuids ? { existingUuids } : {}),
    macAddresses: req.options.macAddresses,
    uuids: req.options.uuids,
    cbt: false, // R3: CBT off while the restore writes; turned back on at the end
    ...(req.target.diskProvisioning
      ? {
          provisioning: Object.fromEntries(
            point.disks.map((d) => [d.key, req.target.diskProvisioning?.[String(d.key)] ?? req.options.provisioning ?? savedProvisioning(point.config, d.key)]),
          ) as Record<number, configspec.Provisioning>,
        }
      : req.options.provisioning
        ? { provisioning: req.options.provisioning }
        : {}),
    ...(configTarget ? { configTarget } : {}),
  });
  const spec = built.spec as Record<string, unknown> & { extraConfig?: unknown[]; deviceChange?: Array<{ device: Record<string, unknown> }> };
  if (jobId) spec.extraConfig = [...(spec.extraConfig ?? []), { _type: 'OptionValue', key: JOB_MARKER, value: jobId }];
  // vCenter gives every new VM a video card: a second one in CreateVM is
  // refused. The saved card's settings are applied to it afterwards.
  const video = (spec.deviceChange ?? []).find((c) => c.device._type === 'VirtualMachineVideoCard')?.device ?? null;
  spec.deviceChange = (spec.deviceChange ?? []).filter((c) => c.device._type !== 'VirtualMachineVideoCard');

  const datastoreDirs = dirsOf(config, client.url, built.disks.map((d) => d.datastore));
  const fileReachable = built.disks.every((d) => !d.rdm && datastoreDirs[d.datastore] !== undefined);
  const chosen = chooseTarget(config, req.options.transports, fileReachable);
  const { target } = chosen;
  const diskTransports =
    target === 'vddk'
      ? chooseDiskTransports(
          chosen.vddkTransports,
          built.disks.map((d) => ({ key: d.savedKey, thin: !d.rdm && (d.provisioning ?? savedProvisioning(point.config, d.savedKey)) === 'thin' })),
          req.options.diskTransports,
        )
      : [];
  const vddkTransports = target === 'vddk' ? unionTransports(chosen.vddkTransports, diskTransports) : chosen.vddkTransports;
  return {
    name,
    folder: folder.value,
    pool: pool.value,
    host: host?.value ?? null,
    datastore,
    spec,
    warnings: built.warnings.map((w) => ({ code: w.code, message: w.message })),
    placements: built.disks,
    target,
    vddkTransports,
    diskTransports,
    datastoreDirs,
    needsSnapshot: target === 'vddk' && vddkTransports.some((t) => ADVANCED_TRANSPORTS.includes(t)),
    cbtAfter: point.config.changeTrackingEnabled === true,
    chain,
    video,
  };
}

/**
 * Refuses to act when the connection now reaches another vCenter, or the
 * moref another VM, than preflight checked (a connection re-pointed, a VM
 * re-created between attempts).
 */
export async function assertSameVm(client: vsphere.VSphereClient, moref: string, expected: { vcenterInstanceUuid: string | null; vmInstanceUuid: string | null }): Promise<void> {
  const vc = client.serviceContent.about.instanceUuid ?? null;
  if (expected.vcenterInstanceUuid && vc !== expected.vcenterInstanceUuid) {
    throw permanent('VCENTER_CHANGED', `the vCenter connection now reaches another vCenter (${vc ?? 'unknown'}) than the one this job checked`);
  }
  if (!expected.vmInstanceUuid) return;
  const now = await vsphere.getProperty<string>(client, { type: 'VirtualMachine', value: moref }, 'config.instanceUuid').catch(() => undefined);
  if (now !== expected.vmInstanceUuid) throw permanent('VM_CHANGED', `${moref} is no longer the VM this job checked (instance UUID ${now ?? 'gone'})`);
}

/** VDDK pins the server by thumbprint: refused before anything is touched rather than at the first write. */
export function assertVddkThumbprint(target: 'file' | 'vddk', creds: { name: string; thumbprint?: string }): void {
  if (target === 'vddk' && !creds.thumbprint) {
    throw permanent('VDDK_THUMBPRINT_REQUIRED', `the VDDK transports need the vCenter's certificate thumbprint: register "${creds.name}" with a thumbprint`);
  }
}

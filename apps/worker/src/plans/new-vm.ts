import { configspec, findVcenterByName, permanent, verifyChain, vsphere, type RestoreJob } from '@vmrestore/core';
import type { PlanFactory, StepContext, StepDef } from '../plan';
import {
  clientOptions,
  credsOrFail,
  dropTempSnapshot,
  fromBackup,
  parseDatastorePath,
  tempSnapshotName,
  vmRef,
  writeAllDisks,
  type RestoreDeps,
} from './in-place';

// Restore as a new VM (MISSION R2-R5): preflight (placement, the ConfigSpec
// from the saved config, transport) → CreateVM (CBT off; adopted on resume,
// never created twice) → the saved video settings → temporary snapshot for
// the advanced transports → resolve the new disks' current files → write
// metadata and data (R3: backward by default, each sector once) → remove the
// snapshot, which merges the writes into the base disks (no redo log is
// left) → CBT back to what the backup had → power on. A job that fails or is
// cancelled removes the VM it created: nothing half-restored is left.

const MARKER = 'vmrestore.job';
const ADVANCED = ['san', 'hotadd', 'nbdssl'];
const VDDK = ['san', 'hotadd', 'nbdssl', 'nbd'];

interface NewVmRequest {
  vcenter: string;
  source: { vm: string; point: string };
  target: { name?: string; folder?: string; resourcePool?: string; host?: string; datastore?: string };
  options: {
    transports: string[];
    powerOn: boolean;
    incrementalOrder: 'backward' | 'forward';
    macAddresses: 'keep' | 'regenerate';
    uuids: 'keep' | 'new';
    provisioning?: 'thin' | 'thick-lazy' | 'thick-eager';
  };
}

export function newVmRequest(job: RestoreJob): NewVmRequest {
  const r = job.request as Record<string, any>;
  const o = (r.options ?? {}) as Record<string, any>;
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
      ...(o.provisioning ? { provisioning: o.provisioning } : {}),
    },
  };
}

interface NewVmPreflight {
  name: string;
  folder: string;
  pool: string;
  host: string | null;
  datastore: string;
  spec: Record<string, unknown>;
  warnings: Array<{ code: string; message: string }>;
  placements: configspec.DiskPlacement[];
  target: 'file' | 'vddk';
  vddkTransports: Array<'san' | 'hotadd' | 'nbdssl' | 'nbd'>;
  needsSnapshot: boolean;
  cbtAfter: boolean;
  chain: string[];
  /** The saved video card, applied to the new VM's own card after CreateVM. */
  video: Record<string, unknown> | null;
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

/** Our VM, by the marker in its extraConfig: a resumed job adopts it. */
async function findOwnVm(client: vsphere.VSphereClient, name: string, jobId: string): Promise<{ ref: vsphere.MoRef; ours: boolean } | null> {
  const all = await vsphere.findAll(client, 'VirtualMachine', ['name', 'config.extraConfig']);
  const hit = all.find((oc) => vsphere.propValue<string>(oc, 'name') === name);
  if (!hit) return null;
  const extra = vsphere.propValue<Array<{ key: string; value: unknown }>>(hit, 'config.extraConfig') ?? [];
  return { ref: hit.obj, ours: extra.some((o) => o.key === MARKER && String(o.value) === jobId) };
}

export function newVmPlan(deps: RestoreDeps): PlanFactory {
  return (job) => {
    const req = newVmRequest(job);
    const taskOpts = { timeoutMs: deps.config.restore.vsphereTaskTimeoutMs };
    // Every vCenter task a step starts is recorded in the job's timeline.
    const tracked = (ctx: StepContext): vsphere.TaskOptions => ({ ...taskOpts, onTask: (t: vsphere.MoRef, method: string) => ctx.recordTask(t.value, method) });
    const withVc = async <T>(ctx: StepContext, fn: (c: vsphere.VSphereClient) => Promise<T>): Promise<T> => {
      const creds = await credsOrFail(deps, ctx.db)(ctx.job);
      return deps.pool.withClient(clientOptions(creds, ctx.log), fn);
    };
    const pre = (ctx: StepContext) => ctx.results.preflight as unknown as NewVmPreflight;
    const createdVm = (ctx: StepContext) => (ctx.results.create_vm as { vm?: string } | undefined)?.vm;

    const preflight: StepDef = {
      name: 'preflight',
      async run(ctx) {
        if (!deps.repo) throw permanent('BACKUP_REPOSITORY_NOT_CONFIGURED', 'this worker has no backup repository (VMRESTORE_BACKUP_ROOTS)');
        const point = await deps.repo.getPoint(req.source.vm, req.source.point).catch((e) => Promise.reject(fromBackup(e)));
        const report = await verifyChain(deps.repo, req.source.vm, req.source.point, { skipChecksums: true });
        if (!report.ok) throw fromBackup(report.errors[0]);
        if (!(await findVcenterByName(ctx.db, job.tenantId, req.vcenter))) throw permanent('VCENTER_NOT_FOUND', `no vCenter connection named "${req.vcenter}" (register it first)`);
        return withVc(ctx, async (client) => {
          const name = req.target.name ?? `${String(point.config.name ?? req.source.vm)}-restored`;
          const existing = await findOwnVm(client, name, job.id);
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

          const built = configspec.buildCreateSpec({
            config: point.config,
            name,
            datastore,
            macAddresses: req.options.macAddresses,
            uuids: req.options.uuids,
            cbt: false, // R3: CBT off while the restore writes; turned back on at the end
            ...(req.options.provisioning ? { provisioning: req.options.provisioning } : {}),
            ...(configTarget ? { configTarget } : {}),
          });
          // The marker that lets a resumed job recognize the VM it created.
          const spec = built.spec as Record<string, unknown> & { extraConfig?: unknown[]; deviceChange?: Array<{ device: Record<string, unknown> }> };
          spec.extraConfig = [...(spec.extraConfig ?? []), { _type: 'OptionValue', key: MARKER, value: job.id }];
          // vCenter gives every new VM a video card: a second one in CreateVM
          // is refused. The saved card's settings are applied to it after.
          const video = (spec.deviceChange ?? []).find((c) => c.device._type === 'VirtualMachineVideoCard')?.device ?? null;
          spec.deviceChange = (spec.deviceChange ?? []).filter((c) => c.device._type !== 'VirtualMachineVideoCard');

          const wanted = req.options.transports;
          const vddkTransports = wanted.filter((t) => VDDK.includes(t)) as NewVmPreflight['vddkTransports'];
          const fileOk = wanted.includes('file') && deps.config.restore.datastorePaths[datastore] !== undefined && built.disks.every((d) => !d.rdm);
          const vddkOk = vddkTransports.length > 0 && deps.config.restore.vddkLibDir !== null;
          let target: 'file' | 'vddk';
          if (fileOk && (wanted[0] === 'file' || !vddkOk)) target = 'file';
          else if (vddkOk) target = 'vddk';
          else throw permanent('TRANSPORT_UNAVAILABLE', `no requested transport (${wanted.join(', ')}) can reach datastore ${datastore} from this worker`);

          for (const w of built.warnings) await ctx.db.jobEvent.create({ data: { jobId: job.id, type: 'restore.warning', step: 'preflight', data: { code: w.code, message: w.message } } });
          const result: NewVmPreflight = {
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
            needsSnapshot: target === 'vddk' && vddkTransports.some((t) => ADVANCED.includes(t)),
            cbtAfter: point.config.changeTrackingEnabled === true,
            chain: report.chain,
            video,
          };
          return result as unknown as Record<string, unknown>;
        });
      },
    };

    const createVm: StepDef = {
      name: 'create_vm',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const p = pre(ctx);
          const existing = await findOwnVm(client, p.name, job.id);
          if (existing?.ours) return { vm: existing.ref.value, adopted: true };
          if (existing) throw permanent('VM_NAME_TAKEN', `a VM named "${p.name}" appeared meanwhile`);
          const ref = await vsphere.createVm(
            client,
            {
              folder: { type: 'Folder', value: p.folder },
              config: p.spec as unknown as vsphere.VirtualMachineConfigSpec,
              pool: { type: 'ResourcePool', value: p.pool },
              ...(p.host ? { host: { type: 'HostSystem', value: p.host } } : {}),
            },
            taskOpts,
          );
          return { vm: ref.value, adopted: false };
        }),
    };

    const applyVideo: StepDef = {
      name: 'apply_video_settings',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const saved = pre(ctx).video;
          if (!saved) return { skipped: true };
          const ref = vmRef(createdVm(ctx)!);
          const info = await vsphere.getVmInfo(client, ref);
          const card = (info.config.hardware.device ?? []).find((d) => d._type === 'VirtualMachineVideoCard');
          if (!card) return { skipped: 'the new VM has no video card' };
          const settings = ['videoRamSizeInKB', 'numDisplays', 'useAutoDetect', 'enable3DSupport', 'use3dRenderer', 'graphicsMemorySizeInKB'];
          const edited: Record<string, unknown> = { ...card };
          for (const k of settings) if (saved[k] !== undefined) edited[k] = saved[k];
          await vsphere.reconfigureVm(client, ref, { deviceChange: [{ operation: 'edit', device: edited }] } as unknown as vsphere.VirtualMachineConfigSpec, tracked(ctx));
          return { videoRamSizeInKB: edited.videoRamSizeInKB ?? null, numDisplays: edited.numDisplays ?? null };
        }),
    };

    const resolveDisks: StepDef = {
      name: 'resolve_disks',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const p = pre(ctx);
          const info = await vsphere.getVmInfo(client, vmRef(createdVm(ctx)!));
          const point = await deps.repo!.getPoint(req.source.vm, req.source.point);
          const map = configspec.matchCreatedDisks(point.config, info.config.hardware.device ?? [], p.placements);
          const disks = [...map.entries()].map(([savedKey, newKey]) => {
            const d = info.disks.find((x) => x.key === newKey)!;
            return { savedKey, newKey, fileName: d.fileName };
          });
          if (p.target === 'file') for (const d of disks) parseDatastorePath(d.fileName);
          return { disks };
        }),
    };

    const tempSnapshot: StepDef = {
      name: 'temp_snapshot',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          if (!pre(ctx).needsSnapshot) return { skipped: true };
          const name = tempSnapshotName(job.id);
          const ref = vmRef(createdVm(ctx)!);
          const existing = (await vsphere.listSnapshots(client, ref)).all.find((s) => s.name === name);
          if (existing) return { snapshot: existing.ref.value, name, adopted: true };
          const snap = await vsphere.createSnapshot(client, ref, { name, description: `vmrestore job ${job.id}: temporary` }, tracked(ctx));
          return { snapshot: snap.value, name, adopted: false };
        }),
    };

    const writeDisks: StepDef = {
      name: 'write_disks',
      async run(ctx) {
        const p = pre(ctx);
        const resolved = (ctx.results.resolve_disks as { disks: Array<{ savedKey: number; fileName: string }> }).disks;
        const point = await deps.repo!.getPoint(req.source.vm, req.source.point);
        // R2: the disk metadata saved at backup time, back through VixDiskLib_WriteMetadata.
        const metadata = new Map(
          point.disks.map((d) => [d.key, Object.fromEntries(Object.entries(d.metadata).map(([k, v]) => [k.replace(/^ddb\./, ''), v]))] as const),
        );
        return writeAllDisks(deps, ctx, {
          pre: p,
          vm: createdVm(ctx)!,
          source: req.source,
          order: req.options.incrementalOrder,
          zeroFill: false, // new disks read as zeros
          fresh: true,
          disks: resolved,
          metadata,
        });
      },
    };

    const removeSnapshot: StepDef = {
      name: 'remove_temp_snapshot',
      run: (ctx) => withVc(ctx, (client) => dropTempSnapshot(client, job, ctx, tracked(ctx), createdVm(ctx)!)),
    };

    const cbtRestore: StepDef = {
      name: 'restore_cbt',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          if (!pre(ctx).cbtAfter) return { changeTracking: false };
          await vsphere.setChangeTracking(client, vmRef(createdVm(ctx)!), true, tracked(ctx));
          return { changeTracking: true };
        }),
    };

    const powerOn: StepDef = {
      name: 'power_on',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          if (!req.options.powerOn) return { poweredOn: false };
          await vsphere.powerOn(client, vmRef(createdVm(ctx)!), tracked(ctx));
          return { poweredOn: true };
        }),
    };

    // Cleanup: always drop the temporary snapshot; after a failure or a
    // cancel, also remove the VM this job created (found by its marker).
    const cleanupSnapshot: StepDef = {
      name: 'cleanup_temp_snapshot',
      async run(ctx) {
        const vm = createdVm(ctx);
        if (!vm) return { skipped: 'no VM was created' };
        return withVc(ctx, (client) => dropTempSnapshot(client, job, ctx, tracked(ctx), vm));
      },
    };
    const removeIncomplete: StepDef = {
      name: 'remove_incomplete_vm',
      async run(ctx) {
        if (ctx.outcome === 'succeeded') return { kept: true };
        if (!ctx.results.preflight) return { skipped: 'nothing was created' };
        return withVc(ctx, async (client) => {
          const own = await findOwnVm(client, pre(ctx).name, job.id);
          if (!own?.ours) return { removed: false };
          await vsphere.powerOff(client, own.ref, { ...tracked(ctx), guestShutdown: false }).catch(() => undefined);
          await vsphere.destroyVm(client, own.ref, tracked(ctx));
          return { removed: true, vm: own.ref.value };
        });
      },
    };

    return {
      // The snapshot comes before resolving the disks: writes go to the current file (R1.4), merged into the base when the snapshot is removed.
      steps: [preflight, createVm, applyVideo, tempSnapshot, resolveDisks, writeDisks, removeSnapshot, cbtRestore, powerOn],
      cleanup: [cleanupSnapshot, removeIncomplete],
    };
  };
}

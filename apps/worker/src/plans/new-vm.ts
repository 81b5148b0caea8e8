import { assertVddkThumbprint, checkNewVm, configspec, findVmByName, newVmRequest, permanent, vsphere, type NewVmChecks } from '@vmrestore/core';
import { reportStep } from './report';
import { withWriteCapacity } from './capacity';
import type { PlanFactory, StepContext, StepDef } from '../plan';
import {
  ensureTempSnapshot,
  dropTempSnapshot,
  fromBackup,
  parseDatastorePath,
  withVcenter,
  vmRef,
  verifyAllDisks,
  writeAllDisks,
  writeFootprint,
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

type NewVmPreflight = NewVmChecks;

export function newVmPlan(deps: RestoreDeps): PlanFactory {
  return (job) => {
    const req = newVmRequest(job.request);
    const taskOpts = { timeoutMs: deps.config.restore.vsphereTaskTimeoutMs };
    // Every vCenter task a step starts is recorded in the job's timeline.
    const tracked = (ctx: StepContext): vsphere.TaskOptions => ({ ...taskOpts, onTask: (t: vsphere.MoRef, method: string) => ctx.recordTask(t.value, method) });
    const withVc = <T>(ctx: StepContext, fn: (c: vsphere.VSphereClient) => Promise<T>): Promise<T> => withVcenter(deps, ctx, fn);
    const pre = (ctx: StepContext) => ctx.results.preflight as unknown as NewVmPreflight;
    const createdVm = (ctx: StepContext) => (ctx.results.create_vm as { vm?: string } | undefined)?.vm;

    const preflight: StepDef = {
      name: 'preflight',
      async run(ctx) {
        // withVcenter refuses an unknown vCenter (VCENTER_NOT_FOUND) before anything else.
        return withVcenter(deps, ctx, async (client, creds) => {
          const checks = await checkNewVm(client, deps.repo, deps.config, req, job.id);
          assertVddkThumbprint(checks.target, creds);
          for (const w of checks.warnings) await ctx.db.jobEvent.create({ data: { jobId: job.id, type: 'restore.warning', step: 'preflight', data: w } });
          return checks as unknown as Record<string, unknown>;
        });
      },
    };

    const createVm: StepDef = {
      name: 'create_vm',
      run: (ctx) =>
        withVc(ctx, async (client) => {
          const p = pre(ctx);
          const existing = await findVmByName(client, p.name, job.id);
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
          const point = await deps.repo!.getPoint(req.source.vm, req.source.point).catch((e) => Promise.reject(fromBackup(e)));
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
        withVc(ctx, async (client) => (pre(ctx).needsSnapshot ? ensureTempSnapshot(client, createdVm(ctx)!, job.id, tracked(ctx)) : { skipped: true })),
    };

    const writeDisks: StepDef = {
      name: 'write_disks',
      async run(ctx) {
        const p = pre(ctx);
        const resolved = (ctx.results.resolve_disks as { disks: Array<{ savedKey: number; fileName: string }> }).disks;
        const point = await deps.repo!.getPoint(req.source.vm, req.source.point).catch((e) => Promise.reject(fromBackup(e)));
        // R2: the disk metadata saved at backup time, back through VixDiskLib_WriteMetadata.
        const metadata = savedMetadata(point);
        const fp = await writeFootprint(deps, ctx, createdVm(ctx)!, p, resolved.map((d) => d.fileName), req.options.maxMBps ?? 0);
        return withWriteCapacity(deps.capacity ?? null, deps.config.limits, ctx, 'write_disks', fp, (slot) => writeAllDisks(deps, ctx, {
          slot,
          pre: p,
          vm: createdVm(ctx)!,
          source: req.source,
          order: req.options.incrementalOrder,
          zeroFill: false, // new disks read as zeros
          fresh: true,
          disks: resolved,
          metadata,
          readBack: Boolean(req.options.verify),
        }));
      },
    };

    // A verified restore (default for new VMs): the written areas and the disk metadata, read back through the same target.
    const verifyDisks: StepDef = {
      name: 'verify_disks',
      async run(ctx) {
        const point = await deps.repo!.getPoint(req.source.vm, req.source.point).catch((e) => Promise.reject(fromBackup(e)));
        const disks = (ctx.results.resolve_disks as { disks: Array<{ savedKey: number; fileName: string }> }).disks;
        const fp = await writeFootprint(deps, ctx, createdVm(ctx)!, pre(ctx), disks.map((d) => d.fileName), req.options.maxMBps ?? 0);
        return withWriteCapacity(deps.capacity ?? null, deps.config.limits, ctx, 'verify_disks', fp, (slot) =>
          verifyAllDisks(deps, ctx, { slot, pre: pre(ctx), vm: createdVm(ctx)!, source: req.source, zeroFill: false, disks, metadata: savedMetadata(point) }),
        );
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
          const own = await findVmByName(client, pre(ctx).name, job.id);
          if (!own?.ours) return { removed: false };
          await vsphere.powerOff(client, own.ref, { ...tracked(ctx), guestShutdown: false }).catch(() => undefined);
          await vsphere.destroyVm(client, own.ref, tracked(ctx));
          return { removed: true, vm: own.ref.value };
        });
      },
    };

    return {
      // The snapshot comes before resolving the disks: writes go to the current file (R1.4), merged into the base when the snapshot is removed.
      steps: [preflight, createVm, applyVideo, tempSnapshot, resolveDisks, writeDisks, ...(req.options.verify ? [verifyDisks] : []), removeSnapshot, cbtRestore, powerOn, reportStep(deps, job)],
      cleanup: [cleanupSnapshot, removeIncomplete],
    };
  };
}

/** The disk metadata saved at backup time, per disk key, as VixDiskLib keys (without "ddb."). */
function savedMetadata(point: { disks: Array<{ key: number; metadata: Record<string, string> }> }): Map<number, Record<string, string>> {
  return new Map(point.disks.map((d) => [d.key, Object.fromEntries(Object.entries(d.metadata).map(([k, v]) => [k.replace(/^ddb\./, ''), v]))] as const));
}

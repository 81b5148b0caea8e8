import { CapacityWait, parseDatastorePath, type Capacity, type CapacityRequest, type Config } from '@vmrestore/core';
import { createRateLimiter, type RateLimiter } from '@vmrestore/native-vddk';
import type { StepContext } from '../plan';

// What a disk-writing step needs from the infrastructure, taken from the
// limits every worker shares (core/capacity.ts) before it writes a byte, and
// the bandwidth caps it writes under. See docs/scheduling.md.

export interface WriteFootprint {
  /** The vCenter (host:port of its URL): several connections to one vCenter share its limits. */
  vcenter: string;
  /** The ESXi host of the VM (runtime.host), when known. */
  host: string | null;
  /** The datastores of the disks written. */
  datastores: string[];
  /** NFC connections at once: one per disk written in parallel over nbd/nbdssl (0 for file, san, hotadd). */
  nfc: number;
  tenantId: string;
  /** options.maxMBps of the job (0 = none). */
  jobMBps: number;
}

const MiB = 1024 * 1024;

/** The limits a write takes, all or nothing (0 = no limit: not requested). */
export function capacityRequests(limits: Config['limits'], f: WriteFootprint): CapacityRequest[] {
  const vc = f.vcenter;
  const out: CapacityRequest[] = [
    { key: `vc:${vc}:jobs`, units: 1, limit: limits.vcenterJobs, label: `vCenter ${vc}: restores writing at once (VMRESTORE_LIMIT_VCENTER_JOBS=${limits.vcenterJobs})` },
    { key: `vc:${vc}:nfc`, units: f.nfc, limit: limits.vcenterNfc, label: `vCenter ${vc}: NFC connections (VMRESTORE_LIMIT_VCENTER_NFC=${limits.vcenterNfc})` },
  ];
  if (f.host) {
    out.push({ key: `host:${vc}:${f.host}:jobs`, units: 1, limit: limits.hostJobs, label: `ESXi host ${f.host}: restores writing at once (VMRESTORE_LIMIT_HOST_JOBS=${limits.hostJobs})` });
    out.push({ key: `host:${vc}:${f.host}:nfc`, units: f.nfc, limit: limits.hostNfc, label: `ESXi host ${f.host}: NFC connections (VMRESTORE_LIMIT_HOST_NFC=${limits.hostNfc})` });
  }
  for (const ds of [...new Set(f.datastores)].sort()) {
    out.push({ key: `ds:${vc}:${ds}:jobs`, units: 1, limit: limits.datastoreJobs, label: `datastore ${ds}: restores writing at once (VMRESTORE_LIMIT_DATASTORE_JOBS=${limits.datastoreJobs})` });
  }
  return out.filter((r) => r.units > 0 && r.limit > 0);
}

// Writers counted (not limited) per shared bandwidth cap: each takes cap / writers.
const COUNT_ONLY = 1_000_000_000;

export interface WriteSlot {
  /** The step's signal, also aborted if the capacity lease is lost. */
  signal: AbortSignal;
  /** Every bandwidth cap this write is under (the addon applies the tightest). */
  rateLimiters: RateLimiter[];
}

/**
 * Runs a disk-writing step inside its capacity: takes every limit or throws
 * CapacityWait (the job waits in the queue, no attempt spent); while it runs,
 * its lease is renewed and the shared caps re-divided among the writers
 * every two seconds.
 */
export async function withWriteCapacity<T>(
  capacity: Capacity | null,
  limits: Config['limits'],
  ctx: StepContext,
  step: string,
  f: WriteFootprint,
  fn: (slot: WriteSlot) => Promise<T>,
): Promise<T> {
  const rateLimiters: RateLimiter[] = [];
  if (f.jobMBps > 0) rateLimiters.push(createRateLimiter(f.jobMBps * MiB));
  if (!capacity) return fn({ signal: ctx.signal, rateLimiters });
  const shared: Array<{ key: string; capMBps: number; limiter: RateLimiter }> = [];
  if (limits.datastoreMBps > 0) for (const ds of new Set(f.datastores)) shared.push({ key: `bw:${f.vcenter}:${ds}`, capMBps: limits.datastoreMBps, limiter: createRateLimiter(limits.datastoreMBps * MiB) });
  if (limits.tenantMBps > 0) shared.push({ key: `bw:tenant:${f.tenantId}`, capMBps: limits.tenantMBps, limiter: createRateLimiter(limits.tenantMBps * MiB) });
  rateLimiters.push(...shared.map((s) => s.limiter));
  const requests = [...capacityRequests(limits, f), ...shared.map((s): CapacityRequest => ({ key: s.key, units: 1, limit: COUNT_ONLY, label: s.key }))];

  const lost = new AbortController();
  const signal = AbortSignal.any([ctx.signal, lost.signal]);
  const rebalance = async () => {
    for (const s of shared) s.limiter.set(Math.floor((s.capMBps * MiB) / Math.max(1, await capacity.inUse(s.key))));
  };
  const r = await capacity.withHold(
    `${ctx.jobId}:${step}`,
    requests,
    async () => {
      await rebalance();
      const timer = shared.length ? setInterval(() => void rebalance().catch(() => undefined), 2_000) : null;
      timer?.unref();
      try {
        return await fn({ signal, rateLimiters });
      } finally {
        if (timer) clearInterval(timer);
      }
    },
    () => {
      ctx.log.warn({ step }, 'capacity lease lost (Redis unreachable longer than the lease?): stopping the write');
      lost.abort(new Error('capacity lease lost'));
    },
  );
  if ('full' in r) throw new CapacityWait(`waiting for ${r.full.label}`, r.full.key, limits.retryMs);
  return r.value;
}

/** The datastores of disk files ("[ds] path"). */
export const datastoresOf = (files: string[]) => [...new Set(files.map((f) => parseDatastorePath(f).datastore))];

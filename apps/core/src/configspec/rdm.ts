// Choosing the LUN of each RDM disk (MISSION R4). The backing's deviceName
// and lunUuid come from ConfigTarget.scsiDisk[].disk (canonicalName, uuid):
// the uuid the config target reports, never the saved one nor the host's.
// A LUN is free when the config target lists no VM using it and no other RDM
// of this spec took it; it is suitable when it is at least as large as the
// saved disk (when both sizes are known).
import type { ConfigTarget } from '../vsphere/types';
import { configTargetLuns } from '../vsphere/vm';
import { ConfigSpecError, ConfigSpecErrorCode } from './errors';

export interface RdmChoice {
  deviceName: string;
  lunUuid: string;
  matchedBy: 'choice' | 'deviceName' | 'lunUuid' | 'capacity';
}

export interface SavedRdm {
  key: number;
  deviceName: string | undefined;
  lunUuid: string | undefined;
  capacityInKB: number;
}

interface Lun {
  deviceName: string;
  lunUuid: string;
  capacityInKB: number | undefined;
  inUse: boolean;
}

function luns(ct: ConfigTarget | undefined): Lun[] {
  if (!ct) return [];
  const usedBy = (ct.scsiDisk ?? []).map((s) => Array.isArray(s.vm) && s.vm.length > 0);
  return configTargetLuns(ct).map((l, i) => ({ deviceName: l.deviceName, lunUuid: l.lunUuid, capacityInKB: l.capacityInKB, inUse: usedBy[i] ?? false }));
}

const fits = (l: Lun, capacityInKB: number) => l.capacityInKB === undefined || l.capacityInKB >= capacityInKB;

/** One LUN per RDM disk, in the order given; `taken` is shared so two disks never get the same LUN. */
export function chooseRdmLuns(disks: SavedRdm[], ct: ConfigTarget | undefined, chosen: Record<number, string> = {}): Map<number, RdmChoice> {
  const all = luns(ct);
  const taken = new Set<string>();
  const out = new Map<number, RdmChoice>();
  const noLun = (d: SavedRdm, why: string) =>
    new ConfigSpecError(ConfigSpecErrorCode.NO_FREE_LUN, `RDM disk ${d.key}: ${why}`, { deviceKey: d.key });
  const take = (d: SavedRdm, l: Lun, matchedBy: RdmChoice['matchedBy']) => {
    taken.add(l.deviceName);
    out.set(d.key, { deviceName: l.deviceName, lunUuid: l.lunUuid, matchedBy });
  };
  // Explicit choices first, so automatic matching cannot steal them.
  for (const d of disks) {
    const name = chosen[d.key];
    if (name === undefined) continue;
    const l = all.find((x) => x.deviceName === name);
    if (!l) throw noLun(d, `LUN ${name} is not in the config target`);
    if (l.inUse) throw noLun(d, `LUN ${name} is in use by another VM`);
    if (taken.has(l.deviceName)) throw noLun(d, `LUN ${name} is chosen for another RDM disk`);
    if (!fits(l, d.capacityInKB)) throw noLun(d, `LUN ${name} (${l.capacityInKB} KB) is smaller than the disk (${d.capacityInKB} KB)`);
    take(d, l, 'choice');
  }
  for (const d of disks) {
    if (out.has(d.key)) continue;
    const free = all.filter((l) => !l.inUse && !taken.has(l.deviceName) && fits(l, d.capacityInKB));
    const byName = d.deviceName ? free.find((l) => l.deviceName === d.deviceName) : undefined;
    if (byName) {
      take(d, byName, 'deviceName');
      continue;
    }
    const byUuid = d.lunUuid ? free.find((l) => l.lunUuid === d.lunUuid) : undefined;
    if (byUuid) {
      take(d, byUuid, 'lunUuid');
      continue;
    }
    const bySize = free.filter((l) => l.capacityInKB === d.capacityInKB);
    if (bySize.length === 1) {
      take(d, bySize[0]!, 'capacity');
      continue;
    }
    if (bySize.length > 1) {
      throw new ConfigSpecError(
        ConfigSpecErrorCode.AMBIGUOUS_LUN,
        `RDM disk ${d.key}: ${bySize.length} free LUNs of ${d.capacityInKB} KB (${bySize.map((l) => l.deviceName).join(', ')}); choose one with rdmLuns`,
        { deviceKey: d.key },
      );
    }
    throw noLun(d, ct ? `no free LUN in the config target matches ${d.deviceName ?? d.lunUuid ?? 'the disk'} or its capacity (${d.capacityInKB} KB)` : 'no config target given (QueryConfigTarget lists the free LUNs)');
  }
  return out;
}

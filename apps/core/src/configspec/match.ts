// After CreateVM_Task vCenter has given every device a real key. The restore
// needs, per saved disk, the disk it must write: found by controller type,
// controller bus number and unit number, which the spec fixed.
import type { VirtualDevice } from '../vsphere/types';
import { ConfigSpecError, ConfigSpecErrorCode } from './errors';
import type { DiskPlacement } from './types';

/**
 * Saved disk key -> key of the created disk. `createdDevices` is
 * config.hardware.device of the new VM (getVmInfo). Every saved disk of
 * `config` must have a placement and a created counterpart at least as large.
 */
export function matchCreatedDisks(config: Record<string, unknown>, createdDevices: VirtualDevice[], placements: DiskPlacement[]): Map<number, number> {
  const hardware = config.hardware as { device?: Array<{ _type?: string; key: number }> } | undefined;
  const savedDisks = (hardware?.device ?? []).filter((d) => d._type === 'VirtualDisk').map((d) => d.key);
  const byKey = new Map(placements.map((p) => [p.savedKey, p]));
  const controllers = new Map<string, number>(); // "type/bus" -> created controller key
  for (const d of createdDevices) {
    const bus = (d as { busNumber?: unknown }).busNumber;
    if (typeof bus === 'number' && d._type) controllers.set(`${d._type}/${bus}`, d.key);
  }
  const createdDisks = createdDevices.filter((d) => d._type === 'VirtualDisk');
  const used = new Set<number>();
  const out = new Map<number, number>();
  const fail = (key: number, why: string) => new ConfigSpecError(ConfigSpecErrorCode.DISK_NOT_MATCHED, `saved disk ${key}: ${why}`, { deviceKey: key });
  for (const key of savedDisks) {
    const p = byKey.get(key);
    if (!p) throw fail(key, 'no placement (was it in the spec?)');
    const ctl = controllers.get(`${p.controllerType}/${p.busNumber}`);
    if (ctl === undefined) throw fail(key, `the new VM has no ${p.controllerType} on bus ${p.busNumber}`);
    const onCtl = createdDisks.filter((d) => d.controllerKey === ctl && !used.has(d.key));
    const found = p.unitNumber !== undefined ? onCtl.find((d) => d.unitNumber === p.unitNumber) : onCtl.find((d) => capacityBytes(d) === p.capacityBytes);
    if (!found) throw fail(key, `no disk at ${p.controllerType} ${p.busNumber}:${p.unitNumber ?? '?'} on the new VM`);
    const cap = capacityBytes(found);
    if (cap !== undefined && cap < p.capacityBytes) throw fail(key, `the created disk ${found.key} has ${cap} bytes, the backup ${p.capacityBytes}`);
    used.add(found.key);
    out.set(key, found.key);
  }
  return out;
}

function capacityBytes(d: VirtualDevice): number | undefined {
  const x = d as { capacityInBytes?: unknown; capacityInKB?: unknown };
  if (typeof x.capacityInBytes === 'number') return x.capacityInBytes;
  if (typeof x.capacityInKB === 'number') return x.capacityInKB * 1024;
  return undefined;
}

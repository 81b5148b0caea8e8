// Temporary keys of the devices a spec adds (R5): negative, so they cannot
// collide with the keys vCenter assigns, and unique within the spec.
import { ConfigSpecError, ConfigSpecErrorCode } from './errors';

/**
 * Saved key -> temporary key. Explicit keys (e.g. to reproduce a known spec)
 * are taken as given; the others are numbered -1, -2, ... in device order,
 * skipping the explicit ones.
 */
export function assignTempKeys(savedKeys: number[], explicit: Record<number, number> = {}): Map<number, number> {
  const out = new Map<number, number>();
  const used = new Set<number>();
  for (const k of savedKeys) {
    const t = explicit[k];
    if (t === undefined) continue;
    if (!Number.isInteger(t) || t >= 0) {
      throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_OPTION, `tempKeys[${k}] = ${t}: a temporary key must be a negative integer`, { deviceKey: k, field: 'tempKeys' });
    }
    if (used.has(t)) {
      throw new ConfigSpecError(ConfigSpecErrorCode.INVALID_OPTION, `tempKeys[${k}] = ${t}: used for another device`, { deviceKey: k, field: 'tempKeys' });
    }
    used.add(t);
    out.set(k, t);
  }
  let next = -1;
  for (const k of savedKeys) {
    if (out.has(k)) continue;
    while (used.has(next)) next--;
    used.add(next);
    out.set(k, next);
  }
  return out;
}

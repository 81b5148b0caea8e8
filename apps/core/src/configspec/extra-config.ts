// extraConfig of a VM created from a saved config: everything the user set
// is kept; keys that bind to the old VM (its files, its host, its identity)
// or that restate state the spec sets itself (UUIDs, CBT) are left out.
// vmx keys are case-insensitive.

/** Patterns of the keys left out, with why. Exported for the docs and the tests. */
export const DROPPED_EXTRA_CONFIG: ReadonlyArray<{ pattern: RegExp; why: string }> = [
  { pattern: /^sched\.swap\.derivedName$/i, why: 'swap file path of the old VM' },
  { pattern: /^nvram$/i, why: 'NVRAM file of the old VM (the new VM creates its own)' },
  { pattern: /^uuid\./i, why: 'BIOS/location UUIDs: set by the spec (uuids: keep) or new' },
  { pattern: /^vc\.uuid$/i, why: 'instance UUID: set by the spec (uuids: keep) or new' },
  { pattern: /^(scsi|sata|nvme|ide)\d+:\d+\.ctkEnabled$|^ctkEnabled$/i, why: 'CBT state: set by changeTrackingEnabled (R3)' },
  { pattern: /^ethernet\d+\.generatedAddress(Offset)?$/i, why: 'MAC addresses: set by the NICs in the spec' },
  { pattern: /^vmci\d+\.id$/i, why: 'VMCI id of the old VM' },
  { pattern: /^migrate\./i, why: 'vMotion state of the old VM' },
  { pattern: /^vmotion\./i, why: 'vMotion state of the old VM' },
  { pattern: /^checkpoint\./i, why: 'suspend state of the old VM' },
  { pattern: /^(hostCPUID|guestCPUID|userCPUID)\./i, why: 'CPUID seen on the old host (the mask is cpuFeatureMask)' },
  { pattern: /^monitor\.phys_bits_used$/i, why: 'recorded by the old host' },
  { pattern: /^softPowerOff$/i, why: 'power state of the old VM' },
  { pattern: /^vmxstats\.filename$/i, why: 'statistics file of the old VM' },
  { pattern: /^numa\.autosize\.(cookie|vcpu\.maxPerVirtualNode)$/i, why: 'NUMA sizing computed on the old host' },
];

export interface OptionValueJson {
  _type?: string;
  key: string;
  value?: unknown;
}

/** Splits the saved extraConfig into what the new VM gets and the keys left out. */
export function filterExtraConfig(saved: unknown): { kept: OptionValueJson[]; dropped: string[] } {
  const kept: OptionValueJson[] = [];
  const dropped: string[] = [];
  if (!Array.isArray(saved)) return { kept, dropped };
  for (const item of saved) {
    if (typeof item !== 'object' || item === null) continue;
    const o = item as OptionValueJson;
    if (typeof o.key !== 'string') continue;
    if (DROPPED_EXTRA_CONFIG.some((d) => d.pattern.test(o.key))) {
      dropped.push(o.key);
      continue;
    }
    // OptionValue.value is xsd:anyType: a scalar, or an object that names its type.
    const v = o.value;
    if (typeof v === 'object' && v !== null && !(v as { _type?: unknown })._type) {
      dropped.push(o.key);
      continue;
    }
    kept.push(v === undefined || v === null ? { key: o.key } : { key: o.key, value: v });
  }
  return { kept, dropped };
}

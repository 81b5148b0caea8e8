import { generateFixtureChain, importFull, importIncremental, readJsonFile, type ChangedArea, type ImportDiskInput } from '@vmrestore/core';

// `vmrestore import` and `vmrestore fixtures`: make restore points in a
// backup repository directory (docs/backup-format.md). They work on local
// files, not through the API.

export class CliUsageError extends Error {}

/** "2000=/path/disk.raw" → [2000, "/path/disk.raw"] */
export function keyed(flag: string, raw: string): [number, string] {
  const m = /^(\d+)=(.+)$/.exec(raw);
  if (!m) throw new CliUsageError(`--${flag} wants KEY=VALUE with KEY the disk's device key (e.g. 2000=disk.raw), got "${raw}"`);
  return [Number(m[1]), m[2]!];
}

function keyedMap(flag: string, values: string[] | undefined): Map<number, string> {
  const out = new Map<number, string>();
  for (const v of values ?? []) {
    const [k, val] = keyed(flag, v);
    if (out.has(k)) throw new CliUsageError(`--${flag} names disk ${k} twice`);
    out.set(k, val);
  }
  return out;
}

export interface ImportArgs {
  mode: string | undefined;
  root?: string;
  vm?: string;
  point?: string;
  parent?: string;
  disk?: string[];
  metadata?: string[];
  areas?: string[];
  'change-id'?: string[];
  config?: string;
  'created-at'?: string;
}

export async function runImport(a: ImportArgs): Promise<{ vmId: string; pointId: string; kind: string; disks: Array<{ key: number; blocks: number; dataBytes: number; capacityBytes: number }> }> {
  if (a.mode !== 'full' && a.mode !== 'incremental') throw new CliUsageError('import needs a mode: `import full` or `import incremental`');
  for (const f of ['root', 'vm', 'point', 'config'] as const) if (!a[f]) throw new CliUsageError(`import ${a.mode} needs --${f}`);
  const images = keyedMap('disk', a.disk);
  if (!images.size) throw new CliUsageError(`import ${a.mode} needs at least one --disk KEY=IMAGE`);
  const metadata = keyedMap('metadata', a.metadata);
  const changeIds = keyedMap('change-id', a['change-id']);
  const config = (await readJsonFile(a.config!)) as Record<string, unknown>;
  const disks: ImportDiskInput[] = [];
  for (const [key, imagePath] of images) {
    const metaFile = metadata.get(key);
    disks.push({
      key,
      imagePath,
      metadata: metaFile ? ((await readJsonFile(metaFile)) as Record<string, string>) : {},
      changeId: changeIds.get(key) ?? null,
    });
  }
  for (const k of [...metadata.keys(), ...changeIds.keys()]) if (!images.has(k)) throw new CliUsageError(`disk ${k} has metadata or a change id but no --disk image`);
  const common = { root: a.root!, vmId: a.vm!, pointId: a.point!, config, ...(a['created-at'] ? { createdAt: a['created-at'] } : {}) };
  let manifest;
  if (a.mode === 'full') {
    manifest = await importFull({ ...common, disks });
  } else {
    if (!a.parent) throw new CliUsageError('import incremental needs --parent POINT');
    const areas = keyedMap('areas', a.areas);
    const withAreas = [];
    for (const d of disks) {
      const file = areas.get(d.key);
      if (!file) throw new CliUsageError(`import incremental needs --areas ${d.key}=changed-areas.json for disk ${d.key}`);
      // QueryChangedDiskAreas output as saved: a bare [{start, length}] array or a DiskChangeInfo with changedArea.
      const raw = (await readJsonFile(file)) as unknown;
      const list = Array.isArray(raw) ? raw : (raw as { changedArea?: unknown })?.changedArea;
      if (!Array.isArray(list)) throw new CliUsageError(`${file}: expected a JSON array of {start, length} (or an object with changedArea)`);
      withAreas.push({ ...d, changedAreas: list as ChangedArea[] });
    }
    manifest = await importIncremental({ ...common, parent: a.parent, disks: withAreas });
  }
  return {
    vmId: manifest.vmId,
    pointId: manifest.pointId,
    kind: manifest.kind,
    disks: manifest.disks.map((d) => ({ key: d.key, blocks: d.blocks, dataBytes: d.dataBytes, capacityBytes: d.capacityBytes })),
  };
}

export async function runFixtures(a: { root?: string; vm?: string; seed?: string; incrementals?: string; expected?: string }) {
  if (!a.root) throw new CliUsageError('fixtures needs --root DIR');
  const chain = await generateFixtureChain({
    root: a.root,
    ...(a.vm ? { vmId: a.vm } : {}),
    ...(a.seed ? { seed: Number(a.seed) } : {}),
    ...(a.incrementals ? { incrementals: Number(a.incrementals) } : {}),
    ...(a.expected ? { expectedImagesDir: a.expected } : {}),
  });
  return { vmId: chain.vmId, points: chain.points.map((p) => p.pointId) };
}

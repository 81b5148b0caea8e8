// Fits a value copied from a saved config to the shipped vim25 schema, so the
// serializer (which refuses unknown fields) never fails on a field a newer
// vSphere added: unknown fields and values of unknown types are removed and
// reported; integers and booleans saved as strings are turned back into
// numbers and booleans.
import { NS } from '../vsphere/xml';
import type { Schema, TypeName } from '../vsphere/schema';

const INT_TYPES = new Set(['int', 'long', 'short', 'byte', 'unsignedInt', 'unsignedLong', 'unsignedShort', 'unsignedByte', 'integer']);
const MOR = 'ManagedObjectReference';

/** Whether the schema knows `type` as a (vim25) complex type. */
export const knowsType = (schema: Schema, type: string): boolean => schema.complex.has(type);

/**
 * Returns the value fitted to `declared` (a vim25 complex type name), or
 * undefined when the value itself cannot be written. `dropped` collects the
 * paths removed.
 */
export function pruneToSchema(schema: Schema, value: unknown, declared: string, path: string, dropped: string[]): unknown {
  return pruneValue(schema, value, { ns: NS.vim25, name: declared }, path, dropped);
}

function pruneValue(schema: Schema, v: unknown, t: TypeName, path: string, dropped: string[]): unknown {
  if (v === undefined || v === null) return v;
  if (t.ns === NS.vim25 && t.name === MOR) return v;
  if (t.ns === NS.xsd) return t.name === 'anyType' ? v : scalar(t.name, v);
  if (!schema.complex.has(t.name)) return v; // simple (enum) types: strings
  if (typeof v !== 'object' || Array.isArray(v)) {
    dropped.push(path);
    return undefined;
  }
  const obj = v as Record<string, unknown>;
  const actual = typeof obj._type === 'string' ? obj._type : t.name;
  if (!schema.complex.has(actual) || !schema.isSubtype(actual, t.name)) {
    dropped.push(path);
    return undefined;
  }
  const out: Record<string, unknown> = {};
  if (obj._type !== undefined) out._type = obj._type;
  for (const [k, fv] of Object.entries(obj)) {
    if (k === '_type' || fv === undefined) continue;
    const f = schema.field(actual, k);
    if (!f) {
      dropped.push(`${path}.${k}`);
      continue;
    }
    if (fv === null) {
      out[k] = null;
      continue;
    }
    if (Array.isArray(fv)) {
      if (!f.field.list) {
        dropped.push(`${path}.${k}`);
        continue;
      }
      const items = fv.map((item, i) => pruneValue(schema, item, f.field.type, `${path}.${k}[${i}]`, dropped)).filter((x) => x !== undefined && x !== null);
      out[k] = items;
      continue;
    }
    const pv = pruneValue(schema, fv, f.field.type, `${path}.${k}`, dropped);
    if (pv !== undefined) out[k] = f.field.list ? [pv] : pv;
  }
  return out;
}

function scalar(type: string, v: unknown): unknown {
  if (typeof v !== 'string') return v;
  if (type === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
  if (INT_TYPES.has(type) && /^-?\d+$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : BigInt(v);
  }
  return v;
}

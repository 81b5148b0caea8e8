// vim25 values <-> XML, driven by the shipped schema.
//
// Writing: each data object's fields are written in the schema's sequence
// order whatever the key order of the JS object (real vCenter rejects
// out-of-order elements); `_type` names the concrete type of a polymorphic
// value and is written as xsi:type; keys the schema does not know are an
// error, never silently sent or dropped.
//
// Reading: values are typed by the schema field they sit in, or by their
// xsi:type (namespace-resolved): numbers and booleans become JS numbers and
// booleans, data objects get `_type`, ArrayOfX wrappers become arrays,
// ManagedObjectReference becomes { type, value }. Types the schema does not
// carry are read generically (strings, nested objects), never rejected.
import { NS, escapeXml, xsiType, attr, type XmlElement } from './xml';
import type { Schema, TypeName } from './schema';

export interface MoRef {
  type: string;
  value: string;
}

/** A vim25 data object: `_type` is its concrete type (xsi:type). */
export interface DataObject {
  _type?: string;
  [field: string]: unknown;
}

export const moRef = (type: string, value: string): MoRef => ({ type, value });
export const isMoRef = (v: unknown): v is MoRef =>
  typeof v === 'object' && v !== null && typeof (v as MoRef).type === 'string' && typeof (v as MoRef).value === 'string' && Object.keys(v).length === 2;

export class SerializeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SerializeError';
  }
}

const INT_TYPES = new Set(['int', 'long', 'short', 'byte', 'unsignedInt', 'unsignedLong', 'unsignedShort', 'unsignedByte', 'integer']);
const FLOAT_TYPES = new Set(['float', 'double', 'decimal']);
const MOR = 'ManagedObjectReference';

// ---------------------------------------------------------------- writing

/** The SOAP envelope of one call: `<method xmlns="urn:vim25">` with args in schema order. */
export function serializeRequest(schema: Schema, method: string, args: Record<string, unknown>): string {
  const type = schema.elements.get(method);
  if (!type) throw new SerializeError(`operation ${method} is not in the shipped vim25 schema`);
  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<soapenv:Envelope xmlns:soapenv="${NS.soapenv}" xmlns:xsd="${NS.xsd}" xmlns:xsi="${NS.xsi}"><soapenv:Body>`);
  out.push(`<${method} xmlns="${NS.vim25}">`);
  writeFields(schema, out, type.name, args, method);
  out.push(`</${method}></soapenv:Body></soapenv:Envelope>`);
  return out.join('');
}

function writeFields(schema: Schema, out: string[], type: string, obj: Record<string, unknown>, where: string): void {
  for (const key of Object.keys(obj)) {
    if (key !== '_type' && obj[key] !== undefined && !schema.field(type, key)) {
      throw new SerializeError(`${where}: ${type} has no field "${key}"`);
    }
  }
  for (const f of schema.fields(type)) {
    const v = obj[f.name];
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) {
      if (!f.list) throw new SerializeError(`${where}.${f.name}: ${type}.${f.name} is not a list`);
      for (const item of v) writeValue(schema, out, f.name, f.type, item, `${where}.${f.name}[]`);
    } else {
      writeValue(schema, out, f.name, f.type, v, `${where}.${f.name}`);
    }
  }
}

function writeValue(schema: Schema, out: string[], name: string, declared: TypeName, v: unknown, where: string): void {
  if (v === undefined || v === null) return;
  if (declared.ns === NS.vim25 && declared.name === MOR) {
    if (!isMoRef(v)) throw new SerializeError(`${where}: expected a ManagedObjectReference { type, value }`);
    out.push(`<${name} type="${escapeXml(v.type)}">${escapeXml(v.value)}</${name}>`);
    return;
  }
  if (declared.ns === NS.xsd && declared.name === 'anyType') {
    writeAny(schema, out, name, v, where);
    return;
  }
  if (schema.isComplex(declared)) {
    if (typeof v !== 'object' || Array.isArray(v)) throw new SerializeError(`${where}: expected a ${declared.name} object`);
    const obj = v as DataObject;
    const actual = obj._type ?? declared.name;
    if (!schema.complex.has(actual)) throw new SerializeError(`${where}: type ${actual} is not in the shipped vim25 schema`);
    if (!schema.isSubtype(actual, declared.name)) throw new SerializeError(`${where}: ${actual} is not a ${declared.name}`);
    out.push(obj._type ? `<${name} xsi:type="${actual}">` : `<${name}>`);
    writeFields(schema, out, actual, obj, where);
    out.push(`</${name}>`);
    return;
  }
  out.push(`<${name}>${escapeXml(scalarText(declared, v, where))}</${name}>`);
}

function writeAny(schema: Schema, out: string[], name: string, v: unknown, where: string): void {
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date)) {
    if (isMoRef(v)) {
      out.push(`<${name} xsi:type="${MOR}" type="${escapeXml(v.type)}">${escapeXml(v.value)}</${name}>`);
      return;
    }
    const obj = v as DataObject;
    if (!obj._type) throw new SerializeError(`${where}: a value of type anyType needs _type`);
    writeValue(schema, out, name, { ns: NS.vim25, name: obj._type }, obj, where);
    return;
  }
  const xsd = typeof v === 'boolean' ? 'boolean' : typeof v === 'number' ? (Number.isInteger(v) ? 'int' : 'double') : 'string';
  out.push(`<${name} xsi:type="xsd:${xsd}">${escapeXml(scalarText({ ns: NS.xsd, name: xsd }, v, where))}</${name}>`);
}

function scalarText(t: TypeName, v: unknown, where: string): string {
  if (t.ns === NS.xsd) {
    if (t.name === 'boolean') {
      if (typeof v !== 'boolean') throw new SerializeError(`${where}: expected a boolean`);
      return String(v);
    }
    if (INT_TYPES.has(t.name)) {
      if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return String(v);
      throw new SerializeError(`${where}: expected an integer`);
    }
    if (FLOAT_TYPES.has(t.name)) {
      if (typeof v !== 'number') throw new SerializeError(`${where}: expected a number`);
      return String(v);
    }
    if (t.name === 'dateTime' && v instanceof Date) return v.toISOString();
    if (t.name === 'base64Binary' && Buffer.isBuffer(v)) return v.toString('base64');
  }
  if (typeof v !== 'string') throw new SerializeError(`${where}: expected a string`);
  return v;
}

// ---------------------------------------------------------------- reading

/** Reads an element as a value of `declared` (or of its xsi:type). */
export function readValue(schema: Schema, el: XmlElement, declared?: TypeName): unknown {
  const xt = xsiType(el);
  const t: TypeName | undefined = xt ? { ns: xt.ns, name: xt.local } : declared;
  if (!t) return readGeneric(schema, el);
  if (t.ns === NS.xsd) return readScalar(t.name, el.text);
  if (t.name === MOR) return { type: attr(el, 'type') ?? '', value: el.text };
  if (schema.simple.has(t.name)) return el.text;
  if (t.name.startsWith('ArrayOf')) {
    const ct = schema.complex.get(t.name);
    const itemType = ct?.own[0]?.type;
    return el.children.map((c) => readValue(schema, c, itemType));
  }
  if (!schema.complex.has(t.name)) return readGeneric(schema, el, t.name);
  const obj: DataObject = { _type: t.name };
  for (const c of el.children) {
    const f = schema.field(t.name, c.local);
    const v = f ? readValue(schema, c, f.field.type) : readValue(schema, c);
    if (f?.field.list) {
      const arr = (obj[c.local] as unknown[] | undefined) ?? [];
      arr.push(v);
      obj[c.local] = arr;
    } else {
      obj[c.local] = v;
    }
  }
  return obj;
}

function readScalar(type: string, text: string): unknown {
  if (type === 'boolean') return text === 'true' || text === '1';
  if (INT_TYPES.has(type) || FLOAT_TYPES.has(type)) return Number(text);
  return text;
}

/** A value whose type the schema does not carry: text, a moref, or an object of fields. */
function readGeneric(schema: Schema, el: XmlElement, typeName?: string): unknown {
  if (el.children.length === 0) {
    const type = attr(el, 'type');
    if (type !== undefined && !typeName) return { type, value: el.text };
    return el.text;
  }
  if (typeName?.startsWith('ArrayOf')) return el.children.map((c) => readValue(schema, c));
  const obj: DataObject = typeName ? { _type: typeName } : {};
  for (const c of el.children) {
    const v = readValue(schema, c);
    const prev = obj[c.local];
    if (prev === undefined) obj[c.local] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else obj[c.local] = [prev, v];
  }
  return obj;
}

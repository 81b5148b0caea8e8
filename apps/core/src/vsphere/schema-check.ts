// Checks a serialized SOAP request against the shipped vim25 schema, the way
// a real vCenter's strict parser does (vcsim accepts anything): every element
// is known, child elements appear in the type's sequence order, only list
// fields repeat, required fields are present, xsi:type names a subtype of
// the declared type, and scalar text fits its type. Used by the tests on
// every request the client sends (see VSphereClientOptions.schemaCheck).
import { NS, child, parseXml, xsiType, type XmlElement } from './xml';
import { Schema, vim25Schema, type TypeName } from './schema';

const INT = /^-?\d+$/;
const FLOAT = /^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$|^(NaN|-?INF)$/;
const INT_TYPES = new Set(['int', 'long', 'short', 'byte', 'integer', 'unsignedInt', 'unsignedLong', 'unsignedShort', 'unsignedByte']);

/** Problems found in a request body; empty when it conforms. */
export function checkRequest(body: string, schema: Schema = vim25Schema()): string[] {
  const problems: string[] = [];
  let env: XmlElement;
  try {
    env = parseXml(body);
  } catch (err) {
    return [`not well-formed XML: ${(err as Error).message}`];
  }
  if (env.local !== 'Envelope' || env.ns !== NS.soapenv) return ['root is not a SOAP 1.1 Envelope'];
  const b = child(env, 'Body');
  if (!b || b.ns !== NS.soapenv) return ['no soapenv:Body'];
  if (b.children.length !== 1) return [`Body has ${b.children.length} elements, expected 1`];
  const op = b.children[0]!;
  const type = schema.elements.get(op.local);
  if (op.ns !== NS.vim25 || !type) return [`unknown operation {${op.ns}}${op.local}`];
  checkElement(schema, op, type, op.local, problems);
  return problems;
}

/** Throws with every problem listed when the request does not conform. */
export function assertRequestConforms(body: string, schema?: Schema): void {
  const problems = checkRequest(body, schema);
  if (problems.length) throw new Error(`request does not conform to vim25.xsd:\n  ${problems.join('\n  ')}`);
}

function checkElement(schema: Schema, el: XmlElement, declared: TypeName, path: string, problems: string[]): void {
  const xt = xsiType(el);
  let t = declared;
  if (xt) {
    t = { ns: xt.ns, name: xt.local };
    if (declared.ns === NS.vim25 && t.ns === NS.vim25 && schema.complex.has(declared.name)) {
      if (!schema.complex.has(t.name)) return void problems.push(`${path}: xsi:type ${t.name} is not in the schema`);
      if (!schema.isSubtype(t.name, declared.name)) return void problems.push(`${path}: xsi:type ${t.name} is not a ${declared.name}`);
    } else if (!(declared.ns === NS.xsd && declared.name === 'anyType')) {
      return void problems.push(`${path}: xsi:type ${t.name} on a ${declared.name} value`);
    }
  }
  if (t.ns === NS.xsd) {
    if (el.children.length) problems.push(`${path}: ${t.name} value has child elements`);
    else checkScalar(t.name, el.text, path, problems);
    return;
  }
  const ct = schema.complex.get(t.name);
  if (!ct) {
    if (!schema.simple.has(t.name)) problems.push(`${path}: type ${t.name} is not in the schema`);
    else if (el.children.length) problems.push(`${path}: ${t.name} value has child elements`);
    return;
  }
  if (ct.simpleContent) {
    if (el.children.length) problems.push(`${path}: ${t.name} value has child elements`);
    return;
  }
  if (el.text.trim()) problems.push(`${path}: text inside ${t.name}`);
  const fields = schema.fields(t.name);
  let lastPos = -1;
  let lastName = '';
  const seen = new Set<string>();
  for (const c of el.children) {
    const cpath = `${path}/${c.local}`;
    const f = schema.field(t.name, c.local);
    if (!f || c.ns !== NS.vim25) {
      problems.push(`${cpath}: ${t.name} has no element ${c.local}`);
      continue;
    }
    if (f.pos < lastPos) {
      problems.push(`${cpath}: out of order in ${t.name}: <${c.local}> must come before <${lastName}>`);
    } else if (f.pos === lastPos && !f.field.list) {
      problems.push(`${cpath}: ${t.name}.${c.local} appears more than once`);
    }
    if (f.pos > lastPos) {
      lastPos = f.pos;
      lastName = c.local;
    }
    seen.add(c.local);
    checkElement(schema, c, f.field.type, cpath, problems);
  }
  for (const f of fields) {
    if (f.min > 0 && !seen.has(f.name)) problems.push(`${path}: ${t.name} requires <${f.name}>`);
  }
}

function checkScalar(type: string, text: string, path: string, problems: string[]): void {
  if (type === 'boolean' && !['true', 'false', '1', '0'].includes(text)) problems.push(`${path}: "${text}" is not a boolean`);
  else if (INT_TYPES.has(type) && !INT.test(text)) problems.push(`${path}: "${text}" is not an integer`);
  else if ((type === 'double' || type === 'float') && !FLOAT.test(text)) problems.push(`${path}: "${text}" is not a number`);
}

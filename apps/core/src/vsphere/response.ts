// Reading a SOAP response: the typed returnval, or the fault as a VSphereError.
import { readValue, type DataObject } from './codec';
import { VSphereError, faultError } from './errors';
import type { Schema } from './schema';
import { NS, child, parseXml, xsiType, type XmlElement } from './xml';

/** The returnval of `method` (typed by the schema), or throws the fault the server sent. */
export function parseResponse(schema: Schema, method: string, status: number, xml: string): unknown {
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (err) {
    throw VSphereError.client('PROTOCOL', `${method}: HTTP ${status}, response is not XML`, err);
  }
  const body = child(root, 'Body');
  const first = body?.children[0];
  if (!body || !first) throw VSphereError.client('PROTOCOL', `${method}: HTTP ${status}, no SOAP body`);
  if (first.local === 'Fault' && first.ns === NS.soapenv) throw soapFaultError(schema, method, first);
  const respType = schema.elements.get(`${method}Response`);
  const f = respType ? schema.field(respType.name, 'returnval') : undefined;
  const rvs = first.children.filter((c) => c.local === 'returnval');
  if (f?.field.list) return rvs.map((c) => readValue(schema, c, f.field.type));
  return rvs[0] ? readValue(schema, rvs[0], f?.field.type) : undefined;
}

/** A soapenv:Fault: the detail's xsi:type (or element name minus "Fault") picks the code. */
export function soapFaultError(schema: Schema, method: string, fault: XmlElement): VSphereError {
  const message = child(fault, 'faultstring')?.text ?? '';
  const detail = child(fault, 'detail')?.children[0];
  if (!detail) return faultError(undefined, 'SoapFault', message, method);
  const type = xsiType(detail)?.local ?? detail.local.replace(/Fault$/, '');
  const obj = readValue(schema, detail, { ns: NS.vim25, name: type }) as DataObject;
  return faultError(obj, type, message, method, schemaParents(schema));
}

/** Base type of a type per the schema (for the fault-code fallback to a known ancestor). */
export const schemaParents = (schema: Schema) => (t: string): string | undefined => schema.complex.get(t)?.base;

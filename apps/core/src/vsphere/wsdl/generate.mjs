#!/usr/bin/env node
// Generates the compact vim25 schema (vim25.xsd) and WSDL (vim25.wsdl) the
// vSphere client ships: only the operations vmrestore calls and the types
// they reach. Source of truth for element order: govmomi's vim25/types
// (types.go lists each type's fields in schema order). Run again after
// adding an operation or a type:
//   node apps/core/src/vsphere/wsdl/generate.mjs [/path/to/govmomi/vim25/types]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.env.OUT_DIR ?? here;
const typesDir = process.argv[2] ?? '/usr/share/gocode/src/github.com/vmware/govmomi/vim25/types';
const goTypes = fs.readFileSync(path.join(typesDir, 'types.go'), 'utf8');
const goEnums = fs.readFileSync(path.join(typesDir, 'enum.go'), 'utf8');

/** The vim25 operations the client calls. */
const OPERATIONS = [
  'RetrieveServiceContent', 'Login', 'Logout', 'CurrentTime',
  'RetrievePropertiesEx', 'ContinueRetrievePropertiesEx', 'CancelRetrievePropertiesEx',
  'FindByUuid', 'FindByInventoryPath',
  'PowerOnVM_Task', 'PowerOffVM_Task', 'ShutdownGuest',
  'CreateSnapshot_Task', 'RevertToSnapshot_Task', 'RemoveSnapshot_Task', 'RemoveAllSnapshots_Task',
  'ReconfigVM_Task', 'CreateVM_Task', 'Destroy_Task', 'QueryConfigTarget', 'CancelTask', 'QueryChangedDiskAreas',
  'ConsolidateVMDisks_Task',
];

/** Data types read from responses that no operation signature names. */
const EXTRA_TYPES = [
  'TaskInfo', 'VirtualMachineConfigInfo', 'VirtualMachineSnapshotInfo', 'VirtualMachineFileLayoutEx',
  'VirtualMachineRuntimeInfo', 'ConfigTarget', 'DatastoreSummary', 'HostScsiDisk',
  'ArrayOfVirtualDevice', 'ArrayOfManagedObjectReference', 'ArrayOfString', 'ArrayOfVirtualMachineSnapshotTree',
  'ArrayOfVirtualMachineFileLayoutExDiskLayout', 'ArrayOfVirtualMachineFileLayoutExFileInfo', 'ArrayOfHostCpuIdInfo',
  'ArrayOfScsiLun', 'ArrayOfDatastoreHostMount',
  'TraversalSpec', 'VirtualMachinePowerState', 'TaskInfoState',
];

/** Faults mapped to codes: their types are in the schema so fault details parse typed. */
const FAULTS = [
  'MethodFault', 'RuntimeFault', 'VimFault', 'InvalidPowerState', 'TaskInProgress', 'FileNotFound', 'FileFault',
  'InvalidDeviceSpec', 'InvalidVmConfig', 'NotAuthenticated', 'NoPermission', 'SecurityError', 'InvalidLogin',
  'InsufficientResourcesFault', 'InvalidState', 'GenericVmConfigFault', 'VmConfigFault', 'NotSupported',
  'InvalidArgument', 'InvalidRequest', 'ManagedObjectNotFound', 'InvalidName', 'DuplicateName', 'AlreadyExists',
  'NotFound', 'SnapshotFault', 'InvalidDatastore', 'InvalidDatastorePath', 'NoDiskSpace', 'FileAlreadyExists',
  'RequestCanceled', 'Timedout', 'HostCommunication', 'HostNotConnected', 'SystemError', 'MethodDisabled',
  'InvalidProperty', 'ConcurrentAccess', 'VmFaultToleranceIssue', 'ToolsUnavailable', 'InvalidCollectorVersion',
  'OutOfBounds', 'DeviceUnsupportedForVmVersion', 'CannotAccessFile', 'InvalidType', 'InvalidPrivilege',
];

/** Polymorphic bases whose every subtype the schema carries (device lists). */
const ALL_SUBTYPES_OF = [
  'VirtualDevice', 'VirtualDeviceBackingInfo', 'VirtualDeviceConnectInfo', 'VirtualDeviceBusSlotInfo',
  'ScsiLun',
];

// ---------------------------------------------------------------- parse types.go

const structs = new Map(); // name -> { base, fields: [{ name, goType, tag }] }
for (const m of goTypes.matchAll(/^type (\w+) struct \{\n([\s\S]*?)^\}/gm)) {
  const [, name, body] = m;
  let base;
  const fields = [];
  for (const line of body.split('\n')) {
    const emb = /^\t(\w+)$/.exec(line);
    if (emb) { base = emb[1]; continue; }
    const f = /^\t(\w+)\s+(\S+)\s+`xml:"([^"]*)"`/.exec(line);
    if (f) fields.push({ goName: f[1], goType: f[2], tag: f[3] });
  }
  structs.set(name, { base, fields });
}
const aliases = new Map(); // CreateSnapshot_Task -> CreateSnapshotRequestType
for (const m of goTypes.matchAll(/^type (\w+) (\w+)$/gm)) aliases.set(m[1], m[2]);
const enums = new Set();
for (const m of goEnums.matchAll(/^type (\w+) string$/gm)) enums.add(m[1]);

const subtypes = new Map();
for (const [name, s] of structs) {
  if (!s.base) continue;
  if (!subtypes.has(s.base)) subtypes.set(s.base, []);
  subtypes.get(s.base).push(name);
}
function allSubtypes(name, out = []) {
  for (const s of subtypes.get(name) ?? []) { out.push(s); allSubtypes(s, out); }
  return out;
}

const SCALARS = {
  string: 'xsd:string', bool: 'xsd:boolean', int8: 'xsd:byte', int16: 'xsd:short', int32: 'xsd:int',
  int64: 'xsd:long', int: 'xsd:int', float32: 'xsd:float', float64: 'xsd:double', 'time.Time': 'xsd:dateTime',
  AnyType: 'xsd:anyType', byte: 'xsd:byte',
};

/** Go field type -> { xsdType, refName?, list, optional }. */
function fieldType(goType) {
  let t = goType;
  let list = false;
  let optional = false;
  if (t === '[]byte') return { xsdType: 'xsd:base64Binary', list: false, optional: true };
  if (t === '[][]byte') return { xsdType: 'xsd:base64Binary', list: true, optional: true };
  if (t.startsWith('[]')) { list = true; optional = true; t = t.slice(2); }
  if (t.startsWith('*')) { optional = true; t = t.slice(1); }
  if (SCALARS[t]) return { xsdType: SCALARS[t], list, optional: optional || t === 'AnyType' };
  if (!structs.has(t) && t.startsWith('Base') && structs.has(t.slice(4))) { t = t.slice(4); optional = true; }
  if (enums.has(t)) return { xsdType: `vim25:${t}`, refName: t, list, optional };
  if (structs.has(t)) return { xsdType: `vim25:${t}`, refName: t, list, optional };
  throw new Error(`unknown Go type ${goType}`);
}

// ---------------------------------------------------------------- closure

const wanted = new Set();
const wantedEnums = new Set();
const queue = [];
const want = (n) => {
  if (enums.has(n)) { wantedEnums.add(n); return; }
  if (!structs.has(n)) throw new Error(`no type ${n}`);
  if (!wanted.has(n)) { wanted.add(n); queue.push(n); }
};
const ops = OPERATIONS.map((op) => {
  const req = aliases.get(op);
  if (!req) throw new Error(`no request type for ${op}`);
  const resp = structs.has(`${op}Response`) ? `${op}Response` : undefined;
  want(req);
  if (resp) want(resp);
  return { op, req, resp };
});
for (const t of [...EXTRA_TYPES, ...FAULTS]) want(t);
for (const b of ALL_SUBTYPES_OF) { want(b); for (const s of allSubtypes(b)) want(s); }
while (queue.length) {
  const n = queue.shift();
  const s = structs.get(n);
  if (s.base) want(s.base);
  for (const f of s.fields) {
    const [name, ...flags] = f.tag.split(',');
    if (flags.includes('attr') || flags.includes('chardata') || !name) continue;
    const ft = fieldType(f.goType);
    if (ft.refName) want(ft.refName);
  }
}

// ---------------------------------------------------------------- emit XSD

const out = [];
out.push('<?xml version="1.0" encoding="UTF-8"?>');
out.push('<!-- Generated by generate.mjs from govmomi vim25/types (field order = schema order). Do not edit. -->');
out.push('<schema xmlns="http://www.w3.org/2001/XMLSchema" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:vim25="urn:vim25" targetNamespace="urn:vim25" elementFormDefault="qualified">');
out.push('  <complexType name="ManagedObjectReference"><simpleContent><extension base="xsd:string"><attribute name="type" type="xsd:string"/></extension></simpleContent></complexType>');
for (const e of [...wantedEnums].sort()) out.push(`  <simpleType name="${e}"><restriction base="xsd:string"/></simpleType>`);
for (const n of [...wanted].filter((x) => x !== 'ManagedObjectReference').sort()) {
  const s = structs.get(n);
  const els = [];
  for (const f of s.fields) {
    const [name, ...flags] = f.tag.split(',');
    if (flags.includes('attr') || flags.includes('chardata') || !name) continue;
    const ft = fieldType(f.goType);
    const min = ft.optional || flags.includes('omitempty') ? ' minOccurs="0"' : '';
    const max = ft.list ? ' maxOccurs="unbounded"' : '';
    els.push(`<element name="${name}" type="${ft.xsdType}"${min}${max}/>`);
  }
  const seq = `<sequence>${els.join('')}</sequence>`;
  const body = s.base ? `<complexContent><extension base="vim25:${s.base}">${seq}</extension></complexContent>` : seq;
  out.push(`  <complexType name="${n}">${body}</complexType>`);
}
for (const { op, req, resp } of ops) {
  out.push(`  <element name="${op}" type="vim25:${req}"/>`);
  if (resp) out.push(`  <element name="${op}Response" type="vim25:${resp}"/>`);
  else out.push(`  <element name="${op}Response"><complexType><sequence/></complexType></element>`);
}
for (const f of FAULTS) out.push(`  <element name="${f}Fault" type="vim25:${f}"/>`);
out.push('</schema>');
fs.writeFileSync(path.join(outDir, 'vim25.xsd'), `${out.join('\n')}\n`);

// ---------------------------------------------------------------- emit WSDL

const w = [];
w.push('<?xml version="1.0" encoding="UTF-8"?>');
w.push('<!-- Generated by generate.mjs. Do not edit. The operations vmrestore calls, bound to vim25.xsd. -->');
w.push('<definitions targetNamespace="urn:vim25" xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:vim25="urn:vim25" xmlns:xsd="http://www.w3.org/2001/XMLSchema">');
w.push('  <types><schema xmlns="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:vim25"><include schemaLocation="vim25.xsd"/></schema></types>');
for (const { op } of ops) {
  w.push(`  <message name="${op}RequestMsg"><part name="parameters" element="vim25:${op}"/></message>`);
  w.push(`  <message name="${op}ResponseMsg"><part name="parameters" element="vim25:${op}Response"/></message>`);
}
w.push('  <portType name="VimPortType">');
for (const { op } of ops) w.push(`    <operation name="${op}"><input message="vim25:${op}RequestMsg"/><output message="vim25:${op}ResponseMsg"/></operation>`);
w.push('  </portType>');
w.push('  <binding name="VimBinding" type="vim25:VimPortType"><soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>');
for (const { op } of ops) w.push(`    <operation name="${op}"><soap:operation soapAction="urn:vim25/7.0"/><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation>`);
w.push('  </binding>');
w.push('  <service name="VimService"><port name="VimPort" binding="vim25:VimBinding"><soap:address location="https://localhost/sdk"/></port></service>');
w.push('</definitions>');
fs.writeFileSync(path.join(outDir, 'vim25.wsdl'), `${w.join('\n')}\n`);
console.log(`vim25.xsd: ${wanted.size} complex types, ${wantedEnums.size} enums, ${ops.length} operations`);

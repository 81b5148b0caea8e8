// vSphere Web Services client (vim25 over SOAP): sessions, reads, tasks,
// VM operations, snapshots, and the schema check of requests.
export * from './cbt';
export * from './client';
export * from './codec';
export * from './errors';
export * from './inventory';
export * from './pool';
export * from './properties';
export { parseResponse, soapFaultError } from './response';
export { Schema, vim25Schema, shippedXsd, wsdlDir, type SchemaField, type ComplexType, type TypeName } from './schema';
export { checkRequest, assertRequestConforms } from './schema-check';
export * from './snapshots';
export * from './tasks';
export { normalizeThumbprint, type TlsOptions } from './transport';
export * from './types';
export * from './vm';

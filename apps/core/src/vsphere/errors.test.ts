import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JobError } from '../errors';
import { FAULT_CODES, VSphereError, faultError, faultRule } from './errors';
import { parseResponse, schemaParents } from './response';
import { vim25Schema } from './schema';

const schema = vim25Schema();
const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8');

describe('fault mapping', () => {
  test.each([
    ['InvalidPowerState', 'VSPHERE_INVALID_POWER_STATE', false],
    ['TaskInProgress', 'VSPHERE_TASK_IN_PROGRESS', false],
    ['FileNotFound', 'VSPHERE_FILE_NOT_FOUND', true],
    ['InvalidDeviceSpec', 'VSPHERE_INVALID_DEVICE_SPEC', true],
    ['NotAuthenticated', 'VSPHERE_NOT_AUTHENTICATED', false],
    ['NoPermission', 'VSPHERE_NO_PERMISSION', true],
    ['InvalidLogin', 'VSPHERE_INVALID_LOGIN', true],
    ['InsufficientResourcesFault', 'VSPHERE_INSUFFICIENT_RESOURCES', false],
    ['InvalidState', 'VSPHERE_INVALID_STATE', false],
    ['GenericVmConfigFault', 'VSPHERE_VM_CONFIG_FAULT', true],
    ['NotSupported', 'VSPHERE_NOT_SUPPORTED', true],
    ['ManagedObjectNotFound', 'VSPHERE_OBJECT_NOT_FOUND', true],
  ])('%s -> %s (permanent %s)', (type, code, permanent) => {
    const err = faultError({ _type: type }, type, 'it broke', 'PowerOnVM_Task on vm-1', schemaParents(schema));
    expect(err).toBeInstanceOf(VSphereError);
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(JobError); // the worker's retry policy reads `permanent` directly
    expect(err.name).toBe('VSphereError');
    expect(err).toMatchObject({ code, permanent, faultType: type, fault: { _type: type } });
    expect(err.message).toBe(`PowerOnVM_Task on vm-1: ${type}: it broke`);
  });

  test('a fault without its own rule takes its nearest known ancestor\'s, per the schema', () => {
    // InvalidDatastorePath -> InvalidDatastore; VmConfigFault subtypes -> VmConfigFault; FileFault subtypes -> FileFault.
    const parents = schemaParents(schema);
    expect(faultRule('InvalidDatastorePath', parents).code).toBe('VSPHERE_INVALID_DATASTORE');
    expect(faultRule('FileAlreadyExists', parents).code).toBe('VSPHERE_FILE_ALREADY_EXISTS');
    expect(parents('CannotAccessFile')).toBe('FileFault');
    expect(faultRule('SomeFaultFromTheFuture', parents)).toEqual({ code: 'VSPHERE_FAULT', permanent: false });
    expect(faultRule('MethodFault', parents)).toEqual({ code: 'VSPHERE_FAULT', permanent: false });
  });

  test('every mapped code is VSPHERE_ + upper snake case', () => {
    for (const r of Object.values(FAULT_CODES)) expect(r.code).toMatch(/^VSPHERE_[A-Z_]+$/);
  });

  test('SOAP fault of a call (captured from vcsim): typed detail, faultstring as the message', () => {
    let err: unknown;
    try {
      parseResponse(schema, 'RetrievePropertiesEx', 500, fixture('not-authenticated-fault.xml'));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 'VSPHERE_NOT_AUTHENTICATED',
      permanent: false,
      faultType: 'NotAuthenticated',
      fault: { _type: 'NotAuthenticated', object: { type: 'PropertyCollector', value: 'propertyCollector' }, privilegeId: 'System.View' },
      message: 'RetrievePropertiesEx: NotAuthenticated: The session is not authenticated.',
    });
  });

  test('SOAP fault with an empty faultstring keeps the typed fields', () => {
    expect(() => parseResponse(schema, 'ShutdownGuest', 500, fixture('shutdown-invalid-power-state-fault.xml'))).toThrow(
      expect.objectContaining({
        code: 'VSPHERE_INVALID_POWER_STATE',
        message: 'ShutdownGuest: InvalidPowerState',
        fault: { _type: 'InvalidPowerState', requestedState: 'poweredOn', existingState: 'poweredOff' },
      }),
    );
  });

  test('responses that are not SOAP are protocol errors', () => {
    expect(() => parseResponse(schema, 'CurrentTime', 502, '<html><body>Bad gateway')).toThrow(expect.objectContaining({ code: 'VSPHERE_PROTOCOL' }));
    expect(() => parseResponse(schema, 'CurrentTime', 200, '<a/>')).toThrow(expect.objectContaining({ code: 'VSPHERE_PROTOCOL' }));
  });
});

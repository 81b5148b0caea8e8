import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serializeRequest, SerializeError, readValue, type MoRef } from './codec';
import { parseResponse } from './response';
import { vim25Schema } from './schema';
import type { VirtualDisk, VirtualMachineSnapshotInfo, VirtualDevice } from './types';
import { vmDisks, layoutDiskChains } from './vm';
import { parseXml, child } from './xml';

const schema = vim25Schema();
const vm: MoRef = { type: 'VirtualMachine', value: 'vm-42' };
const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8');
/** Element names directly inside the operation element, in document order. */
const argNames = (body: string) => {
  const op = child(parseXml(body), 'Body')!.children[0]!;
  return op.children.map((c) => c.local);
};

describe('serializeRequest writes elements in schema order', () => {
  test('CreateSnapshot_Task: _this, name, description, memory, quiesce whatever the key order', () => {
    const body = serializeRequest(schema, 'CreateSnapshot_Task', { quiesce: false, memory: true, description: 'd', name: 'n', _this: vm });
    expect(argNames(body)).toEqual(['_this', 'name', 'description', 'memory', 'quiesce']);
    expect(body).toContain('<_this type="VirtualMachine">vm-42</_this><name>n</name><description>d</description><memory>true</memory><quiesce>false</quiesce>');
  });

  test('VirtualMachineConfigSpec fields and a polymorphic device list', () => {
    const body = serializeRequest(schema, 'ReconfigVM_Task', {
      _this: vm,
      spec: {
        deviceChange: [
          {
            device: {
              _type: 'VirtualDisk',
              capacityInKB: 1024,
              unitNumber: 1,
              controllerKey: 1000,
              backing: { _type: 'VirtualDiskFlatVer2BackingInfo', parent: null, thinProvisioned: true, diskMode: 'persistent', fileName: '' },
              key: -100,
            },
            fileOperation: 'create',
            operation: 'add',
          },
        ],
        changeTrackingEnabled: false,
        memoryMB: 64,
        numCPUs: 2,
        name: 'x',
      },
    });
    const spec = child(parseXml(body), 'Body')!.children[0]!.children[1]!;
    expect(spec.children.map((c) => c.local)).toEqual(['name', 'numCPUs', 'memoryMB', 'deviceChange', 'changeTrackingEnabled']);
    expect(body).toContain(
      '<deviceChange><operation>add</operation><fileOperation>create</fileOperation><device xsi:type="VirtualDisk"><key>-100</key>'
        + '<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName></fileName><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing>'
        + '<controllerKey>1000</controllerKey><unitNumber>1</unitNumber><capacityInKB>1024</capacityInKB></device></deviceChange>',
    );
    expect(body).not.toContain('parent');
  });

  test('escapes text and attribute values', () => {
    const body = serializeRequest(schema, 'FindByInventoryPath', { _this: { type: 'SearchIndex', value: 'SearchIndex' }, inventoryPath: 'DC0/vm/a<b>&"c' });
    expect(body).toContain('<inventoryPath>DC0/vm/a&lt;b&gt;&amp;&quot;c</inventoryPath>');
  });

  test('refuses what the schema does not know instead of sending or dropping it', () => {
    expect(() => serializeRequest(schema, 'CreateSnapshot_Task', { _this: vm, name: 'n', memory: false, quiesce: false, colour: 'red' })).toThrow(
      /CreateSnapshotRequestType has no field "colour"/,
    );
    expect(() => serializeRequest(schema, 'NoSuchMethod', { _this: vm })).toThrow(SerializeError);
    expect(() => serializeRequest(schema, 'ReconfigVM_Task', { _this: vm, spec: { deviceChange: [{ device: { _type: 'VirtualDiskFlatVer2BackingInfo', key: 1 } }] } })).toThrow(
      /is not a VirtualDevice/,
    );
    expect(() => serializeRequest(schema, 'CreateSnapshot_Task', { _this: vm, name: 'n', memory: 'yes', quiesce: false })).toThrow(/expected a boolean/);
    expect(() => serializeRequest(schema, 'ReconfigVM_Task', { _this: vm, spec: { numCPUs: 1.5 } })).toThrow(/expected an integer/);
  });

  test('anyType values get an xsi:type', () => {
    const body = serializeRequest(schema, 'ReconfigVM_Task', { _this: vm, spec: { extraConfig: [{ key: 'a', value: 'b' }, { key: 'n', value: 3 }] } });
    expect(body).toContain('<extraConfig><key>a</key><value xsi:type="xsd:string">b</value></extraConfig>');
    expect(body).toContain('<value xsi:type="xsd:int">3</value>');
  });
});

describe('parsing a captured vcsim response (fixtures/vm-config-response.xml)', () => {
  const xml = fixture('vm-config-response.xml');

  function props(doc: string) {
    const r = parseResponse(schema, 'RetrievePropertiesEx', 200, doc) as { objects: Array<{ obj: MoRef; propSet: Array<{ name: string; val: unknown }> }> };
    return Object.fromEntries(r.objects[0]!.propSet.map((p) => [p.name, p.val]));
  }

  test.each([
    ['as vcsim writes it (XMLSchema-instance:type)', xml],
    ['as vCenter writes it (xsi:type)', xml.replace(/xmlns:XMLSchema-instance=/g, 'xmlns:xsi=').replace(/XMLSchema-instance:type=/g, 'xsi:type=')],
    ['with any other prefix', xml.replace(/xmlns:XMLSchema-instance=/g, 'xmlns:q1=').replace(/XMLSchema-instance:type=/g, 'q1:type=')],
  ])('devices are typed by xsi:type, %s', (_label, doc) => {
    const p = props(doc);
    const devices = p['config.hardware.device'] as VirtualDevice[];
    expect(Array.isArray(devices)).toBe(true);
    expect(devices.map((d) => d._type)).toEqual(expect.arrayContaining(['VirtualIDEController', 'VirtualPS2Controller', 'VirtualDisk', 'VirtualE1000']));
    const disk = devices.find((d) => d._type === 'VirtualDisk') as VirtualDisk;
    expect(disk).toMatchObject({
      _type: 'VirtualDisk',
      key: 255511522,
      controllerKey: 202,
      unitNumber: 0,
      capacityInKB: 32768,
      capacityInBytes: 33554432,
      backing: {
        _type: 'VirtualDiskFlatVer2BackingInfo',
        fileName: '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0-000001.vmdk',
        diskMode: 'persistent',
        thinProvisioned: true,
        datastore: { type: 'Datastore' },
        parent: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk', thinProvisioned: true },
      },
    });
    const ps2 = devices.find((d) => d._type === 'VirtualPS2Controller');
    expect(ps2?.device).toEqual([600, 700]);
    expect(p['runtime.powerState']).toBe('poweredOn');
  });

  test('disks: current file is the delta, chain from the backing parents; layoutEx chains agree', () => {
    const p = props(xml);
    const disks = vmDisks(p['config.hardware.device'] as VirtualDevice[]);
    expect(disks).toEqual([
      expect.objectContaining({
        key: 255511522,
        fileName: '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0-000001.vmdk',
        chain: ['[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0-000001.vmdk', '[LocalDS_0] DC0_H0_VM0/DC0_H0_VM0.vmdk'],
        capacityInBytes: 33554432,
        backingType: 'VirtualDiskFlatVer2BackingInfo',
      }),
    ]);
    const snap = p.snapshot as VirtualMachineSnapshotInfo;
    expect(snap.currentSnapshot).toEqual({ type: 'VirtualMachineSnapshot', value: 'snapshot-69' });
    expect(snap.rootSnapshotList?.[0]).toMatchObject({ name: 'fixture', snapshot: { value: 'snapshot-69' }, quiesced: false, state: 'poweredOn' });
    const layoutDisk = p['layoutEx.disk'] as Array<{ key: number; chain: Array<{ fileKey: number[] }> }>;
    expect(layoutDisk[0]!.key).toBe(255511522);
    expect(layoutDisk[0]!.chain.every((u) => Array.isArray(u.fileKey))).toBe(true);
    expect(layoutDiskChains(undefined).size).toBe(0);
  });

  test('a value of a type the schema does not carry is read generically', () => {
    const el = parseXml('<val xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="SomeFutureType"><a>1</a><b>x</b><b>y</b><r type="HostSystem">host-1</r></val>');
    expect(readValue(schema, el)).toEqual({ _type: 'SomeFutureType', a: '1', b: ['x', 'y'], r: { type: 'HostSystem', value: 'host-1' } });
  });
});

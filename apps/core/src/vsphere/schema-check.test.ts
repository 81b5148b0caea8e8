import fc from 'fast-check';
import { serializeRequest, type MoRef } from './codec';
import { vim25Schema } from './schema';
import { checkRequest, assertRequestConforms } from './schema-check';

const schema = vim25Schema();
const vm: MoRef = { type: 'VirtualMachine', value: 'vm-42' };

/** Swaps the first occurrences of two sibling elements (whole subtrees) in a serialized body. */
function swap(body: string, a: string, b: string): string {
  const grab = (name: string) => {
    const start = body.search(new RegExp(`<${name}[ >]`));
    const close = `</${name}>`;
    const end = body.indexOf(close, start) + close.length;
    return { start, end, text: body.slice(start, end) };
  };
  const x = grab(a);
  const y = grab(b);
  if (x.start < 0 || y.start < 0) throw new Error('element not found');
  const [first, second] = x.start < y.start ? [x, y] : [y, x];
  return body.slice(0, first.start) + second.text + body.slice(first.end, second.start) + first.text + body.slice(second.end);
}

const createSnapshot = () => serializeRequest(schema, 'CreateSnapshot_Task', { _this: vm, name: 'n', description: 'd', memory: false, quiesce: false });
const configSpec = () =>
  serializeRequest(schema, 'CreateVM_Task', {
    _this: { type: 'Folder', value: 'group-v3' },
    config: {
      name: 'new',
      guestId: 'otherGuest',
      files: { vmPathName: '[LocalDS_0]' },
      numCPUs: 1,
      memoryMB: 64,
      deviceChange: [
        { operation: 'add', device: { _type: 'VirtualLsiLogicController', key: -44, busNumber: 0, sharedBus: 'noSharing' } },
        {
          operation: 'add',
          fileOperation: 'create',
          device: {
            _type: 'VirtualDisk',
            key: -100,
            controllerKey: -44,
            unitNumber: 0,
            capacityInKB: 4096,
            backing: { _type: 'VirtualDiskFlatVer2BackingInfo', fileName: '', diskMode: 'persistent' },
          },
        },
      ],
    },
    pool: { type: 'ResourcePool', value: 'resgroup-1' },
  });

describe('schema-check', () => {
  test('what the serializer writes conforms', () => {
    expect(checkRequest(createSnapshot())).toEqual([]);
    expect(checkRequest(configSpec())).toEqual([]);
  });

  test.each([
    ['name', 'description'],
    ['description', 'memory'],
    ['memory', 'quiesce'],
    ['name', 'quiesce'],
  ])('CreateSnapshot_Task with <%s> and <%s> swapped fails', (a, b) => {
    const problems = checkRequest(swap(createSnapshot(), a, b));
    expect(problems.join('\n')).toMatch(/out of order in CreateSnapshotRequestType/);
    expect(() => assertRequestConforms(swap(createSnapshot(), a, b))).toThrow(/does not conform to vim25.xsd/);
  });

  test.each([
    ['name', 'guestId'],
    ['numCPUs', 'memoryMB'],
    ['files', 'deviceChange'],
  ])('VirtualMachineConfigSpec with <%s> and <%s> swapped fails', (a, b) => {
    expect(checkRequest(swap(configSpec(), a, b)).join('\n')).toMatch(/out of order in VirtualMachineConfigSpec/);
  });

  test('device fields out of order are caught inside the xsi:type', () => {
    expect(checkRequest(swap(configSpec(), 'unitNumber', 'controllerKey')).join('\n')).toMatch(/out of order in VirtualDisk/);
    expect(checkRequest(swap(configSpec(), 'fileName', 'diskMode')).join('\n')).toMatch(/out of order in VirtualDiskFlatVer2BackingInfo/);
  });

  test('unknown elements, repeated singles, missing required, bad xsi:type, bad scalars', () => {
    const body = createSnapshot();
    expect(checkRequest(body.replace('<memory>', '<colour>red</colour><memory>'))).toEqual([
      'CreateSnapshot_Task/colour: CreateSnapshotRequestType has no element colour',
    ]);
    expect(checkRequest(body.replace('<memory>false</memory>', '<memory>false</memory><memory>true</memory>'))[0]).toMatch(/appears more than once/);
    expect(checkRequest(body.replace('<quiesce>false</quiesce>', ''))).toEqual(['CreateSnapshot_Task: CreateSnapshotRequestType requires <quiesce>']);
    expect(checkRequest(body.replace('<memory>false</memory>', '<memory>no</memory>'))[0]).toMatch(/is not a boolean/);
    expect(checkRequest(configSpec().replace('xsi:type="VirtualDisk"', 'xsi:type="VirtualDiskFlatVer2BackingInfo"'))[0]).toMatch(/is not a VirtualDevice/);
    expect(checkRequest(configSpec().replace('<numCPUs>1</numCPUs>', '<numCPUs>one</numCPUs>'))[0]).toMatch(/not an integer/);
    expect(checkRequest('<x/>')).toEqual(['root is not a SOAP 1.1 Envelope']);
  });

  test('property: any key order of a config spec serializes to a conforming body; swapping two distinct siblings breaks it', () => {
    const fields: Array<[string, unknown]> = [
      ['name', 'vm'],
      ['version', 'vmx-13'],
      ['guestId', 'otherGuest'],
      ['files', { vmPathName: '[ds]' }],
      ['numCPUs', 2],
      ['memoryMB', 128],
      ['changeTrackingEnabled', true],
      ['deviceChange', [{ operation: 'remove', device: { _type: 'VirtualCdrom', key: 3000 } }]],
    ];
    fc.assert(
      fc.property(fc.shuffledSubarray(fields, { minLength: 2 }), fc.nat(), (picked, k) => {
        const body = serializeRequest(schema, 'ReconfigVM_Task', { _this: vm, spec: Object.fromEntries(picked) });
        expect(checkRequest(body)).toEqual([]);
        const names = picked.map(([n]) => n).sort((a, b) => fields.findIndex(([x]) => x === a) - fields.findIndex(([x]) => x === b));
        const i = k % (names.length - 1);
        expect(checkRequest(swap(body, names[i]!, names[i + 1]!)).join()).toMatch(/out of order in VirtualMachineConfigSpec/);
      }),
      { numRuns: 60 },
    );
  });
});

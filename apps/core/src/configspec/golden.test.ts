// The MISSION's worked example of a spec (R5), reproduced from the saved
// config it corresponds to.
import { child, parseXml } from '../vsphere/xml';
import { buildCreateSpec } from './build';
import { WORKED_EXAMPLE_TEMP_KEYS, createVmRequest, workedExampleConfig, workedExampleSpec } from './fixtures';

const build = () =>
  buildCreateSpec({ config: workedExampleConfig(), name: 'My New VM', datastore: 'plat004-local', tempKeys: WORKED_EXAMPLE_TEMP_KEYS });

describe('the worked example', () => {
  test('the spec is the worked example, plus changeTrackingEnabled false (R3)', () => {
    const { spec, warnings } = build();
    expect(spec).toEqual({ ...workedExampleSpec(), changeTrackingEnabled: false });
    expect(warnings).toEqual([]);
  });

  test('field for field, in schema order, as CreateVM_Task sends it', () => {
    const { body, problems } = createVmRequest(build().spec);
    expect(problems).toEqual([]);
    const config = child(child(parseXml(body), 'Body')!.children[0]!, 'config')!;
    expect(config.children.map((c) => c.local)).toEqual([
      'name', 'version', 'guestId', 'files', 'tools', 'flags', 'powerOpInfo', 'numCPUs', 'memoryMB',
      'deviceChange', 'deviceChange', 'deviceChange', 'deviceChange', 'deviceChange',
      'cpuAllocation', 'memoryAllocation', 'changeTrackingEnabled',
    ]);
    expect(body).toContain(
      '<deviceChange><operation>add</operation><device xsi:type="VirtualCdrom"><key>-42</key><backing xsi:type="VirtualCdromRemotePassthroughBackingInfo"><deviceName></deviceName><exclusive>false</exclusive></backing><controllerKey>200</controllerKey><unitNumber>0</unitNumber></device></deviceChange>',
    );
    expect(body).toContain('<device xsi:type="VirtualLsiLogicController"><key>-44</key><busNumber>0</busNumber><sharedBus>noSharing</sharedBus></device>');
    expect(body).toContain(
      '<device xsi:type="VirtualPCNet32"><key>-48</key><backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>Virtual Machine Network</deviceName></backing><connectable><startConnected>true</startConnected><allowGuestControl>true</allowGuestControl><connected>true</connected></connectable><addressType>generated</addressType><wakeOnLanEnabled>true</wakeOnLanEnabled></device>',
    );
    expect(body).toContain(
      '<deviceChange><operation>add</operation><fileOperation>create</fileOperation><device xsi:type="VirtualDisk"><key>-1000000</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[plat004-local]</fileName><diskMode>persistent</diskMode></backing><controllerKey>-44</controllerKey><unitNumber>0</unitNumber><capacityInKB>524288</capacityInKB></device></deviceChange>',
    );
    expect(body).toContain('<key>-100</key><backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[plat004-local]</fileName><diskMode>persistent</diskMode></backing><controllerKey>-44</controllerKey><unitNumber>1</unitNumber><capacityInKB>131072</capacityInKB>');
    expect(body).toContain('<cpuAllocation><reservation>0</reservation><shares><shares>100</shares><level>normal</level></shares></cpuAllocation>');
    expect(body).toContain('<powerOpInfo><powerOffType>preset</powerOffType><suspendType>preset</suspendType><resetType>preset</resetType><standbyAction>powerOnSuspend</standbyAction></powerOpInfo>');
    // parent null: no <parent> element at all (the saved second disk had a parent).
    expect(body).not.toContain('<parent');
  });

  test('the placements name each disk by controller, bus and unit', () => {
    const { disks, nics } = build();
    expect(disks).toEqual([
      { savedKey: 2000, tempKey: -1000000, controllerKey: -44, controllerType: 'VirtualLsiLogicController', busNumber: 0, unitNumber: 0, capacityInKB: 524288, capacityBytes: 524288 * 1024, datastore: 'plat004-local', fileName: '[plat004-local]', diskMode: 'persistent', provisioning: undefined },
      { savedKey: 2001, tempKey: -100, controllerKey: -44, controllerType: 'VirtualLsiLogicController', busNumber: 0, unitNumber: 1, capacityInKB: 131072, capacityBytes: 131072 * 1024, datastore: 'plat004-local', fileName: '[plat004-local]', diskMode: 'persistent', provisioning: undefined },
    ]);
    expect(nics).toEqual([
      { savedKey: 4000, tempKey: -48, deviceType: 'VirtualPCNet32', backingType: 'VirtualEthernetCardNetworkBackingInfo', network: 'Virtual Machine Network', addressType: 'generated', macAddress: undefined, savedMacAddress: '00:50:56:9a:00:48' },
    ]);
  });

  test('the saved config is not modified', () => {
    const config = workedExampleConfig();
    const before = JSON.stringify(config);
    buildCreateSpec({ config, name: 'My New VM', datastore: 'plat004-local' });
    expect(JSON.stringify(config)).toBe(before);
  });
});

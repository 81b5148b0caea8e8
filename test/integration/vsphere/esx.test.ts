// The same client against a standalone ESXi (vcsim -esx): no vCenter
// inventory, ha-datacenter, one host.
import {
  VSphereClient,
  configTargetLuns,
  createSnapshot,
  findAll,
  findVm,
  getVmInfo,
  powerOff,
  powerOn,
  propValue,
  queryConfigTarget,
  removeAllSnapshots,
  type MoRef,
} from '../../../apps/core/src/vsphere';
import { clientOptions, expectAllRequestsConform, startVcsim, type Vcsim } from '../../support/vcsim';

let sim: Vcsim;
let c: VSphereClient;
beforeAll(async () => {
  sim = await startVcsim(['-esx', '-luns', '1']);
  c = await VSphereClient.connect(clientOptions(sim, { thumbprint: sim.thumbprintSha1 }));
}, 180_000);
afterAll(async () => {
  await c?.close();
  await sim?.stop();
});

test('ESXi: host agent API, VM lookup, power, snapshot with a delta disk, config target', async () => {
  expect(c.serviceContent.about.apiType).toBe('HostAgent');
  const vms = await findAll(c, 'VirtualMachine', ['name']);
  expect(vms.length).toBeGreaterThan(0);
  const name = propValue<string>(vms[0]!, 'name')!;
  const vm: MoRef = await findVm(c, { inventoryPath: `ha-datacenter/vm/${name}` });
  expect(vm).toEqual(vms[0]!.obj);

  expect(await powerOff(c, vm, { guestShutdown: false, pollMs: 20 })).toBe('hardOff');
  await createSnapshot(c, vm, { name: 'temp' }, { pollMs: 20 });
  const info = await getVmInfo(c, vm);
  expect(info.disks[0]!.fileName).toMatch(/-000001\.vmdk$/);
  await removeAllSnapshots(c, vm, { pollMs: 20 });
  expect((await getVmInfo(c, vm)).disks[0]!.fileName).not.toMatch(/-00000\d\.vmdk$/);
  await powerOn(c, vm, { pollMs: 20 });

  expect(configTargetLuns(await queryConfigTarget(c, vm))).toHaveLength(1);
  expectAllRequestsConform();
});

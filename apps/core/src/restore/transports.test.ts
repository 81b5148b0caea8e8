import { chooseDiskTransports } from './preflight';

const thick = (key: number) => ({ key, thin: false });
const thin = (key: number) => ({ key, thin: true });
const lists = (r: ReturnType<typeof chooseDiskTransports>) => Object.fromEntries(r.map((c) => [c.key, c.transports]));

describe('transport per disk by rule', () => {
  it('keeps SAN for thick disks only, the other requested transports for thin ones', () => {
    expect(lists(chooseDiskTransports(['san', 'nbdssl'], [thick(2000), thick(2001)]))).toEqual({ 2000: ['san', 'nbdssl'], 2001: ['san', 'nbdssl'] });
    const r = chooseDiskTransports(['hotadd', 'san', 'nbd'], [thin(2000)]);
    expect(r).toEqual([{ key: 2000, transports: ['hotadd', 'nbd'], reason: expect.stringContaining('thin disk') }]);
    expect(lists(chooseDiskTransports(['nbdssl', 'nbd'], [thin(1), thick(2)]))).toEqual({ 1: ['nbdssl', 'nbd'], 2: ['nbdssl', 'nbd'] });
  });

  it('never mixes SAN with other transports in one restore (the final revert would discard the others\u2019 writes)', () => {
    const r = chooseDiskTransports(['san', 'nbdssl'], [thick(2000), thin(2001)]);
    expect(lists(r)).toEqual({ 2000: ['nbdssl'], 2001: ['nbdssl'] });
    expect(r[0]!.reason).toMatch(/SAN dropped/);
    expect(() => chooseDiskTransports(['san'], [thick(2000), thin(2001)])).toThrow(expect.objectContaining({ code: 'TRANSPORT_UNAVAILABLE' }));
  });

  it('a per-disk override wins, and is held to the no-mix rule too', () => {
    expect(lists(chooseDiskTransports(['san', 'nbdssl'], [thick(1), thick(2)], { 2: ['hotadd'] }))).toEqual({ 1: ['nbdssl'], 2: ['hotadd'] });
    expect(chooseDiskTransports(['nbd'], [thin(1)], { 1: ['san'] })).toEqual([{ key: 1, transports: ['san'], reason: 'options.diskTransports' }]);
    expect(() => chooseDiskTransports(['nbd'], [thin(1), thin(2)], { 1: ['san'] })).toThrow(/can only use SAN/);
  });

  it('refuses a disk no requested transport can write, naming it', () => {
    expect(() => chooseDiskTransports(['san'], [thin(2001)])).toThrow(/disk 2001/);
    expect(() => chooseDiskTransports(['file'], [thick(1)])).toThrow(expect.objectContaining({ code: 'TRANSPORT_UNAVAILABLE' }));
  });
});

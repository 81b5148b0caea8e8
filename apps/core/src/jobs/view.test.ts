import { percent, redactResult } from './view';

describe('progress percent', () => {
  it.each([
    [0n, 0n, 0],
    [5n, 0n, 0],
    [1n, 3n, 33.33],
    [3n, 3n, 100],
    [4n, 3n, 100],
    [2n ** 40n, 2n ** 41n, 50],
  ])('%s of %s is %s', (done, total, want) => {
    expect(percent(done, total)).toBe(want);
  });
});

describe('step results through the API', () => {
  it('redacts guestinfo values of a ConfigSpec, keeping everything else', () => {
    const r = redactResult({ name: 'x', spec: { name: 'vm', extraConfig: [{ key: 'guestinfo.userdata', value: 'secret-pw' }, { key: 'svga.present', value: 'TRUE' }] } });
    expect(r).toEqual({ name: 'x', spec: { name: 'vm', extraConfig: [{ key: 'guestinfo.userdata', value: '[redacted]' }, { key: 'svga.present', value: 'TRUE' }] } });
    expect(JSON.stringify(r)).not.toContain('secret-pw');
    expect(redactResult(null)).toBeNull();
  });
});

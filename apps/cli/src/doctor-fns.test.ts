import { renderDoctor, safeUrl, scrub, urlPassword, vddkVersion } from './doctor-fns';

describe('doctor helpers', () => {
  it('reads the VDDK version from the library file names', () => {
    expect(vddkVersion(['libvixDiskLib.so', 'libvixDiskLib.so.8', 'libvixDiskLib.so.8.0.3'], { 'libvixDiskLib.so.8': '/opt/vddk/lib64/libvixDiskLib.so.8.0.3' })).toEqual({ soname: 'libvixDiskLib.so.8', version: '8.0.3' });
    // No symlink target: the highest full version beside the soname.
    expect(vddkVersion(['libvixDiskLib.so.7', 'libvixDiskLib.so.7.0.2', 'libvixDiskLib.so.7.0.10'])).toEqual({ soname: 'libvixDiskLib.so.7', version: '7.0.10' });
    // The addon prefers 8 over 7 over 6.
    expect(vddkVersion(['libvixDiskLib.so.6', 'libvixDiskLib.so.8'])?.soname).toBe('libvixDiskLib.so.8');
    expect(vddkVersion(['libvixDiskLib.so.8'])).toEqual({ soname: 'libvixDiskLib.so.8', version: '8' });
    expect(vddkVersion(['libvixDiskLib.so', 'libfoo.so.8'])).toBeNull();
  });

  it('never shows a password', () => {
    expect(safeUrl('postgresql://vmr:s3cret@db:5432/vmrestore?sslmode=require&password=x')).toBe('postgresql://vmr@db:5432/vmrestore');
    expect(safeUrl('redis://:s3cret@redis:6379')).toBe('redis://redis:6379');
    expect(urlPassword('redis://:s%40cret@redis:6379')).toBe('s@cret');
    // Several hosts: Sentinel and Cluster URLs.
    expect(safeUrl('redis-cluster://u:s3cret@h1:7000,h2:7001')).toBe('redis-cluster://u@h1:7000,h2:7001');
    expect(safeUrl('redis-sentinel://:s3cret@h1:26379,h2:26379/mymaster?sentinelPassword=x')).toBe('redis-sentinel://h1:26379,h2:26379/mymaster');
    expect(urlPassword('rediss-cluster://u:p%40ss@h1:7000,h2:7001')).toBe('p@ss');
    expect(safeUrl('not a url')).toBe('(not a URL)');
    expect(scrub('login as vmr/s3cret failed', ['s3cret', undefined])).toBe('login as vmr/[redacted] failed');
  });

  it('renders ok/warn/fail with hints and a count', () => {
    const text = renderDoctor([
      { check: 'redis', name: 'redis', status: 'ok', detail: 'reachable' },
      { check: 'vddk', name: 'vddk', status: 'warn', detail: 'not set', hint: 'set it' },
      { check: 'datastores', name: 'datastore ds1', status: 'fail', detail: '/x: ENOENT', hint: 'mount it' },
    ]);
    expect(text.split('\n')).toEqual([
      'ok    redis          reachable',
      'WARN  vddk           not set',
      '                     hint: set it',
      'FAIL  datastore ds1  /x: ENOENT',
      '                     hint: mount it',
      '',
      '1 ok, 1 warning, 1 failed',
    ]);
  });
});

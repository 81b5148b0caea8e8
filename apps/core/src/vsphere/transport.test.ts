import { SoapTransport, normalizeThumbprint } from './transport';

describe('certificate settings', () => {
  test('thumbprints are normalized and their algorithm told by length', () => {
    expect(normalizeThumbprint('aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd')).toEqual({
      algo: 'sha1',
      value: 'AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD',
    });
    expect(normalizeThumbprint('0'.repeat(64)).algo).toBe('sha256');
    expect(() => normalizeThumbprint('zz'.repeat(20))).toThrow(/SHA-1 \(40 hex digits\) or SHA-256/);
    expect(() => normalizeThumbprint('ab'.repeat(21))).toThrow(expect.objectContaining({ code: 'VSPHERE_TLS_CONFIG', permanent: true }));
  });

  test('no CA and no thumbprint: refused unless insecure is asked for explicitly', () => {
    expect(() => new SoapTransport('https://vc.example/sdk', {})).toThrow(expect.objectContaining({ code: 'VSPHERE_TLS_CONFIG' }));
    expect(() => new SoapTransport('https://vc.example/sdk', { insecure: false })).toThrow(/no CA bundle and no certificate thumbprint/);
    new SoapTransport('https://vc.example/sdk', { insecure: true }).close();
    new SoapTransport('https://vc.example/sdk', { thumbprint: 'ab'.repeat(32) }).close();
    new SoapTransport('https://vc.example/sdk', { ca: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' }).close();
  });

  test('plain http is refused', () => {
    expect(() => new SoapTransport('http://vc.example/sdk', { insecure: true })).toThrow(/must be https/);
  });
});

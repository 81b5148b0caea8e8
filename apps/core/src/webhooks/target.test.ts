import { classifyAddress, parseV6, validateWebhookUrl, type Lookup } from './target';
import { WebhookTargetError } from './errors';

const strict = { allowPrivate: false, allowHttp: false };
const fixed = (...addrs: string[]): Lookup => async () => addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }) as const);

async function refusal(p: Promise<unknown>): Promise<{ reason: string; message: string; code: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookTargetError);
    const e = err as WebhookTargetError;
    return { reason: e.reason, message: e.message, code: e.code };
  }
  throw new Error('was not refused');
}

describe('classifyAddress', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'reserved'],
    ['10.1.2.3', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link_local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'link_local'],
    ['::ffff:8.8.8.8', 'public'],
    ['::127.0.0.1', 'reserved'],
    ['64:ff9b::a9fe:a9fe', 'link_local'],
    ['2002:c0a8:0101::1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['febf::1', 'link_local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['2001:0::1', 'reserved'],
    ['100::1', 'reserved'],
    ['not an ip', 'reserved'],
  ])('%s is %s', (addr, kind) => {
    expect(classifyAddress(addr)).toBe(kind);
  });

  it('parses IPv6 forms', () => {
    expect(parseV6('::')).toEqual(new Array(16).fill(0));
    expect(parseV6('1:2:3:4:5:6:7:8')?.[15]).toBe(8);
    expect(parseV6('1::2::3')).toBeNull();
    expect(parseV6('1:2:3:4:5:6:7:8:9')).toBeNull();
    expect(parseV6('::ffff:1.2.3.4')?.slice(12)).toEqual([1, 2, 3, 4]);
  });
});

describe('validateWebhookUrl', () => {
  it('accepts an https URL whose host resolves to public addresses', async () => {
    const t = await validateWebhookUrl('https://hooks.example.com/x?y=1', strict, fixed('93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'));
    expect(t.host).toBe('hooks.example.com');
    expect(t.addresses).toHaveLength(2);
  });

  it('refuses http unless allowed, and other schemes always', async () => {
    expect((await refusal(validateWebhookUrl('http://hooks.example.com/', strict, fixed('93.184.215.14')))).reason).toBe('scheme');
    await expect(validateWebhookUrl('http://hooks.example.com/', { allowPrivate: false, allowHttp: true }, fixed('93.184.215.14'))).resolves.toBeTruthy();
    expect((await refusal(validateWebhookUrl('ftp://hooks.example.com/', { allowPrivate: true, allowHttp: true }))).reason).toBe('scheme');
    expect((await refusal(validateWebhookUrl('file:///etc/passwd', { allowPrivate: true, allowHttp: true }))).reason).toBe('scheme');
  });

  it('refuses credentials in the URL without echoing them', async () => {
    const r = await refusal(validateWebhookUrl('https://user:hunter2@hooks.example.com/', strict, fixed('93.184.215.14')));
    expect(r.reason).toBe('credentials');
    expect(r.code).toBe('WEBHOOK_TARGET_REFUSED');
    expect(r.message).not.toContain('hunter2');
  });

  it('refuses garbage and very long URLs', async () => {
    expect((await refusal(validateWebhookUrl('not a url', strict))).reason).toBe('invalid_url');
    expect((await refusal(validateWebhookUrl(`https://a.example.com/${'x'.repeat(2100)}`, strict))).reason).toBe('invalid_url');
  });

  it.each([
    ['https://127.0.0.1/', 'loopback'],
    ['https://[::1]/', 'loopback'],
    ['https://[::ffff:192.168.0.1]/', 'private'],
    ['https://169.254.169.254/latest/meta-data', 'link_local'],
    ['https://0.0.0.0/', 'unspecified'],
    ['https://10.0.0.5:8443/', 'private'],
  ])('refuses the literal %s (%s)', async (url, reason) => {
    expect((await refusal(validateWebhookUrl(url, strict, fixed()))).reason).toBe(reason);
  });

  it('refuses a name that resolves to any private address (all are checked)', async () => {
    const r = await refusal(validateWebhookUrl('https://rebind.example.com/', strict, fixed('93.184.215.14', '10.0.0.1')));
    expect(r.reason).toBe('private');
    expect(r.message).toContain('rebind.example.com (10.0.0.1)');
  });

  it('refuses a name that does not resolve', async () => {
    const failing: Lookup = async () => {
      throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
    };
    expect((await refusal(validateWebhookUrl('https://nowhere.invalid/', strict, failing))).reason).toBe('unresolvable');
  });

  it('allows private targets when allowPrivate is set', async () => {
    const t = await validateWebhookUrl('http://127.0.0.1:9999/hook', { allowPrivate: true, allowHttp: true });
    expect(t.addresses).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });

  it('resolves localhost through the system resolver and refuses it', async () => {
    expect((await refusal(validateWebhookUrl('https://localhost/', strict))).reason).toBe('loopback');
  });
});

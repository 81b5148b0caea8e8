import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { WebhookTargetError, type TargetRefusal } from './errors';

// Where a webhook may point. Checked when the webhook is created and again
// before every attempt (DNS may have changed: rebinding), and the request
// then connects to an address that passed the check, not to a fresh lookup.

export interface TargetPolicy {
  /** Allow loopback, private, link-local... addresses (tests, on-premises receivers). */
  allowPrivate: boolean;
  /** Allow http:// (otherwise https:// only). */
  allowHttp: boolean;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface CheckedTarget {
  url: URL;
  /** The host as written, without IPv6 brackets. */
  host: string;
  /** Every address the host resolved to; all passed the check. */
  addresses: ResolvedAddress[];
}

export type Lookup = (host: string) => Promise<ResolvedAddress[]>;

export const systemLookup: Lookup = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => {
      if (err) reject(err);
      else resolve(addrs.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
    });
  });

export const MAX_URL_LENGTH = 2048;

/**
 * Parses and checks a webhook URL, resolving its host. Throws
 * WebhookTargetError (code WEBHOOK_TARGET_REFUSED) with a reason.
 */
export async function validateWebhookUrl(raw: string, policy: TargetPolicy, lookup: Lookup = systemLookup): Promise<CheckedTarget> {
  const url = parseWebhookUrl(raw, policy);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  let addresses: ResolvedAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await lookup(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new WebhookTargetError('unresolvable', `the host ${host} does not resolve (${code})`);
    }
    if (!addresses.length) throw new WebhookTargetError('unresolvable', `the host ${host} does not resolve`);
  }
  if (!policy.allowPrivate) {
    // Every address must pass: a client may connect to any of them.
    for (const a of addresses) {
      const kind = classifyAddress(a.address);
      if (kind !== 'public') {
        const shown = a.address === host ? host : `${host} (${a.address})`;
        throw new WebhookTargetError(kind, `the address of ${shown} is ${kind.replace('_', '-')}: webhooks may only call public addresses`);
      }
    }
  }
  return { url, host, addresses };
}

/** The checks that need no DNS: scheme, credentials, length. */
export function parseWebhookUrl(raw: string, policy: Pick<TargetPolicy, 'allowHttp'>): URL {
  if (typeof raw !== 'string' || raw.length > MAX_URL_LENGTH) throw new WebhookTargetError('invalid_url', `the URL must be a string of at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetError('invalid_url', 'the URL is not valid');
  }
  if (url.protocol !== 'https:' && !(policy.allowHttp && url.protocol === 'http:')) {
    throw new WebhookTargetError('scheme', policy.allowHttp ? 'the URL must use https or http' : 'the URL must use https');
  }
  if (url.username || url.password) throw new WebhookTargetError('credentials', 'the URL must not contain credentials (user:password@)');
  if (!url.hostname) throw new WebhookTargetError('invalid_url', 'the URL has no host');
  return url;
}

export type AddressKind = 'public' | Exclude<TargetRefusal, 'invalid_url' | 'scheme' | 'credentials' | 'unresolvable'>;

// [network, prefix length, kind]; the first match wins, so narrower ranges come first.
const V4_RANGES: Array<[string, number, AddressKind]> = [
  ['0.0.0.0', 32, 'unspecified'],
  ['0.0.0.0', 8, 'reserved'], // "this network"
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'], // CGNAT shared space
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link_local'], // incl. 169.254.169.254, cloud metadata
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // documentation
  ['192.88.99.0', 24, 'reserved'], // 6to4 relay anycast
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // incl. 255.255.255.255
];

function v4ToInt(a: string): number | null {
  const parts = a.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = n * 256 + Number(p);
  }
  return n;
}

function classifyV4(n: number): AddressKind {
  for (const [net, len, kind] of V4_RANGES) {
    const base = v4ToInt(net)!;
    const size = 2 ** (32 - len);
    if (n >= base && n < base + size) return kind;
  }
  return 'public';
}

/** 16 bytes of an IPv6 address (zone id dropped, embedded IPv4 tail allowed), or null. */
export function parseV6(a: string): number[] | null {
  let s = a.split('%')[0]!.toLowerCase();
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return null;
  if (s.slice(lastColon + 1).includes('.')) {
    // "::ffff:10.0.0.1" → "::ffff:a00:1"
    const v4 = v4ToInt(s.slice(lastColon + 1));
    if (v4 === null) return null;
    s = `${s.slice(0, lastColon + 1)}${((v4 >>> 16) & 0xffff).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if ([...head, ...rest].some(Number.isNaN)) return null;
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return null;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    if (head.length !== 8) return null;
    groups = head;
  }
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

function classifyV6(b: number[]): AddressKind {
  const isZero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4At = (i: number) => ((b[i]! << 24) >>> 0) + (b[i + 1]! << 16) + (b[i + 2]! << 8) + b[i + 3]!;
  if (isZero(0, 16)) return 'unspecified';
  if (isZero(0, 15) && b[15] === 1) return 'loopback';
  if (isZero(0, 10) && b[10] === 0xff && b[11] === 0xff) return classifyV4(v4At(12)); // ::ffff:a.b.c.d mapped
  if (isZero(0, 12)) return 'reserved'; // ::a.b.c.d, deprecated IPv4-compatible
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && isZero(4, 12)) return classifyV4(v4At(12)); // 64:ff9b::/96 NAT64
  if (b[0] === 0x20 && b[1] === 0x02) return classifyV4(v4At(2)); // 2002::/16 6to4
  if ((b[0]! & 0xfe) === 0xfc) return 'private'; // fc00::/7 unique local
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'link_local'; // fe80::/10
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0xc0) return 'private'; // fec0::/10 site local (deprecated)
  if (b[0] === 0xff) return 'multicast';
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x0d && b[3] === 0xb8) return 'reserved'; // documentation
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x00 && b[3] === 0x00) return 'reserved'; // Teredo
  if ((b[0]! & 0xe0) !== 0x20) return 'reserved'; // outside 2000::/3 global unicast
  return 'public';
}

/** What kind of address this is; anything unparseable counts as reserved. */
export function classifyAddress(address: string): AddressKind {
  const fam = isIP(address.split('%')[0]!);
  if (fam === 4) return classifyV4(v4ToInt(address)!);
  if (fam === 6) {
    const b = parseV6(address);
    return b ? classifyV6(b) : 'reserved';
  }
  return 'reserved';
}

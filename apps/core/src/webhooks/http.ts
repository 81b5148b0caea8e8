import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { isIP, type LookupFunction } from 'node:net';
import type { CheckedTarget, ResolvedAddress } from './target';

// One POST to a checked target. The socket goes to an address that passed
// the target check (the lookup is pinned), while the Host header and TLS
// SNI/certificate check use the host name as written. Redirects are never
// followed: node's http client does not follow them, and a 3xx is returned
// to the caller as is. The response body is read (at most 4 KiB kept) and
// discarded.

export interface PostResult {
  statusCode: number;
  latencyMs: number;
}

export class DeliveryNetworkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DeliveryNetworkError';
  }
}

function pinnedLookup(addr: ResolvedAddress): LookupFunction {
  return ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (options?.all) cb(null, [{ address: addr.address, family: addr.family }]);
    else cb(null, addr.address, addr.family);
  }) as unknown as LookupFunction;
}

export interface PostOptions {
  timeoutMs: number;
  /** Extra trusted CA certificates (PEM) for https targets, e.g. an on-premises CA; the system roots stay trusted. */
  ca?: string | Buffer | Array<string | Buffer>;
}

export function postJson(target: CheckedTarget, headers: Record<string, string>, body: string, opts: PostOptions): Promise<PostResult> {
  const { timeoutMs } = opts;
  const addr = target.addresses[0];
  if (!addr) return Promise.reject(new DeliveryNetworkError('ENOTFOUND', 'no address to connect to'));
  const { url } = target;
  const mod = url.protocol === 'https:' ? https : http;
  const started = performance.now();
  return new Promise<PostResult>((resolve, reject) => {
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const req = mod.request(
      {
        protocol: url.protocol,
        hostname: target.host,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        lookup: pinnedLookup(addr),
        // SNI and the certificate check name the host as written (never an IP literal: SNI forbids it).
        ...(isIP(target.host) ? {} : { servername: target.host }),
        ...(opts.ca ? { ca: [...tls.rootCertificates, ...(Array.isArray(opts.ca) ? opts.ca : [opts.ca])] } : {}),
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'vmrestore-webhooks/1',
          ...headers,
        },
      },
      (res) => {
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          kept += chunk.length;
          if (kept > 64 * 1024) res.destroy(); // we only need the status
        });
        const finish = () => done(() => resolve({ statusCode: res.statusCode ?? 0, latencyMs: Math.round(performance.now() - started) }));
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    const timer = setTimeout(() => {
      done(() => reject(new DeliveryNetworkError('ETIMEDOUT', `no response within ${timeoutMs} ms`)));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      done(() => reject(new DeliveryNetworkError(err.code ?? 'ERR_NETWORK', describeNetworkError(err))));
    });
    req.end(body);
  });
}

/** A short cause without URLs or headers: the code and the peer address at most. */
function describeNetworkError(err: NodeJS.ErrnoException & { address?: string; port?: number }): string {
  const where = err.address ? ` (${err.address}${err.port ? `:${err.port}` : ''})` : '';
  switch (err.code) {
    case 'ECONNREFUSED':
      return `connection refused${where}`;
    case 'ECONNRESET':
      return `connection reset${where}`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable${where}`;
    case 'CERT_HAS_EXPIRED':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS certificate refused (${err.code})`;
    default:
      return `network error (${err.code ?? 'unknown'})`;
  }
}

// HTTPS POSTs of SOAP envelopes to one vCenter, with the server certificate
// verified before a single byte of a request (and so the password of Login)
// goes out: by CA bundle (normal TLS verification), by pinned SHA-1/SHA-256
// thumbprint (checked in the agent's createConnection, before the socket is
// handed to the request), or not at all only when `insecure: true` is set.
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { VSphereError } from './errors';

export interface TlsOptions {
  /** PEM CA bundle that signs the vCenter certificate. */
  ca?: string | Buffer;
  /** Pinned certificate thumbprint, SHA-1 or SHA-256, hex with or without colons. */
  thumbprint?: string;
  /** Skip certificate verification. Off by default; tests and labs only. */
  insecure?: boolean;
}

export interface SoapResponse {
  status: number;
  body: string;
}

/** Normalizes "aa:bb:..." / "AABB..." to "AA:BB:..." and tells SHA-1 from SHA-256 by length. */
export function normalizeThumbprint(raw: string): { algo: 'sha1' | 'sha256'; value: string } {
  const hex = raw.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]+$/.test(hex) || (hex.length !== 40 && hex.length !== 64)) {
    throw VSphereError.client('TLS_CONFIG', 'thumbprint must be a SHA-1 (40 hex digits) or SHA-256 (64 hex digits) fingerprint');
  }
  return { algo: hex.length === 40 ? 'sha1' : 'sha256', value: hex.match(/../g)!.join(':') };
}

const SESSION_COOKIE = 'vmware_soap_session';

export class SoapTransport {
  private readonly agent: https.Agent;
  private readonly url: URL;
  /** The session cookie ("name=value"); never logged, never put in an error. */
  private cookie: string | undefined;

  constructor(
    url: string,
    tlsOpts: TlsOptions,
    private readonly apiVersion = '7.0',
    maxSockets = 4,
  ) {
    this.url = new URL(url);
    if (this.url.protocol !== 'https:') throw VSphereError.client('TLS_CONFIG', `vCenter URL must be https: ${this.url.origin}`);
    const pin = tlsOpts.thumbprint ? normalizeThumbprint(tlsOpts.thumbprint) : undefined;
    if (!pin && !tlsOpts.ca && !tlsOpts.insecure) {
      throw VSphereError.client(
        'TLS_CONFIG',
        `refusing to connect to ${this.url.host}: no CA bundle and no certificate thumbprint given (set insecure: true to skip verification)`,
      );
    }
    const agentOpts: https.AgentOptions = { keepAlive: true, maxSockets };
    if (tlsOpts.ca) agentOpts.ca = tlsOpts.ca;
    this.agent = new https.Agent(agentOpts);
    if (pin || (tlsOpts.insecure && !tlsOpts.ca)) {
      const host = this.url.hostname;
      // Async createConnection: the request gets the socket only after the check.
      (this.agent as unknown as { createConnection: unknown }).createConnection = (
        options: tls.ConnectionOptions,
        cb: (err: Error | null, socket?: Duplex) => void,
      ): undefined => {
        const socket = tls.connect({ ...options, rejectUnauthorized: false });
        const onError = (err: Error) => cb(VSphereError.client('NETWORK', `cannot connect to ${host}: ${err.message}`, err));
        socket.once('error', onError);
        socket.once('secureConnect', () => {
          socket.removeListener('error', onError);
          if (pin) {
            const cert = socket.getPeerCertificate();
            const seen = pin.algo === 'sha1' ? cert.fingerprint : cert.fingerprint256;
            if (seen !== pin.value) {
              socket.destroy();
              cb(VSphereError.client('TLS_UNTRUSTED', `certificate of ${host} does not match the pinned ${pin.algo} thumbprint (server presented ${seen})`));
              return;
            }
          }
          cb(null, socket);
        });
        return undefined;
      };
    }
  }

  get host(): string {
    return this.url.host;
  }

  get hasSession(): boolean {
    return this.cookie !== undefined;
  }

  clearSession(): void {
    this.cookie = undefined;
  }

  /** POSTs one envelope; resolves for any HTTP status (SOAP faults come as 500). */
  post(body: string, timeoutMs: number, label: string): Promise<SoapResponse> {
    const headers: Record<string, string> = {
      'content-type': 'text/xml; charset=utf-8',
      soapaction: `urn:vim25/${this.apiVersion}`,
      'content-length': String(Buffer.byteLength(body)),
    };
    if (this.cookie) headers.cookie = this.cookie;
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (err: Error | undefined, res?: SoapResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(res!);
      };
      const req = https.request(this.url, { method: 'POST', headers, agent: this.agent }, (res) => {
        for (const c of res.headers['set-cookie'] ?? []) {
          if (c.startsWith(`${SESSION_COOKIE}=`)) this.cookie = c.split(';')[0];
        }
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', (err) => done(VSphereError.client('NETWORK', `${label}: ${err.message}`, err)));
        res.on('end', () => done(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      const timer = setTimeout(() => {
        req.destroy();
        done(VSphereError.client('TIMEOUT', `${label}: no answer from ${this.url.host} within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('error', (err) => {
        if (err instanceof VSphereError) done(new VSphereError({ code: err.code, permanent: err.permanent }, `${label}: ${err.message}`, { cause: err }));
        else done(VSphereError.client('NETWORK', `${label}: ${this.url.host}: ${err.message}`, err));
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

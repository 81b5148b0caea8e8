// A vSphere Web Services session: ServiceContent, Login/Logout, keep-alive,
// transparent re-login when vCenter ends the session (NotAuthenticated ->
// Login once -> the call again), per-call timeouts, typed results and
// faults. Secrets (password, session cookie) stay inside this module and the
// transport: they are never logged and never part of an error message.
import type { Logger } from 'pino';
import { serializeRequest, type DataObject, type MoRef } from './codec';
import { parseResponse } from './response';
import { VSphereError, faultError } from './errors';
import { vim25Schema, type Schema } from './schema';
import { assertRequestConforms } from './schema-check';
import { SoapTransport, type TlsOptions } from './transport';
import { codeLabel, metrics, observeVsphereCall } from '../metrics';

export interface VSphereClientOptions extends TlsOptions {
  /** https://vcenter.example.com/sdk */
  url: string;
  username: string;
  password: string;
  /** vim25 version sent as SOAPAction (urn:vim25/<version>). Default 7.0 (the shipped schema's). */
  apiVersion?: string;
  /** Default timeout of one SOAP call (ms). */
  callTimeoutMs?: number;
  /** Period of the keep-alive CurrentTime call (ms); 0 disables it. */
  keepAliveMs?: number;
  logger?: Logger;
  /**
   * Check every request against the shipped vim25.xsd (element order, known
   * elements) before sending; a violation throws VSPHERE_SCHEMA_VIOLATION.
   * Default: on when VMRESTORE_VSPHERE_SCHEMA_CHECK=1 (the test suites).
   */
  schemaCheck?: boolean;
  /** Sees each request as sent (method + body) — a test hook. The body of Login holds the password. */
  onRequest?: (method: string, body: string) => void;
}

export interface ServiceContent extends DataObject {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  searchIndex: MoRef;
  sessionManager: MoRef;
  fileManager?: MoRef;
  virtualDiskManager?: MoRef;
  about: DataObject & { apiVersion: string; apiType: string; fullName: string; instanceUuid?: string };
}

export interface CallOptions {
  timeoutMs?: number;
}

const SERVICE_INSTANCE: MoRef = { type: 'ServiceInstance', value: 'ServiceInstance' };
const NO_RELOGIN = new Set(['Login', 'Logout', 'RetrieveServiceContent']);

export class VSphereClient {
  readonly url: string;
  readonly username: string;
  readonly schema: Schema;
  private readonly transport: SoapTransport;
  private readonly password: string;
  private readonly callTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly schemaCheck: boolean;
  private readonly log: Logger | undefined;
  private readonly onRequest: ((method: string, body: string) => void) | undefined;
  private sc: ServiceContent | undefined;
  private loggedIn = false;
  private relogin: Promise<void> | undefined;
  /** Bumped at each Login: a call that started under an older session needs no new Login. */
  private sessionGen = 0;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: VSphereClientOptions) {
    this.url = opts.url;
    this.username = opts.username;
    this.password = opts.password;
    this.callTimeoutMs = opts.callTimeoutMs ?? 60_000;
    this.keepAliveMs = opts.keepAliveMs ?? 10 * 60_000;
    this.schemaCheck = opts.schemaCheck ?? process.env.VMRESTORE_VSPHERE_SCHEMA_CHECK === '1';
    this.log = opts.logger?.child({ component: 'vsphere', vcenter: new URL(opts.url).host, user: opts.username });
    this.onRequest = opts.onRequest;
    this.schema = vim25Schema();
    this.transport = new SoapTransport(opts.url, opts, opts.apiVersion);
  }

  /** A new client, logged in. */
  static async connect(opts: VSphereClientOptions): Promise<VSphereClient> {
    const c = new VSphereClient(opts);
    try {
      await c.login();
    } catch (err) {
      c.transport.close();
      throw err;
    }
    return c;
  }

  get serviceContent(): ServiceContent {
    if (!this.sc) throw new Error('not connected: call login() first');
    return this.sc;
  }

  get isLoggedIn(): boolean {
    return this.loggedIn;
  }

  async login(): Promise<void> {
    this.sc ??= (await this.invoke('RetrieveServiceContent', SERVICE_INSTANCE)) as ServiceContent;
    this.transport.clearSession();
    await this.invoke('Login', this.sc.sessionManager, { userName: this.username, password: this.password });
    this.loggedIn = true;
    this.sessionGen++;
    this.startKeepAlive();
    this.log?.info({ apiVersion: this.sc.about.apiVersion }, 'vSphere session opened');
  }

  /** Logs out (best effort) and releases the connection. The client cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopKeepAlive();
    if (this.loggedIn && this.sc) {
      try {
        await this.invoke('Logout', this.sc.sessionManager, {}, { timeoutMs: 5_000 });
      } catch (err) {
        this.log?.warn({ code: (err as VSphereError).code }, 'vSphere logout failed');
      }
    }
    this.loggedIn = false;
    this.transport.clearSession();
    this.transport.close();
  }

  /** One vim25 call; re-logs in once and retries when the session has expired. */
  async call<T = unknown>(method: string, self: MoRef, args: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<T> {
    if (this.closed) throw VSphereError.client('CLIENT_CLOSED', `${method}: client is closed`);
    const gen = this.sessionGen;
    try {
      return (await this.invoke(method, self, args, opts)) as T;
    } catch (err) {
      if (!(err instanceof VSphereError) || err.faultType !== 'NotAuthenticated' || NO_RELOGIN.has(method) || !this.loggedIn) throw err;
      if (this.sessionGen === gen) {
        this.log?.info({ method }, 'vSphere session expired, logging in again');
        await this.reLogin();
      } else if (this.relogin) {
        await this.relogin;
      }
      return (await this.invoke(method, self, args, opts)) as T;
    }
  }

  private reLogin(): Promise<void> {
    // Concurrent calls that all saw NotAuthenticated share one Login.
    this.relogin ??= this.login().finally(() => {
      this.relogin = undefined;
    });
    return this.relogin;
  }

  private async invoke(method: string, self: MoRef, args: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<unknown> {
    let body: string;
    try {
      body = serializeRequest(this.schema, method, { _this: self, ...args });
      if (this.schemaCheck) assertRequestConforms(body, this.schema);
    } catch (err) {
      throw VSphereError.client('SCHEMA', `${method}: ${(err as Error).message}`, err);
    }
    this.onRequest?.(method, body);
    const started = Date.now();
    // Latency and faults by method for /metrics (apps/core/src/metrics.ts).
    const seconds = () => (Date.now() - started) / 1000;
    let res;
    try {
      res = await this.transport.post(body, opts.timeoutMs ?? this.callTimeoutMs, method);
    } catch (err) {
      observeVsphereCall(method, seconds(), (err as VSphereError).code ?? 'VSPHERE_NETWORK');
      throw err;
    }
    try {
      const value = parseResponse(this.schema, method, res.status, res.body);
      this.log?.debug({ method, ms: Date.now() - started }, 'vSphere call');
      observeVsphereCall(method, seconds());
      return value;
    } catch (err) {
      this.log?.debug({ method, ms: Date.now() - started, code: (err as VSphereError).code }, 'vSphere call failed');
      observeVsphereCall(method, seconds(), (err as VSphereError).code ?? 'VSPHERE_FAULT');
      throw err;
    }
  }

  /** Base type of a type per the schema (for the fault-code fallback). */
  readonly parentOf = (t: string): string | undefined => this.schema.complex.get(t)?.base;

  /** A task error (info.error: LocalizedMethodFault) as a VSphereError. */
  taskError(where: string, error: DataObject | undefined): VSphereError {
    const fault = error?.fault as DataObject | undefined;
    const type = fault?._type ?? 'MethodFault';
    const e = faultError(fault, type, String(error?.localizedMessage ?? ''), where, this.parentOf);
    // A task's fault counts under its *_Task method ("PowerOffVM_Task on vm-1").
    metrics.vsphereFaults.inc({ method: /^([A-Za-z]\w*_Task)\b/.exec(where)?.[1] ?? 'task', code: codeLabel(e.code) });
    return e;
  }

  private startKeepAlive(): void {
    if (this.keepAliveMs <= 0 || this.keepAliveTimer) return;
    this.keepAliveTimer = setInterval(() => {
      this.call('CurrentTime', SERVICE_INSTANCE, {}, { timeoutMs: 30_000 }).catch((err: VSphereError) => {
        this.log?.warn({ code: err.code, err: err.message }, 'vSphere keep-alive failed');
      });
    }, this.keepAliveMs);
    this.keepAliveTimer.unref();
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  /** Server time; also what the keep-alive calls. */
  async currentTime(): Promise<string> {
    return this.call<string>('CurrentTime', SERVICE_INSTANCE);
  }
}

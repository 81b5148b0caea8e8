import { createHash } from 'node:crypto';
// Sessions per vCenter: clients keyed by url + user, at most `maxSessions`
// logged-in sessions per key (vCenter limits sessions per user), handed out
// one caller at a time, reused while idle, logged out on close.
import { VSphereClient, type VSphereClientOptions } from './client';
import { VSphereError } from './errors';

export interface VSpherePoolOptions {
  /** Concurrent sessions per url+user. Default 4. */
  maxSessions?: number;
  /** How long acquire() waits for a free session (ms). Default 60 s. */
  acquireTimeoutMs?: number;
  /** Log out sessions idle longer than this (ms). Default 10 minutes; 0 keeps them. */
  idleTimeoutMs?: number;
  /** How clients are made (tests swap it). */
  connect?: (opts: VSphereClientOptions) => Promise<VSphereClient>;
}

interface Entry {
  idle: Array<{ client: VSphereClient; since: number }>;
  open: number;
  waiters: Array<{ resolve: (c: VSphereClient) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; opts: VSphereClientOptions }>;
}

export interface Lease {
  client: VSphereClient;
  release(): void;
}

export class VSpherePool {
  private readonly entries = new Map<string, Entry>();
  private readonly max: number;
  private readonly acquireTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly connect: (opts: VSphereClientOptions) => Promise<VSphereClient>;
  private readonly sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: VSpherePoolOptions = {}) {
    this.max = opts.maxSessions ?? 4;
    this.acquireTimeoutMs = opts.acquireTimeoutMs ?? 60_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 10 * 60_000;
    this.connect = opts.connect ?? ((o) => VSphereClient.connect(o));
    if (this.idleTimeoutMs > 0) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(this.idleTimeoutMs, 60_000));
      this.sweeper.unref();
    }
  }

  /**
   * Sessions are shared only between callers with the very same credentials
   * and trust settings: a digest of the password and TLS options is part of
   * the key, so one tenant's logged-in session never serves another's
   * request, and a changed password opens a new session.
   */
  static key(opts: Pick<VSphereClientOptions, 'url' | 'username'> & Partial<Pick<VSphereClientOptions, 'password' | 'thumbprint' | 'ca' | 'insecure'>>): string {
    const secret = createHash('sha256')
      .update(JSON.stringify([opts.password ?? '', opts.thumbprint ?? '', String(opts.ca ?? ''), Boolean(opts.insecure)]))
      .digest('hex');
    return `${new URL(opts.url).origin}|${opts.username}|${secret}`;
  }

  /** Sessions open (idle or leased) for a url+user. */
  size(opts: Pick<VSphereClientOptions, 'url' | 'username'> & Partial<Pick<VSphereClientOptions, 'password' | 'thumbprint' | 'ca' | 'insecure'>>): number {
    return this.entries.get(VSpherePool.key(opts))?.open ?? 0;
  }

  /** A logged-in client for this vCenter and user; call release() when done. */
  async acquire(opts: VSphereClientOptions): Promise<Lease> {
    if (this.closed) throw VSphereError.client('POOL_CLOSED', 'vSphere pool is closed');
    const key = VSpherePool.key(opts);
    let e = this.entries.get(key);
    if (!e) {
      e = { idle: [], open: 0, waiters: [] };
      this.entries.set(key, e);
    }
    const entry = e;
    let client: VSphereClient;
    const idle = entry.idle.pop();
    if (idle) client = idle.client;
    else if (entry.open < this.max) {
      entry.open++;
      try {
        client = await this.connect(opts);
      } catch (err) {
        entry.open--;
        this.wakeOne(key, entry);
        throw err;
      }
    } else {
      client = await new Promise<VSphereClient>((resolve, reject) => {
        const timer = setTimeout(() => {
          entry.waiters.splice(entry.waiters.findIndex((w) => w.timer === timer), 1);
          reject(VSphereError.client('POOL_TIMEOUT', `no free vSphere session for ${new URL(opts.url).host} within ${this.acquireTimeoutMs} ms (max ${this.max})`));
        }, this.acquireTimeoutMs);
        entry.waiters.push({ resolve, reject, timer, opts });
      });
    }
    let released = false;
    return {
      client,
      release: () => {
        if (released) return;
        released = true;
        this.giveBack(key, entry, client);
      },
    };
  }

  /** Runs fn with a pooled client and releases it afterwards. */
  async withClient<T>(opts: VSphereClientOptions, fn: (client: VSphereClient) => Promise<T>): Promise<T> {
    const lease = await this.acquire(opts);
    try {
      return await fn(lease.client);
    } finally {
      lease.release();
    }
  }

  private giveBack(key: string, entry: Entry, client: VSphereClient): void {
    const w = entry.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(client);
      return;
    }
    if (this.closed) {
      entry.open--;
      void client.close();
      return;
    }
    entry.idle.push({ client, since: Date.now() });
  }

  /** A session slot freed after a failed connect: let a waiter try to connect. */
  private wakeOne(key: string, entry: Entry): void {
    const w = entry.waiters.shift();
    if (!w) return;
    clearTimeout(w.timer);
    entry.open++;
    this.connect(w.opts).then(w.resolve, (err: Error) => {
      entry.open--;
      w.reject(err);
      this.wakeOne(key, entry);
    });
  }

  private sweep(): void {
    const cutoff = Date.now() - this.idleTimeoutMs;
    for (const entry of this.entries.values()) {
      const keep = entry.idle.filter((i) => i.since >= cutoff);
      for (const i of entry.idle) {
        if (i.since < cutoff) {
          entry.open--;
          void i.client.close();
        }
      }
      entry.idle = keep;
    }
  }

  /** Logs out every idle session; leased ones are logged out when released. Pending acquires fail. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    const closing: Array<Promise<void>> = [];
    for (const entry of this.entries.values()) {
      for (const w of entry.waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(VSphereError.client('POOL_CLOSED', 'vSphere pool is closed'));
      }
      for (const i of entry.idle.splice(0)) {
        entry.open--;
        closing.push(i.client.close());
      }
    }
    await Promise.all(closing);
  }
}

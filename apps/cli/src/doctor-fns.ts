import { basename } from 'node:path';

// Pure parts of `vmrestore doctor`: check results, their rendering, the
// VDDK version from library file names, URLs shown without credentials.

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Group of the check (what --only selects): postgres, redis, api, ... */
  check: string;
  /** What was checked, e.g. "redis maxmemory-policy" or "vcenter acme/vc1". */
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  hint?: string;
}

export const CHECK_GROUPS = ['config', 'postgres', 'redis', 'api', 'vcenters', 'vddk', 'datastores', 'backups', 'workdir'] as const;
export type CheckGroup = (typeof CHECK_GROUPS)[number];

/** The libraries the addon loads, in its order of preference (native-vddk/src/vddk_library.cc). */
export const VDDK_SONAMES = ['libvixDiskLib.so.8', 'libvixDiskLib.so.7', 'libvixDiskLib.so.6'];

/**
 * The VDDK version from the library's file names: the soname the addon
 * loads (libvixDiskLib.so.8) usually links to the full version
 * (libvixDiskLib.so.8.0.3). `resolved` is the soname's real path.
 */
export function vddkVersion(files: string[], resolved: Record<string, string> = {}): { soname: string; version: string } | null {
  for (const soname of VDDK_SONAMES) {
    if (!files.includes(soname)) continue;
    const fromLink = versionOf(basename(resolved[soname] ?? ''), soname);
    if (fromLink) return { soname, version: fromLink };
    const full = files
      .map((f) => versionOf(f, soname))
      .filter((v): v is string => v !== null)
      .sort((a, b) => compareVersions(b, a))[0];
    return { soname, version: full ?? soname.slice('libvixDiskLib.so.'.length) };
  }
  return null;
}

function versionOf(file: string, soname: string): string | null {
  const m = new RegExp(`^${soname.replace(/\./g, '\\.')}((?:\\.\\d+)+)$`).exec(file);
  return m ? `${soname.slice('libvixDiskLib.so.'.length)}${m[1]}` : null;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** A URL as it may be shown: no password, no query (it may hold one). */
export function safeUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    // Several hosts (redis-sentinel://h1:26379,h2:26379/name, redis-cluster://h1:7000,h2:7001): not a WHATWG URL.
    const m = MULTI_HOST.exec(raw);
    if (!m) return '(not a URL)';
    const [, scheme, user, hosts, path] = m;
    return `${scheme}://${user ? `${decodeURIComponent(user)}@` : ''}${hosts}${path && path !== '/' ? path : ''}`;
  }
}

/** scheme://[user[:password]@]host:port,host:port[/path][?query]: the password and the query are never shown. */
const MULTI_HOST = /^([a-z][a-z0-9+.-]*):\/\/(?:([^:@/]*)(?::[^@/]*)?@)?([^/?#@]+)(\/[^?#]*)?(?:[?#].*)?$/i;

/** Removes each secret from a message (a server may echo a password). */
export function scrub(message: string, secrets: Array<string | undefined | null>): string {
  let m = message;
  for (const s of secrets) if (s && s.length >= 4) m = m.split(s).join('[redacted]');
  return m;
}

/** The password of a URL, for scrub(). */
export function urlPassword(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  try {
    const p = new URL(raw).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    const p = /^[a-z][a-z0-9+.-]*:\/\/[^:@/]*:([^@/]*)@/i.exec(raw)?.[1];
    return p ? decodeURIComponent(p) : undefined;
  }
}

export function doctorExitFails(results: CheckResult[]): boolean {
  return results.some((r) => r.status === 'fail');
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

export function renderDoctor(results: CheckResult[]): string {
  const width = Math.max(10, ...results.map((r) => r.name.length));
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${LABEL[r.status]}  ${r.name.padEnd(width)}  ${r.detail}`);
    if (r.hint && r.status !== 'ok') lines.push(`${' '.repeat(6 + width + 2)}hint: ${r.hint}`);
  }
  const count = (s: CheckStatus) => results.filter((r) => r.status === s).length;
  lines.push('', `${count('ok')} ok, ${count('warn')} warning${count('warn') === 1 ? '' : 's'}, ${count('fail')} failed`);
  return lines.join('\n');
}

import { ConfigError } from '../config';

// The API's security settings, read once at boot like ../config.ts (same
// rules: every problem listed, the process refuses to start).

export interface SecurityConfig {
  /** `disabled`: every request is the `default` tenant with every scope. Local demos only. */
  auth: 'required' | 'disabled';
  /** Requests per minute per API key (token bucket in Redis); 0 = no limit. */
  rateLimitPerMin: number;
  /** Origins allowed to call the API from a browser; empty = CORS off. */
  corsOrigins: string[];
  /**
   * Let webhooks point at loopback and private addresses, and use http://
   * (on-premises receivers, tests), as the webhook worker's allowPrivate.
   */
  webhookAllowPrivate: boolean;
}

type Env = Record<string, string | undefined>;

export function loadSecurityConfig(env: Env = process.env): SecurityConfig {
  const problems: string[] = [];
  const bool = (name: string): boolean => {
    const v = (env[name] ?? '').trim().toLowerCase();
    if (v === '' || v === 'false' || v === '0') return false;
    if (v === 'true' || v === '1') return true;
    problems.push(`${name} must be true or false (got "${env[name]}")`);
    return false;
  };
  const auth = (env.VMRESTORE_AUTH ?? '').trim() || 'required';
  if (auth !== 'required' && auth !== 'disabled') problems.push(`VMRESTORE_AUTH must be required or disabled (got "${auth}")`);
  let rateLimitPerMin = 600;
  const rl = env.VMRESTORE_RATE_LIMIT_PER_MIN;
  if (rl !== undefined && rl !== '') {
    const n = Number(rl);
    if (!Number.isInteger(n) || n < 0 || n > 1_000_000) problems.push(`VMRESTORE_RATE_LIMIT_PER_MIN must be an integer from 0 to 1000000 (got "${rl}")`);
    else rateLimitPerMin = n;
  }
  const corsOrigins = (env.VMRESTORE_CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  for (const o of corsOrigins) {
    let ok = false;
    try {
      const u = new URL(o);
      ok = (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === o;
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`VMRESTORE_CORS_ORIGINS: "${o}" is not an origin (scheme://host[:port], no path, no trailing slash)`);
  }
  const config: SecurityConfig = {
    auth: auth === 'disabled' ? 'disabled' : 'required',
    rateLimitPerMin,
    corsOrigins,
    webhookAllowPrivate: bool('VMRESTORE_WEBHOOK_ALLOW_PRIVATE'),
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}

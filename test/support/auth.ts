import { randomUUID } from 'node:crypto';
import { createApiKey, createTenant, SCOPES, type Db, type Scope, type SecurityConfig } from '@vmrestore/core';

// Tenants and API keys for tests: a fresh tenant per call (so tests never see
// each other's jobs), with one key holding the given scopes.

export interface TestTenant {
  tenantId: string;
  tenantName: string;
  /** The API key in clear (vmr_..._...). */
  key: string;
  keyId: string;
  /** { authorization: 'Bearer <key>' }, to spread into request headers. */
  headers: { authorization: string };
}

export const ALL_SCOPES: Scope[] = [...SCOPES];

/** A new tenant (named `t-<random>` unless given) and a key with `scopes` (default: all four). */
export async function createTenantWithKey(db: Db, scopes: readonly Scope[] = ALL_SCOPES, tenantName = `t-${randomUUID().slice(0, 12)}`): Promise<TestTenant> {
  const tenant = await createTenant(db, tenantName);
  const { key, view } = await createApiKey(db, tenant.id, { name: 'test key', scopes });
  return { tenantId: tenant.id, tenantName, key, keyId: view.id, headers: { authorization: `Bearer ${key}` } };
}

/** Another key for an existing tenant. */
export async function createKey(db: Db, tenantId: string, scopes: readonly Scope[] = ALL_SCOPES): Promise<{ key: string; keyId: string; headers: { authorization: string } }> {
  const { key, view } = await createApiKey(db, tenantId, { name: 'test key', scopes });
  return { key, keyId: view.id, headers: { authorization: `Bearer ${key}` } };
}

/** Security settings for buildApp in tests: auth required, no rate limit unless asked. */
export function testSecurity(over: Partial<SecurityConfig> = {}): SecurityConfig {
  return { auth: 'required', rateLimitPerMin: 0, corsOrigins: [], webhookAllowPrivate: false, ...over };
}

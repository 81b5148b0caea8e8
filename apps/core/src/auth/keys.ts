import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db';
import { Prisma } from '../generated/prisma/client';
import type { ApiKey, Tenant } from '../generated/prisma/client';
import { AuthError } from './errors';
import { isScope, SCOPES, type Scope } from './scopes';

// API keys: "vmr_<12-char prefix>_<43-char secret>", both parts base62. The
// row holds the prefix (to find it) and the SHA-256 of the whole key (to
// check it, in constant time); the key itself is shown once, at creation.
// A SHA-256 without salt is enough here: the secret has ~256 bits of entropy,
// nothing a dictionary attack could guess.

export const KEY_PREFIX_LEN = 12;
export const KEY_SECRET_LEN = 43;
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const KEY_RE = new RegExp(`^vmr_([A-Za-z0-9]{${KEY_PREFIX_LEN}})_([A-Za-z0-9]{32,128})$`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$/;
const TENANT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** n base62 characters from the CSPRNG (randomInt draws without modulo bias). */
function base62(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += BASE62[randomInt(62)];
  return s;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function generateApiKey(): { key: string; prefix: string } {
  const prefix = base62(KEY_PREFIX_LEN);
  return { key: `vmr_${prefix}_${base62(KEY_SECRET_LEN)}`, prefix };
}

/** The prefix of a well-formed key, or null (malformed). */
export function parseApiKey(raw: string): { prefix: string } | null {
  const m = KEY_RE.exec(raw);
  return m ? { prefix: m[1]! } : null;
}

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export function toApiKeyView(k: ApiKey): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt ? k.lastUsedAt.toISOString() : null,
    revokedAt: k.revokedAt ? k.revokedAt.toISOString() : null,
  };
}

export interface Principal {
  tenantId: string;
  /** null when authentication is disabled (VMRESTORE_AUTH=disabled). */
  keyId: string | null;
  scopes: readonly Scope[];
}

export function checkScopes(scopes: readonly string[], field = 'scopes'): Scope[] {
  const out: Scope[] = [];
  if (!Array.isArray(scopes) || scopes.length === 0) {
    throw new AuthError('API_KEY_INVALID', `${field} must list at least one of ${SCOPES.join(', ')}`, [{ in: 'body', field, message: `must list at least one of ${SCOPES.join(', ')}` }]);
  }
  for (const s of scopes) {
    if (!isScope(s)) throw new AuthError('API_KEY_INVALID', `${field}: unknown scope "${String(s).slice(0, 40)}"`, [{ in: 'body', field, message: `must be among ${SCOPES.join(', ')}` }]);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

export async function createTenant(db: Db, name: string): Promise<Tenant> {
  if (!TENANT_NAME.test(name)) throw new AuthError('API_KEY_INVALID', 'a tenant name is 1-63 of a-z 0-9 . _ - (starting with a letter or digit)', [{ in: 'body', field: 'name', message: 'is not a valid tenant name' }]);
  try {
    return await db.tenant.create({ data: { name } });
  } catch (err) {
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') throw new AuthError('TENANT_EXISTS', `tenant ${name} already exists`);
    throw err;
  }
}

export async function findTenant(db: Db, name: string): Promise<Tenant> {
  const t = await db.tenant.findUnique({ where: { name } });
  if (!t) throw new AuthError('TENANT_NOT_FOUND', `no tenant named ${name}`);
  return t;
}

export async function listTenants(db: Db): Promise<Tenant[]> {
  return db.tenant.findMany({ orderBy: { name: 'asc' } });
}

/** A new key for the tenant. The returned `key` is the only time it exists in clear. */
export async function createApiKey(db: Db, tenantId: string, input: { name: string; scopes: readonly string[] }): Promise<{ view: ApiKeyView; key: string }> {
  if (typeof input.name !== 'string' || !NAME.test(input.name)) {
    throw new AuthError('API_KEY_INVALID', 'name must be 1-100 letters, digits, spaces, . _ -', [{ in: 'body', field: 'name', message: 'must be 1-100 of letters, digits, space, . _ -' }]);
  }
  const scopes = checkScopes(input.scopes);
  const { key, prefix } = generateApiKey();
  const row = await db.apiKey.create({ data: { tenantId, name: input.name, prefix, hash: hashApiKey(key), scopes } });
  return { view: toApiKeyView(row), key };
}

export async function listApiKeys(db: Db, tenantId: string): Promise<ApiKeyView[]> {
  const rows = await db.apiKey.findMany({ where: { tenantId }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }] });
  return rows.map(toApiKeyView);
}

/**
 * Revokes a key (the row stays, for the audit trail). `tenantId` null: any
 * tenant's key (the admin CLI on the server host). Revoking twice is fine.
 */
export async function revokeApiKey(db: Db, tenantId: string | null, id: string): Promise<ApiKeyView> {
  const row = UUID.test(id) ? await db.apiKey.findFirst({ where: { id, ...(tenantId ? { tenantId } : {}) } }) : null;
  if (!row) throw new AuthError('API_KEY_NOT_FOUND', `no API key ${id}`);
  if (row.revokedAt) return toApiKeyView(row);
  return toApiKeyView(await db.apiKey.update({ where: { id }, data: { revokedAt: new Date() } }));
}

/**
 * The principal a presented key stands for, or AuthError UNAUTHENTICATED.
 * The message never contains the key; it says which check failed only in
 * terms a caller can act on.
 */
export async function authenticateApiKey(db: Db, raw: string): Promise<Principal & { keyId: string; lastUsedAt: Date | null }> {
  const parsed = parseApiKey(raw);
  if (!parsed) throw new AuthError('UNAUTHENTICATED', 'the API key is malformed (expected vmr_<prefix>_<secret>)');
  const row = await db.apiKey.findUnique({ where: { prefix: parsed.prefix } });
  const presented = Buffer.from(hashApiKey(raw), 'hex');
  // Compare even when no row matched, so both paths cost the same.
  const stored = Buffer.from(row?.hash ?? '0'.repeat(64), 'hex');
  const match = stored.length === presented.length && timingSafeEqual(stored, presented);
  if (!row || !match) throw new AuthError('UNAUTHENTICATED', 'the API key is not valid');
  if (row.revokedAt) throw new AuthError('UNAUTHENTICATED', 'the API key has been revoked');
  return { tenantId: row.tenantId, keyId: row.id, scopes: row.scopes.filter(isScope), lastUsedAt: row.lastUsedAt };
}

/** Records use of a key at most once per `everyMs` (a conditional update: no write when recent). */
export async function touchApiKey(db: Db, keyId: string, everyMs = 60_000): Promise<void> {
  const now = new Date();
  await db.apiKey.updateMany({
    where: { id: keyId, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: new Date(now.getTime() - everyMs) } }] },
    data: { lastUsedAt: now },
  });
}

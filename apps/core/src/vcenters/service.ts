import type { Db } from '../db';
import { Prisma } from '../generated/prisma/client';
import type { VCenterConnection } from '../generated/prisma/client';
import { AppError } from '../errors';
import { decryptSecret, encryptSecret, secretContext, type Keyring } from '../secrets';
import type { VSphereClientOptions } from '../vsphere/client';
import { normalizeThumbprint } from '../vsphere/transport';
import { VcenterError } from './errors';

// vCenter connections, per tenant. The password is AES-256-GCM ciphertext
// bound to its row; it is decrypted only to connect, and never returned.

export interface VcenterInput {
  name: string;
  url: string;
  username: string;
  password: string;
  thumbprint?: string | null;
  caBundle?: string | null;
  insecure?: boolean;
}

/** What the API may show of a connection: everything but the password. */
export interface VcenterView {
  id: string;
  name: string;
  url: string;
  username: string;
  thumbprint: string | null;
  hasCaBundle: boolean;
  insecure: boolean;
  createdAt: string;
  updatedAt: string;
}

/** What a worker needs to connect. Holds the password: never log it. */
export interface VcenterCredentials {
  id: string;
  name: string;
  url: string;
  username: string;
  password: string;
  thumbprint?: string;
  ca?: string;
  insecure?: boolean;
}

export function toVcenterView(c: VCenterConnection): VcenterView {
  return {
    id: c.id,
    name: c.name,
    url: c.url,
    username: c.username,
    thumbprint: c.thumbprint,
    hasCaBundle: Boolean(c.caBundle),
    insecure: c.insecure,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

export function checkVcenterInput(v: VcenterInput): void {
  const errors: Array<{ in: 'body'; field: string; message: string }> = [];
  try {
    const u = new URL(v.url);
    if (u.protocol !== 'https:') errors.push({ in: 'body', field: 'url', message: 'must be https://.../sdk' });
    if (u.username || u.password) errors.push({ in: 'body', field: 'url', message: 'must not carry credentials (use username and password)' });
  } catch {
    errors.push({ in: 'body', field: 'url', message: 'is not a URL' });
  }
  if (v.thumbprint) {
    try {
      normalizeThumbprint(v.thumbprint);
    } catch {
      errors.push({ in: 'body', field: 'thumbprint', message: 'must be a SHA-1 (40 hex digits) or SHA-256 (64 hex digits) fingerprint, colons optional' });
    }
  }
  if (!v.thumbprint && !v.caBundle && !v.insecure) {
    errors.push({ in: 'body', field: 'thumbprint', message: 'give a certificate thumbprint or a CA bundle (or insecure: true, for labs only)' });
  }
  if (errors.length) throw new AppError('VALIDATION_FAILED', `vCenter connection ${v.name}: ${errors[0]!.field} ${errors[0]!.message}`, errors);
}

export async function createVcenterConnection(db: Db, keyring: Keyring, tenantId: string, v: VcenterInput): Promise<VCenterConnection> {
  checkVcenterInput(v);
  try {
    return await db.$transaction(async (tx) => {
      // The id is needed for the encryption context before the row exists.
      const row = await tx.vCenterConnection.create({
        data: {
          tenantId,
          name: v.name,
          url: v.url,
          username: v.username,
          passwordCiphertext: Buffer.alloc(0),
          passwordKeyId: keyring.currentKeyId,
          thumbprint: v.thumbprint ?? null,
          caBundle: v.caBundle ?? null,
          insecure: v.insecure ?? false,
        },
      });
      const enc = encryptSecret(keyring, v.password, secretContext.vcenterPassword(row.id));
      return tx.vCenterConnection.update({ where: { id: row.id }, data: { passwordCiphertext: enc.ciphertext, passwordKeyId: enc.keyId } });
    });
  } catch (err) {
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
      throw new VcenterError('VCENTER_NAME_TAKEN', `a vCenter connection named ${v.name} already exists`, [{ in: 'body', field: 'name', message: 'is already used' }]);
    }
    throw err;
  }
}

export async function findVcenterByName(db: Db, tenantId: string, name: string): Promise<VCenterConnection | null> {
  return db.vCenterConnection.findUnique({ where: { tenantId_name: { tenantId, name } } });
}

/** The VSphereClient options for a connection: credentials and how its certificate is trusted. */
export function vcenterClientOptions(c: VcenterCredentials): Pick<VSphereClientOptions, 'url' | 'username' | 'password' | 'thumbprint' | 'ca' | 'insecure'> {
  return {
    url: c.url,
    username: c.username,
    password: c.password,
    ...(c.thumbprint ? { thumbprint: c.thumbprint } : {}),
    ...(c.ca ? { ca: c.ca } : {}),
    ...(c.insecure ? { insecure: true } : {}),
  };
}

/** Credentials to connect with, password decrypted. For workers only. */
export function vcenterCredentials(keyring: Keyring, c: VCenterConnection): VcenterCredentials {
  const password = decryptSecret(keyring, c.passwordCiphertext, c.passwordKeyId, secretContext.vcenterPassword(c.id));
  return {
    id: c.id,
    name: c.name,
    url: c.url,
    username: c.username,
    password,
    ...(c.thumbprint ? { thumbprint: c.thumbprint } : {}),
    ...(c.caBundle ? { ca: c.caBundle } : {}),
    ...(c.insecure ? { insecure: true } : {}),
  };
}

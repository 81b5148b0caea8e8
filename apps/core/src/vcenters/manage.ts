import type { Db } from '../db';
import type { VCenterConnection } from '../generated/prisma/client';
import type { Keyring } from '../secrets';
import { VSphereClient } from '../vsphere/client';
import { VcenterError } from './errors';
import { vcenterClientOptions, vcenterCredentials } from './service';

// Reading, deleting and testing a tenant's vCenter connections. Another
// tenant's connection is "not found", like one that does not exist.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function listVcenters(db: Db, tenantId: string): Promise<VCenterConnection[]> {
  return db.vCenterConnection.findMany({ where: { tenantId }, orderBy: [{ name: 'asc' }] });
}

export async function getVcenter(db: Db, tenantId: string, id: string): Promise<VCenterConnection> {
  const row = UUID.test(id) ? await db.vCenterConnection.findFirst({ where: { id, tenantId } }) : null;
  if (!row) throw new VcenterError('VCENTER_NOT_FOUND', `no vCenter connection ${id}`);
  return row;
}

export async function deleteVcenter(db: Db, tenantId: string, id: string): Promise<void> {
  const n = UUID.test(id) ? await db.vCenterConnection.deleteMany({ where: { id, tenantId } }) : { count: 0 };
  if (n.count === 0) throw new VcenterError('VCENTER_NOT_FOUND', `no vCenter connection ${id}`);
}

export interface VcenterTestResult {
  ok: boolean;
  latencyMs: number;
  apiVersion?: string;
  error?: { code: string; message: string };
}

/**
 * Logs in with the stored credentials and logs out again. A failure is a
 * result (ok: false, the client's error code), not an exception; its message
 * is scrubbed of the password in case a server echoes it.
 */
export async function testVcenterConnection(keyring: Keyring, c: VCenterConnection, opts: { timeoutMs?: number } = {}): Promise<VcenterTestResult> {
  const creds = vcenterCredentials(keyring, c);
  const started = Date.now();
  let client: VSphereClient | undefined;
  try {
    client = await VSphereClient.connect({
      ...vcenterClientOptions(creds),
      callTimeoutMs: opts.timeoutMs ?? 10_000,
      keepAliveMs: 0,
    });
    return { ok: true, latencyMs: Date.now() - started, apiVersion: client.serviceContent.about.apiVersion };
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : 'VSPHERE_ERROR';
    let message = typeof e.message === 'string' ? e.message : 'connection failed';
    if (creds.password) message = message.split(creds.password).join('[redacted]');
    return { ok: false, latencyMs: Date.now() - started, error: { code, message: message.slice(0, 500) } };
  } finally {
    await client?.close().catch(() => undefined);
  }
}

import type { Db } from '../db';
import { reencrypt, secretContext } from './cipher';
import type { Keyring } from './keyring';

// Moves every stored secret to the current key, row by row. Each update is
// conditional on the key id it read, so two rotations running at once (or a
// secret replaced meanwhile) never overwrite a newer value. Run it after
// putting a new key first in VMRESTORE_SECRET_KEYS; once it reports nothing
// left, the old key can be removed from the list.

export interface RotationReport {
  webhooks: { rotated: number; failed: string[] };
  vcenters: { rotated: number; failed: string[] };
}

export async function rotateStoredSecrets(db: Db, keyring: Keyring, opts: { tenantId?: string; batch?: number } = {}): Promise<RotationReport> {
  const batch = opts.batch ?? 200;
  const scope = opts.tenantId ? { tenantId: opts.tenantId } : {};
  const report: RotationReport = { webhooks: { rotated: 0, failed: [] }, vcenters: { rotated: 0, failed: [] } };
  const current = keyring.currentKeyId;

  // Rows that fail stay under their old key; their ids are skipped on the next page.
  for (;;) {
    const rows = await db.webhook.findMany({
      where: { ...scope, secretKeyId: { not: current }, id: { notIn: report.webhooks.failed } },
      select: { id: true, secretCiphertext: true, secretKeyId: true },
      take: batch,
    });
    if (!rows.length) break;
    for (const r of rows) {
      try {
        const next = reencrypt(keyring, r.secretCiphertext, r.secretKeyId, secretContext.webhook(r.id));
        if (!next) continue;
        const n = await db.webhook.updateMany({
          where: { id: r.id, secretKeyId: r.secretKeyId },
          data: { secretCiphertext: next.ciphertext, secretKeyId: next.keyId },
        });
        report.webhooks.rotated += n.count;
      } catch {
        report.webhooks.failed.push(r.id);
      }
    }
  }
  for (;;) {
    const rows = await db.vCenterConnection.findMany({
      where: { ...scope, passwordKeyId: { not: current }, id: { notIn: report.vcenters.failed } },
      select: { id: true, passwordCiphertext: true, passwordKeyId: true },
      take: batch,
    });
    if (!rows.length) break;
    for (const r of rows) {
      try {
        const next = reencrypt(keyring, r.passwordCiphertext, r.passwordKeyId, secretContext.vcenterPassword(r.id));
        if (!next) continue;
        const n = await db.vCenterConnection.updateMany({
          where: { id: r.id, passwordKeyId: r.passwordKeyId },
          data: { passwordCiphertext: next.ciphertext, passwordKeyId: next.keyId },
        });
        report.vcenters.rotated += n.count;
      } catch {
        report.vcenters.failed.push(r.id);
      }
    }
  }
  return report;
}

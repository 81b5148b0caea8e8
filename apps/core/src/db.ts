import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

export type Db = PrismaClient;

/** One Prisma client per process, on node-postgres through Prisma's driver adapter. */
export function createDb(databaseUrl: string, opts: { max?: number } = {}): Db {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: opts.max ?? 10, connectionTimeoutMillis: 5_000 });
  return new PrismaClient({ adapter });
}

export const DEFAULT_TENANT = 'default';

/**
 * The tenant every request belongs to until API keys exist (issue #8).
 * Created on first use; the id is stable for the life of the database.
 */
export async function ensureDefaultTenant(db: Db): Promise<string> {
  const t = await db.tenant.upsert({ where: { name: DEFAULT_TENANT }, update: {}, create: { name: DEFAULT_TENANT } });
  return t.id;
}

export { Prisma } from './generated/prisma/client';
export type { RestoreJob, JobStep, JobEvent, DiskCheckpoint } from './generated/prisma/client';

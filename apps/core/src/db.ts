import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

export type Db = PrismaClient;

export interface DbOptions {
  max?: number;
  /** Server-side statement_timeout (ms): no query holds a connection longer. Default 60 s. */
  statementTimeoutMs?: number;
}

/**
 * One Prisma client per process, on node-postgres through Prisma's driver
 * adapter. Every wait is bounded: connecting (5 s), a statement on the
 * server (statement_timeout), the answer on the client (query_timeout, a
 * little longer, for a server that stopped answering), and a transaction
 * left idle.
 */
export function createDb(databaseUrl: string, opts: DbOptions = {}): Db {
  const statementMs = opts.statementTimeoutMs ?? 60_000;
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    max: opts.max ?? 10,
    connectionTimeoutMillis: 5_000,
    statement_timeout: statementMs,
    query_timeout: statementMs + 5_000,
    idle_in_transaction_session_timeout: statementMs,
    keepAlive: true,
  });
  return new PrismaClient({ adapter });
}

// Prisma codes of an unreachable or vanished server (P1001 can't reach,
// P1002 timed out, P1008 operation timed out, P1017 server closed the
// connection, P2024 no pool connection in time), the driver adapter's kinds
// for the same, and Postgres's own SQLSTATEs of a server going down or
// starting (57P01-57P03) and of a broken connection (08xxx).
const UNAVAILABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TlsConnectionError', 'TooManyConnections']);
const UNAVAILABLE_TEXT = /ECONNREFUSED|ECONNRESET|EPIPE|Connection terminated|connection timeout|Query read timeout|server closed the connection|terminating connection|the database system is (starting up|shutting down|in recovery mode)|Can't reach database server/i;

/**
 * Whether an error means Postgres is unreachable for now (restarting, down,
 * connection lost), as opposed to a query's own failure. The worker waits
 * for Postgres on these instead of failing the job. Walks `cause` chains.
 */
export function isDbUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const x = e as { name?: string; code?: unknown; message?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } };
    if (x.name === 'PrismaClientInitializationError') return true;
    if (typeof x.code === 'string' && (UNAVAILABLE_CODES.has(x.code) || /^(57P0[123]|08...)$/.test(x.code))) return true;
    const cause = x.meta?.driverAdapterError?.cause;
    if (cause?.kind && UNAVAILABLE_KINDS.has(cause.kind)) return true;
    if (cause?.originalCode && /^(57P0[123]|08...)$/.test(cause.originalCode)) return true;
    if (typeof x.message === 'string' && UNAVAILABLE_TEXT.test(x.message)) return true;
  }
  return false;
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

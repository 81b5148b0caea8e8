// Database migrations without Prisma's native schema engine (which Prisma's
// CLI would download, and this project cannot): the same engine compiled to
// WebAssembly, driving Postgres through @prisma/adapter-pg.
//
//   node --experimental-wasm-modules scripts/migrate.mjs deploy
//       apply prisma/migrations in order, recorded in _prisma_migrations
//       (what `prisma migrate deploy` does)
//   node --experimental-wasm-modules scripts/migrate.mjs create <name>
//       write prisma/migrations/<timestamp>_<name>/migration.sql with the SQL
//       that takes the existing migrations to prisma/schema.prisma
//   node --experimental-wasm-modules scripts/migrate.mjs check
//       exit 1 when schema.prisma has changes no migration holds
// Each migration directory also keeps the schema.prisma it was made from: the
// next `create` diffs against it.
//
// DATABASE_URL names the database (deploy needs it; create and check diff
// files only, but the engine still wants an adapter).
import { readFileSync, readdirSync, existsSync, mkdirSync, writeFileSync, statSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SchemaEngine } from '@prisma/schema-engine-wasm';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPg } from '@prisma/adapter-pg';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const schemaPath = join(root, 'prisma', 'schema.prisma');
const migrationsDir = join(root, 'prisma', 'migrations');
const filters = { externalTables: [], externalEnums: [] };

function migrationList() {
  const dirs = existsSync(migrationsDir)
    ? readdirSync(migrationsDir).filter((d) => statSync(join(migrationsDir, d)).isDirectory()).sort()
    : [];
  const lockPath = join(migrationsDir, 'migration_lock.toml');
  return {
    baseDir: migrationsDir,
    lockfile: { path: 'migration_lock.toml', content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : null },
    shadowDbInitScript: '',
    migrationDirectories: dirs.map((d) => ({
      path: d,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: readFileSync(join(migrationsDir, d, 'migration.sql'), 'utf8') } },
    })),
  };
}

// @prisma/adapter-pg runs a migration script by splitting it on ';', which
// breaks any statement with a ';' inside (a plpgsql function body). Postgres
// runs a multi-statement script in one simple query, as one transaction, so
// hand it the script whole.
function wholeScripts(adapter) {
  adapter.executeScript = async (script) => {
    try { await adapter.client.query(script); } catch (err) { adapter.onError(err); }
  };
  return adapter;
}
class WholeScriptPg {
  constructor(inner) { this.inner = inner; this.provider = inner.provider; this.adapterName = inner.adapterName; }
  async connect() { return wholeScripts(await this.inner.connect()); }
  async connectToShadowDb() { return wholeScripts(await this.inner.connectToShadowDb()); }
}

function databaseUrl() {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set (source .run/env after scripts/services.sh start)');
  return url;
}

async function engine(url) {
  const schema = readFileSync(schemaPath, 'utf8');
  const log = (msg) => { if (process.env.MIGRATE_DEBUG) console.error(msg); };
  const adapter = bindMigrationAwareSqlAdapterFactory(new WholeScriptPg(new PrismaPg({ connectionString: url })));
  return SchemaEngine.new({ datamodels: [[schemaPath, schema]] }, log, adapter);
}

// Each migration directory keeps a copy of the schema.prisma it was made
// from; the next migration is the diff between that copy and the current
// schema. (Diffing from the migrations themselves would need the engine to
// read a live schema back through the adapter, which fails on Postgres's
// 'char' catalog columns.)
function lastSchemaSnapshot() {
  const dirs = migrationList().migrationDirectories;
  const last = dirs[dirs.length - 1];
  if (!last) return null;
  const p = join(migrationsDir, last.path, 'schema.prisma');
  if (!existsSync(p)) throw new Error(`${p} is missing: every migration keeps the schema it was made from`);
  return { path: p, content: readFileSync(p, 'utf8') };
}

async function pendingSql(e) {
  const schema = readFileSync(schemaPath, 'utf8');
  const prev = lastSchemaSnapshot();
  const from = prev ? { tag: 'schemaDatamodel', files: [prev] } : { tag: 'empty' };
  const res = await e.diff({ from, to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content: schema }] }, script: true, exitCode: null, filters });
  const sql = (res.stdout ?? '').trim();
  return sql === '' || sql.startsWith('-- This is an empty migration') ? '' : sql + '\n';
}

async function withEngine(url, fn) {
  const e = await engine(url);
  try { return await fn(e); } finally { e.free(); }
}

const [cmd, name] = process.argv.slice(2);
{
  if (cmd === 'deploy') {
    const out = await withEngine(databaseUrl(), (e) => e.applyMigrations({ migrationsList: migrationList(), filters }));
    console.log(out.appliedMigrationNames.length ? `migrate: applied ${out.appliedMigrationNames.join(', ')}` : 'migrate: database is up to date');
  } else if (cmd === 'create') {
    if (!name || !/^[a-z0-9_]+$/.test(name)) throw new Error('usage: migrate.mjs create <name in snake_case>');
    const sql = await withEngine(databaseUrl(), pendingSql);
    if (!sql) { console.log('migrate: schema.prisma has no changes; nothing written'); }
    else {
      const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
      const dir = join(migrationsDir, `${stamp}_${name}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'migration.sql'), sql);
      writeFileSync(join(dir, 'schema.prisma'), readFileSync(schemaPath, 'utf8'));
      if (!existsSync(join(migrationsDir, 'migration_lock.toml'))) {
        writeFileSync(join(migrationsDir, 'migration_lock.toml'), 'provider = "postgresql"\n');
      }
      console.log(`migrate: wrote ${dir}/migration.sql`);
    }
  } else if (cmd === 'check') {
    const sql = await withEngine(databaseUrl(), pendingSql);
    if (sql) { console.error('migrate: schema.prisma has changes without a migration:\n' + sql); process.exitCode = 1; }
    else console.log('migrate: migrations match schema.prisma');
  } else {
    throw new Error('usage: migrate.mjs deploy | create <name> | check');
  }
}
// The adapter's pool would keep the process alive until its idle timeout.
process.exit(process.exitCode ?? 0);

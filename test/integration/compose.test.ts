import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfig, loadKeyring } from '@vmrestore/core';
import { ROOT } from '../support/env';
import { CHECK_GROUPS } from '../../apps/cli/src/doctor-fns';

// docker-compose.yml and the Dockerfiles, checked as files: there is no
// Docker engine here, so no image is built and no container runs. What can
// be checked is that the stack is wired as the apps need it: healthchecks,
// start order, the environment loadConfig requires, shared volumes, ports,
// and that every file a command names is built into the image.

interface Service {
  build?: string | { context: string; target?: string };
  image?: string;
  environment?: Record<string, string>;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const services = compose.services;
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const vcsimDockerfile = readFileSync(join(ROOT, 'test/vcsim/Dockerfile'), 'utf8');
const LONG_RUNNING = ['postgres', 'redis', 'vcsim', 'api', 'worker'];

/** The environment a container gets: ${VAR:?message} must be supplied by the user, here a valid value. */
function envOf(name: string): Record<string, string> {
  const user: Record<string, string> = { VMRESTORE_SECRET_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}` };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(services[name]!.environment ?? {})) {
    out[k] = String(v).replace(/\$\{([A-Z_]+)(:?[?-][^}]*)?\}/g, (_, ref: string) => {
      if (!(ref in user)) throw new Error(`${name}.${k} refers to \${${ref}}, which this test does not supply`);
      return user[ref]!;
    });
  }
  return out;
}

/** "src:/target[:ro]" → target. */
const mountTargets = (s: Service) => (s.volumes ?? []).map((v) => v.split(':')[1]!);
const under = (path: string, dirs: string[]) => dirs.some((d) => path === d || path.startsWith(`${d}/`));

/** Every variable name any app reads (VMRESTORE_*, DATABASE_URL, ...). */
function namesReadByApps(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) {
        if (f !== 'generated') walk(p);
      } else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/\b(VMRESTORE_[A-Z0-9_]+|DATABASE_URL|REDIS_URL|LOG_LEVEL|LOG_PRETTY)\b/g)) names.add(m[1]!);
      }
    }
  };
  for (const app of ['core', 'api', 'worker', 'cli']) walk(join(ROOT, 'apps', app, 'src'));
  return names;
}

describe('docker-compose.yml', () => {
  it('has the whole stack, a healthcheck on every long-running service', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'vcsim', 'worker']);
    for (const name of LONG_RUNNING) {
      expect([name, services[name]!.healthcheck?.test?.length ?? 0]).not.toEqual([name, 0]);
    }
    // The one-shot migration has none: others wait for it to complete.
    expect(services.migrate!.healthcheck).toBeUndefined();
  });

  it('starts in order: depends_on conditions match what the dependency offers', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep]).toBeDefined();
        if (condition === 'service_healthy') expect([name, dep, Boolean(services[dep]!.healthcheck)]).toEqual([name, dep, true]);
        if (condition === 'service_completed_successfully') expect(dep).toBe('migrate');
      }
    }
    expect(services.migrate!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const app of ['api', 'worker']) {
      expect(services[app]!.depends_on).toMatchObject({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
    }
  });

  it('gives api and worker an environment loadConfig accepts, secrets required from the user', () => {
    const pg = services.postgres!.environment!;
    for (const app of ['api', 'worker', 'migrate']) {
      const env = envOf(app);
      const config = loadConfig(env);
      const db = new URL(config.databaseUrl);
      expect([db.hostname, db.username, db.password, db.pathname]).toEqual(['postgres', pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, `/${pg.POSTGRES_DB}`]);
      expect(new URL(config.redisUrl).hostname).toBe('redis');
      if (app !== 'migrate') expect(loadKeyring(env).keyIds).toEqual(['k1']);
    }
    // No default secret: the stack refuses to start without the user's key.
    expect(services.api!.environment!.VMRESTORE_SECRET_KEYS).toMatch(/^\$\{VMRESTORE_SECRET_KEYS:\?/);
  });

  it('sets no variable that no app reads (a typo would be silently ignored)', () => {
    const known = namesReadByApps();
    for (const app of ['api', 'worker', 'migrate']) {
      for (const k of Object.keys(envOf(app))) expect([app, k, known.has(k)]).toEqual([app, k, true]);
    }
  });

  it('api listens on all interfaces, on the published port its healthcheck asks', () => {
    const api = services.api!;
    const cfg = loadConfig(envOf('api'));
    expect(cfg.api.host).toBe('0.0.0.0');
    expect(api.ports).toContain(`${cfg.api.port}:${cfg.api.port}`);
    expect(api.healthcheck!.test.join(' ')).toContain(`http://127.0.0.1:${cfg.api.port}/readyz`);
    // No host port published twice.
    const published = Object.values(services).flatMap((s) => (s.ports ?? []).map((p) => p.split(':')[0]));
    expect(new Set(published).size).toBe(published.length);
  });

  it('worker reaches the backups and the vcsim datastores through mounted volumes', () => {
    const worker = services.worker!;
    const cfg = loadConfig(envOf('worker'));
    const targets = mountTargets(worker);
    for (const root of cfg.backupRoots) expect(under(root, targets)).toBe(true);
    const dsDirs = Object.values(cfg.restore.datastorePaths);
    expect(dsDirs.length).toBeGreaterThan(0);
    // The datastore volume is the one vcsim writes its datastores into, at the same path.
    const vcsimMount = services.vcsim!.volumes!.find((v) => v.endsWith(':/data'))!;
    expect(vcsimMount).toBeDefined();
    expect(worker.volumes).toContain(vcsimMount);
    expect(Object.keys(compose.volumes)).toContain(vcsimMount.split(':')[0]);
    for (const dir of dsDirs) expect(dir).toMatch(/^\/data\/ds\/[A-Za-z0-9_]+$/);
    // ... where the harness image links each datastore by name.
    expect(vcsimDockerfile).toMatch(/vcsim-harness -dir \/data /);
    expect(vcsimDockerfile).toContain('/data/ds/$name');
    expect(services.vcsim!.ports).toEqual(expect.arrayContaining([expect.stringMatching(/^\d+:8989$/), expect.stringMatching(/^\d+:8990$/)]));
    expect(vcsimDockerfile).toMatch(/-port 8989 -control-port 8990/);
  });

  it('every command and healthcheck names a file the build produces', () => {
    const fromDist = (file: string) => {
      const m = /^apps\/(\w+)\/dist\/(.+)\.js$/.exec(file);
      return m ? join(ROOT, 'apps', m[1]!, 'src', `${m[2]}.ts`) : join(ROOT, file);
    };
    for (const [name, s] of Object.entries(services)) {
      for (const argv of [s.command ?? [], s.healthcheck?.test ?? []]) {
        for (const a of argv) if (/^(apps|scripts)\//.test(a)) expect([name, a, existsSync(fromDist(a))]).toEqual([name, a, true]);
      }
    }
    const hc = services.worker!.healthcheck!.test;
    const only = hc[hc.indexOf('--only') + 1]!.split(',');
    for (const g of only) expect(CHECK_GROUPS).toContain(g);
  });
});

describe('Dockerfile', () => {
  const stages = [...dockerfile.matchAll(/^FROM (\S+) AS (\S+)$/gm)].map((m) => ({ from: m[1]!, name: m[2]! }));
  const stage = (name: string) => {
    const start = dockerfile.indexOf(` AS ${name}\n`);
    const next = dockerfile.indexOf('\nFROM ', start);
    return dockerfile.slice(start, next < 0 ? undefined : next);
  };

  it('has every stage compose builds; the last is the runtime image', () => {
    for (const s of Object.values(services)) {
      const target = typeof s.build === 'object' && s.build.context === '.' ? s.build.target : undefined;
      if (target) expect(stages.map((x) => x.name)).toContain(target);
    }
    expect(stages.at(-1)!.name).toBe('runtime');
  });

  it('builds the addon, keeps dev tools for migrations only, and ships the whole built tree', () => {
    const build = stage('build');
    expect(build).toMatch(/COPY native-vddk\/ native-vddk\/\n(#.*\n)*RUN npm ci/);
    expect(build).toContain('test -f native-vddk/build/Release/vddk.node');
    // migrate runs scripts/migrate.mjs, whose schema engine is a dev dependency: no prune on its way.
    expect(stages.find((s) => s.name === 'migrate')!.from).toBe('build');
    expect(build).not.toContain('npm prune');
    expect(stage('pruned')).toContain('npm prune --omit=dev');
    const runtime = stage('runtime');
    expect(runtime).toMatch(/COPY --from=pruned \/app \/app/);
    // The api healthcheck uses curl; restores use qemu-img for VMDK conversion.
    expect(runtime).toMatch(/apt-get install .*curl/);
    expect(runtime).toMatch(/USER node/);
  });

  it('.dockerignore keeps host builds and modules out of the context', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', 'native-vddk/build', '.run']));
    // Static files under apps/*/src are not ignored: the whole tree is copied.
    expect(ignore.some((l) => l.startsWith('apps/') && l.includes('src'))).toBe(false);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './env';

// The service's real processes, for end-to-end tests: the compiled API
// server and worker processes (npm run build first; scripts/test.sh does).

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

export async function startApi(env: NodeJS.ProcessEnv): Promise<Proc & { url: string }> {
  const p = start([join(ROOT, 'apps/api/dist/server.js')], { ...env, VMRESTORE_PORT: '0' });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`api did not start:\n${p.output()}`)), 20_000);
    const check = () => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(p.output());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    p.child.stdout!.on('data', check);
    p.exited.then(() => reject(new Error(`api exited:\n${p.output()}`)));
  });
  return { ...p, url };
}

export async function startTestWorker(env: NodeJS.ProcessEnv): Promise<Proc> {
  const p = start([join(ROOT, 'test/support/test-worker.cjs')], env);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${p.output()}`)), 20_000);
    const check = () => {
      if (p.output().includes('"msg":"worker ready"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    p.child.stdout!.on('data', check);
    p.exited.then(() => reject(new Error(`worker exited:\n${p.output()}`)));
  });
  return p;
}

export async function stop(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return p?.child.exitCode ?? null;
  p.child.kill(signal);
  return p.exited;
}

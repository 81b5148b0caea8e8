// Test-only plans, so the step runner is exercised for real before the
// restore steps exist. Used in-process by the integration tests and by
// test-worker.cjs in child processes. Not shipped: production registers
// apps/worker/src/plans.
//
// A job's label picks the behaviour, e.g.
//   "plan:steps=a,b,c;block=b;transient=c:2;permanent=c;cleanup=x;failcleanup=x:3;slow=b:300"
// Every run of a step appends "run <phase> <step> <pid>" to <dir>/<jobId>.log;
// a blocked step waits for <dir>/<jobId>.<step>.release (or its abort signal).
const fs = require('node:fs');
const path = require('node:path');

function parseLabel(label) {
  const spec = { steps: ['one', 'two', 'three'], cleanup: [], block: new Set(), transient: {}, permanent: new Set(), failcleanup: new Set(), failcleanupTimes: {}, slow: {} };
  if (!label || !label.startsWith('plan:')) return spec;
  for (const part of label.slice(5).split(';').filter(Boolean)) {
    const [k, v = ''] = part.split('=');
    if (k === 'steps') spec.steps = v.split(',').filter(Boolean);
    else if (k === 'cleanup') spec.cleanup = v.split(',').filter(Boolean);
    else if (k === 'block') v.split(',').forEach((s) => spec.block.add(s));
    else if (k === 'permanent') v.split(',').forEach((s) => spec.permanent.add(s));
    else if (k === 'failcleanup') v.split(',').forEach((s) => { const [n, c] = s.split(':'); spec.failcleanup.add(n); spec.failcleanupTimes[n] = Number(c || Infinity); });
    else if (k === 'transient') { const [s, n] = v.split(':'); spec.transient[s] = Number(n || 1); }
    else if (k === 'slow') { const [s, n] = v.split(':'); spec.slow[s] = Number(n || 100); }
  }
  return spec;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(new Error(`aborted: ${signal.reason}`)); }, { once: true });
  });
}

function makeTestPlans(dir, core) {
  const { permanent, transient } = core;
  const logLine = (jobId, line) => fs.appendFileSync(path.join(dir, `${jobId}.log`), line + '\n');
  const runs = (jobId, phase, name) => {
    try { return fs.readFileSync(path.join(dir, `${jobId}.log`), 'utf8').split('\n').filter((l) => l.startsWith(`run ${phase} ${name} `)).length; } catch { return 0; }
  };
  const mainStep = (spec, name) => ({
    name,
    async run(ctx) {
      logLine(ctx.jobId, `run main ${name} ${process.pid}`);
      if (spec.slow[name]) await sleep(spec.slow[name], ctx.signal);
      if (spec.block.has(name)) {
        const release = path.join(dir, `${ctx.jobId}.${name}.release`);
        logLine(ctx.jobId, `blocked ${name} ${process.pid}`);
        while (!fs.existsSync(release)) await sleep(25, ctx.signal);
      }
      if (spec.permanent.has(name)) throw permanent('TEST_PERMANENT', `step ${name} failed for good`);
      const failures = spec.transient[name] || 0;
      if (runs(ctx.jobId, 'main', name) <= failures) throw transient('TEST_TRANSIENT', `step ${name} failed for now`);
      await ctx.progress(1, 1);
      return { step: name, pid: process.pid };
    },
  });
  const cleanupStep = (spec, name) => ({
    name,
    async run(ctx) {
      logLine(ctx.jobId, `run cleanup ${name} ${process.pid}`);
      if (spec.failcleanup.has(name) && runs(ctx.jobId, 'cleanup', name) <= spec.failcleanupTimes[name]) throw transient('TEST_CLEANUP', `cleanup ${name} failed`);
      return { cleaned: name };
    },
  });
  const factory = (job) => {
    const spec = parseLabel(job.label);
    return { steps: spec.steps.map((s) => mainStep(spec, s)), cleanup: spec.cleanup.map((s) => cleanupStep(spec, s)) };
  };
  return { in_place: factory, new_vm: factory };
}

module.exports = { makeTestPlans, parseLabel };

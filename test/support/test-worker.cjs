// A worker process running the test-only plans (see test-plans.cjs), for the
// tests that kill workers. Needs the compiled apps (npm run build).
const { runWorkerProcess } = require('../../apps/worker/dist');
const core = require('../../apps/core/dist');
const { makeTestPlans } = require('./test-plans.cjs');

const dir = process.env.TEST_PLAN_DIR;
if (!dir) { process.stderr.write('TEST_PLAN_DIR is required\n'); process.exit(2); }
runWorkerProcess(() => makeTestPlans(dir, core)).catch((err) => { process.stderr.write(String(err && err.stack || err) + '\n'); process.exit(1); });

export * from './plan';
export * from './runner';
export * from './worker';
export { reconcileQueue, MAX_REQUEUES } from './reconcile';
export { runWorkerProcess } from './main';
export { productionPlans, restoreDeps, type RestoreDeps } from './plans';
export { inPlacePlan, tempSnapshotName } from './plans/in-place';

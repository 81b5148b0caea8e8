export * from './plan';
export * from './runner';
export * from './worker';
export { runWorkerProcess } from './main';
export { productionPlans } from './plans';

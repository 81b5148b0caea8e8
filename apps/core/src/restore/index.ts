export * from './write-plan';
export * from './preflight';

export * from './write-plan';
export * from './preflight';
export * from './dry-run';

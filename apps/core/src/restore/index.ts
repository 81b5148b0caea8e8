export * from './write-plan';
export * from './preflight';
export * from './dry-run';
export * from './quick-rollback';
export * from './report';

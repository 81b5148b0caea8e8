export * from './errors';
export * from './keyring';
export * from './cipher';
export * from './rotate';
export * from './signing';

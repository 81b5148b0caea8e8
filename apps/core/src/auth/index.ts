export * from './errors';
export * from './scopes';
export * from './keys';
export * from './config';
export * from './rate-limit';

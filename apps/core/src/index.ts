export * from './config';
export * from './logger';
export * from './errors';
export * from './db';
export * from './redis';
export * from './queue';
export * from './openapi';
export * from './jobs';

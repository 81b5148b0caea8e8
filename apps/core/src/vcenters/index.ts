export * from './service';
export * from './errors';
export * from './manage';

export * from './service';
export * from './view';
export * from './cursor';
export * from './request-hash';
export * from './priority';

export { buildApp, type BuildOptions } from './app';

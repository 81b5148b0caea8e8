export { buildApp, type BuildOptions } from './app';
export { ROUTE_SCOPES, PUBLIC_ROUTES, openApiPath, routeKey } from './security/route-scopes';
export { rateAndEta } from './routes/event-stream';

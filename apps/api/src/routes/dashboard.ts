import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

// The operations dashboard (/ui): static HTML, CSS and vanilla JS that call
// the same /v1 API with the key the user signs in with. The files hold no
// data, so they need no key: they are not API operations (not in
// openapi.yaml nor ROUTE_SCOPES), and the auth hook authenticates only
// routes that have a ROUTE_SCOPES entry. Every /v1 call the page makes is
// authenticated as usual.
//
// The files are read from the source tree (apps/api/src/dashboard), found
// relative to this file both from src (tests) and from dist (the compiled
// server), like core's OPENAPI_PATH; the image copies the whole tree.

export const DASHBOARD_DIR = join(__dirname, '..', '..', 'src', 'dashboard');

/** Only these files are served: a fixed list, so no path from the URL ever reaches the file system. */
const FILES: Record<string, { file: string; type: string }> = {
  '/ui': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/hints.js': { file: 'hints.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/ui/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/**
 * Nothing but this origin's own files and API; no inline script or style
 * element, no framing, no plugins. (Setting element.style from app.js is
 * CSSOM, which style-src does not restrict.)
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [route, { file, type }] of Object.entries(FILES)) {
    const body = readFileSync(join(dir, file)); // a missing file fails at boot, not at the first visit
    out.set(route, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` });
  }
  return out;
}

export async function dashboardRoutes(app: FastifyInstance, opts: { dir?: string } = {}) {
  const assets = loadAssets(opts.dir ?? DASHBOARD_DIR);

  const serve = (asset: Asset) => async (req: FastifyRequest, reply: FastifyReply) => {
    reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      // Revalidated on every load, so a new release is picked up at once.
      .header('cache-control', 'no-cache')
      .header('etag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) return reply.status(304).send();
    return reply.type(asset.type).send(asset.body);
  };

  for (const [route, asset] of assets) app.get(route, serve(asset));
  app.get('/', async (_req, reply) => reply.redirect('/ui', 302));
}

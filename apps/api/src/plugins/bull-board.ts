import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { AppControllerRoute, AppViewRoute, BullBoardQueues, ControllerHandlerReturnType, IServerAdapter, UIConfig } from '@bull-board/api/typings/app';
import { AuthError, authenticateApiKey, type Principal, type SecurityConfig } from '@vmrestore/core';
import { sendProblem } from '../problem';
import { presentedKey } from '../security/auth';

// Bull Board (the BullMQ queue UI) at /admin/queues, for the restore and
// webhook queues. The queues hold every tenant's jobs, and the board can
// retry, promote and remove them, so it admits only `admin` keys of the
// operator tenant (VMRESTORE_OPERATOR_TENANT, default `default`); a tenant's
// own admin key is refused. A browser cannot add a header to the board's
// page loads, so the key is also accepted as the password of HTTP Basic
// auth (any user name): a 401 asks the browser for it. docs/metrics.md.
//
// The server side is our own small adapter rather than @bull-board/fastify:
// that one loads @fastify/static, whose content-disposition is ESM only and
// cannot be loaded by jest's CommonJS runtime, which every test building the
// app goes through. The adapter serves the same three things: the page, the
// static files, the JSON API.

export const BULL_BOARD_PATH = '/admin/queues';
const REALM = 'Basic realm="vmrestore queues", charset="UTF-8"';

/** The key of `Authorization: Basic base64(user:key)`, else Bearer / X-API-Key as on /v1. */
export function boardKey(req: FastifyRequest): string | null {
  const basic = /^Basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const pair = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    return colon >= 0 ? pair.slice(colon + 1) || null : null;
  }
  return presentedKey(req);
}

const escapeHtml = (v: unknown) =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The board's index.ejs uses `<%= name %>` (escaped) and `<%- name %>` (raw,
 * a JSON the board already escaped) only; anything else in a future
 * template is refused rather than rendered wrong.
 */
export function renderBoardTemplate(template: string, params: Record<string, unknown>): string {
  return template.replace(/<%([=-])\s*([A-Za-z_][A-Za-z0-9_]*)\s*%>|<%/g, (tag, kind: string | undefined, name: string | undefined) => {
    if (!kind || !name) throw new Error(`bull-board template: unsupported tag at "${tag}"`);
    return kind === '=' ? escapeHtml(params[name]) : String(params[name] ?? '');
  });
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

class BoardServerAdapter implements IServerAdapter {
  private queues: BullBoardQueues | undefined;
  private viewPath = '';
  private statics: { route: string; path: string } | undefined;
  private entry: AppViewRoute | undefined;
  private errorHandler: ((error: Error) => ControllerHandlerReturnType) | undefined;
  private apiRoutes: AppControllerRoute[] = [];
  private uiConfig: UIConfig = {};

  constructor(private readonly basePath: string) {}

  setQueues(q: BullBoardQueues) {
    this.queues = q;
    return this;
  }
  setViewsPath(p: string) {
    this.viewPath = p;
    return this;
  }
  setStaticPath(route: string, path: string) {
    this.statics = { route, path };
    return this;
  }
  setEntryRoute(r: AppViewRoute) {
    this.entry = r;
    return this;
  }
  setErrorHandler(h: (error: Error) => ControllerHandlerReturnType) {
    this.errorHandler = h;
    return this;
  }
  setApiRoutes(r: AppControllerRoute[]) {
    this.apiRoutes = r;
    return this;
  }
  setUIConfig(c: UIConfig) {
    this.uiConfig = c;
    return this;
  }

  async register(app: FastifyInstance): Promise<void> {
    const { queues, statics, entry, errorHandler } = this;
    if (!queues || !statics || !entry || !errorHandler) throw new Error('bull-board: createBullBoard() must configure the adapter before it is registered');

    const template = await readFile(join(this.viewPath, 'index.ejs'), 'utf8');
    for (const url of ([] as string[]).concat(entry.route)) {
      app.route({
        method: entry.method.toUpperCase() as HTTPMethods,
        url,
        schema: { hide: true },
        handler: async (_req, reply) => {
          const { name, params } = entry.handler({ basePath: this.basePath, uiConfig: this.uiConfig });
          if (name !== 'index.ejs') throw new Error(`bull-board: unknown view ${name}`);
          return reply.type('text/html; charset=utf-8').send(renderBoardTemplate(template, params));
        },
      });
    }

    // Static files: confined to the board's static directory; names carry
    // content hashes, so they may be cached for long.
    const root = resolve(statics.path);
    app.get(`${statics.route}/*`, { schema: { hide: true } }, async (req, reply) => {
      const rel = (req.params as { '*': string })['*'];
      const file = resolve(root, rel);
      const type = TYPES[extname(file)];
      if (!file.startsWith(root + sep) || !type) return sendProblem(reply, req, 'ROUTE_NOT_FOUND', `no file ${req.url.split('?')[0]}`);
      const body = await readFile(file).catch(() => null);
      if (!body) return sendProblem(reply, req, 'ROUTE_NOT_FOUND', `no file ${req.url.split('?')[0]}`);
      return reply.type(type).header('cache-control', 'public, max-age=86400').send(body);
    });

    for (const r of this.apiRoutes) {
      for (const url of ([] as string[]).concat(r.route)) {
        app.route({
          method: ([] as string[]).concat(r.method).map((m) => m.toUpperCase()) as HTTPMethods[],
          url,
          schema: { hide: true },
          handler: async (req, reply) => {
            let res: ControllerHandlerReturnType;
            try {
              res = await r.handler({
                queues,
                uiConfig: this.uiConfig,
                params: req.params as Record<string, string>,
                query: req.query as Record<string, string>,
                body: req.body as Record<string, unknown>,
                headers: req.headers as Record<string, string>,
              });
            } catch (err) {
              res = errorHandler(err as Error);
            }
            return reply.status(res.status || 200).send(res.body);
          },
        });
      }
    }
  }
}

export async function bullBoardPlugin(app: FastifyInstance, opts: { security: SecurityConfig; operatorTenant: string }) {
  let operatorTenantId: string | null = null;
  const operatorId = async () => {
    operatorTenantId ??= (await app.db.tenant.findUnique({ where: { name: opts.operatorTenant }, select: { id: true } }))?.id ?? null;
    return operatorTenantId;
  };

  const refuse = (req: FastifyRequest, reply: FastifyReply, err: AuthError) => {
    if (err.code === 'UNAUTHENTICATED') reply.header('www-authenticate', REALM);
    return sendProblem(reply, req, err.code, err.message);
  };

  // This plugin's own context: the hook guards the board's routes only.
  app.addHook('onRequest', async (req, reply) => {
    if (opts.security.auth === 'disabled') return;
    let principal: Principal;
    try {
      const key = boardKey(req);
      if (!key) throw new AuthError('UNAUTHENTICATED', `${BULL_BOARD_PATH} needs an admin API key: as the HTTP Basic password (any user name), "Authorization: Bearer <key>" or "X-API-Key: <key>"`);
      principal = await authenticateApiKey(app.db, key);
      if (!principal.scopes.includes('admin')) throw new AuthError('FORBIDDEN_SCOPE', `${BULL_BOARD_PATH} needs the scope admin`);
      if (principal.tenantId !== (await operatorId())) {
        throw new AuthError('FORBIDDEN_SCOPE', `${BULL_BOARD_PATH} shows every tenant's jobs: it needs an admin key of the operator tenant (VMRESTORE_OPERATOR_TENANT)`);
      }
    } catch (err) {
      if (err instanceof AuthError) return refuse(req, reply, err);
      throw err;
    }
    if (principal.keyId) req.log = req.log.child({ apiKeyId: principal.keyId });
  });

  const adapter = new BoardServerAdapter(BULL_BOARD_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(app.restoreQueue), new BullMQAdapter(app.webhookQueue)],
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'vmrestore queues' } },
  });
  await app.register(async (board) => adapter.register(board), { prefix: BULL_BOARD_PATH });
}

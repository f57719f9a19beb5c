// SPDX-License-Identifier: UNLICENSED
// The console's HTTPS server: the page (static files, no CDN), the JSON API under /api (OpenAPI at
// /api/openapi.json) and live updates as server-sent events. Authorisation is decided by the core
// (operators.ts, fleet.ts); this file checks sessions and CSRF, reads and writes through the ports, and
// turns every bad request into a 4xx with a JSON `error`, never a crash.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { errorMessage } from '../../shared/errors.js';
import { guardServer, tlsOptions } from '../../shared/net/service-guard.js';
import type { Logger } from '../../shared/log.js';
import type { Registry } from '../../shared/registry/registry.js';
import { addSegment, addTenant } from '../../shared/registry/registry-edit.js';
import { fleetView, tenantsView, type UnitView } from '../core/fleet.js';
import { LoginGuard } from '../core/login-guard.js';
import { OPENAPI } from '../core/openapi.js';
import { canChange, canSee, type Operator } from '../core/operators.js';
import { unitDetail } from '../core/unit-detail.js';
import { drillRoutes } from './drill-routes.js';
import { rolloutRoutes } from './rollout-routes.js';
import { unitHealth } from '../core/unit-health.js';
import type { FileVerdict } from '../../shared/audit/files.js';
import { segmentInput } from './segment-input.js';
import type { HeadendPoll } from './headend-client.js';
import { cookie, csvCell, HttpError, readJson, SECURITY_HEADERS, sendError, sendJson } from './http-util.js';
import type { OperatorLog } from './operator-log.js';
import { verifyPassword } from './passwords.js';

export interface ConsolePorts {
  operators(): readonly Operator[];
  readRegistry(): Registry;
  updateRegistry(change: (r: Registry) => Registry): Promise<Registry>;
  claim(r: Registry, serial: string, tenant: string, segment: string | undefined, site: string | undefined): Registry;
  revoke(r: Registry, serial: string): Registry;
  live(): HeadendPoll;
  auditLines(): string[];
  operatorLog: OperatorLog;
  log: Logger;
  webDir: string;
  sessionIdleMs: number;
  pollMs: number;
  /** The drill service's API, or null when the console has none. */
  drillApi: string | null;
  /** The headend audit log's chain check (`connector audit verify`); null when no audit log is set. */
  verifyAudit(): FileVerdict | null;
  /** What a unit last said about itself on the OTA channel; null when the console does not watch it. */
  unitReport(serial: string): { status?: unknown; health?: unknown } | null;
  /** The rollout controller's API (`connector ota controller`); null: the state files, read-only. */
  rolloutApi: string | null;
  /** The rollout state files (name and parsed JSON, or why not); null when no rollout directory is set. */
  rolloutFiles(): { file: string; doc: unknown }[] | null;
}

interface Session {
  operator: string;
  csrf: string;
  lastUsed: number;
}

const COOKIE = 'ck_console';
const STATIC: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
const MAX_SESSIONS = 10_000;

export interface ConsoleServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function startApiServer(
  tls: { cert: string; key: string; clientCa?: string },
  host: string,
  port: number,
  p: ConsolePorts,
): Promise<ConsoleServer> {
  const sessions = new Map<string, Session>();
  const guard = new LoginGuard();
  const streams = new Set<ServerResponse>();

  const operatorOf = (req: IncomingMessage, mutating: boolean): { op: Operator; token: string } => {
    const token = cookie(req, COOKIE);
    const s = token ? sessions.get(token) : undefined;
    const now = Date.now();
    if (!token || !s || now - s.lastUsed > p.sessionIdleMs) {
      if (token) sessions.delete(token);
      throw new HttpError(401, 'log in first (POST /api/login)');
    }
    // Operators are re-read on every request: a removed operator or a changed role applies at once.
    const op = p.operators().find((o) => o.name === s.operator);
    if (!op) {
      sessions.delete(token);
      throw new HttpError(401, 'this operator no longer exists');
    }
    if (mutating) {
      const sent = String(req.headers['x-csrf-token'] ?? '');
      if (sent.length !== s.csrf.length || !timingSafeEqual(Buffer.from(sent), Buffer.from(s.csrf))) {
        throw new HttpError(403, 'missing or wrong X-CSRF-Token header (it comes with the login answer and GET /api/me)');
      }
    }
    s.lastUsed = now;
    return { op, token };
  };

  const units = (op: Operator): UnitView[] => fleetView(p.readRegistry(), p.live().sessions, op);
  const remoteOf = (req: IncomingMessage): string => req.socket.remoteAddress ?? '?';
  const drills = drillRoutes(p.drillApi, p.operatorLog, remoteOf);
  const rollouts = rolloutRoutes({
    api: p.rolloutApi,
    files: p.rolloutFiles,
    registry: p.readRegistry,
    operatorLog: p.operatorLog,
    remoteOf,
  });

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const name = typeof body['name'] === 'string' ? body['name'] : '';
    const password = typeof body['password'] === 'string' ? body['password'] : '';
    if (!name || !password) throw new HttpError(400, 'give "name" and "password"');
    const now = Date.now();
    const wait = guard.retryAfterMs(name, remoteOf(req), now);
    if (wait > 0) throw new HttpError(429, 'too many failed logins; wait and try again', { 'retry-after': String(Math.ceil(wait / 1000)) });
    const op = p.operators().find((o) => o.name === name);
    // A missing operator still costs a hash check, so timing does not tell names apart.
    const ok = await verifyPassword(
      password,
      op?.password ?? 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    );
    if (!op || !ok) {
      guard.failed(name, remoteOf(req), now);
      p.log.warn('console login failed', { operator: name, remote: remoteOf(req) });
      throw new HttpError(401, 'wrong name or password');
    }
    guard.succeeded(name);
    startSession(res, op, req, 'password');
  }

  /**
   * Login by client certificate: the TLS handshake already checked it against the console's client CA;
   * here its SHA-256 names the operator. No password, so nothing to guess and no lock-out.
   */
  function loginCert(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as TLSSocket;
    const cert = tls.clientCa === undefined ? null : socket.getPeerX509Certificate();
    if (tls.clientCa === undefined)
      throw new HttpError(404, 'certificate login is not configured (set clientCaFile in the console config)');
    if (!cert) throw new HttpError(401, 'no client certificate was presented');
    if (!socket.authorized)
      throw new HttpError(401, `the client certificate was not issued by the console's client CA (${String(socket.authorizationError)})`);
    const sha = cert.fingerprint256.replace(/:/g, '').toLowerCase();
    const op = p.operators().find((o) => o.certSha256 === sha);
    if (!op) {
      p.log.warn('console certificate login refused', { subject: cert.subject.replace(/\n/g, ', '), sha256: sha, remote: remoteOf(req) });
      throw new HttpError(401, `no operator has this certificate (SHA-256 ${sha}); add it with connector console operator add --cert`);
    }
    startSession(res, op, req, 'certificate');
  }

  function startSession(res: ServerResponse, op: Operator, req: IncomingMessage, how: string): void {
    if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
    const token = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    sessions.set(token, { operator: op.name, csrf, lastUsed: Date.now() });
    p.log.info('console login', { operator: op.name, role: op.role, remote: remoteOf(req), how });
    sendJson(
      res,
      200,
      { name: op.name, role: op.role, tenants: op.tenants, csrf },
      { 'set-cookie': `${COOKIE}=${token}; HttpOnly; Secure; SameSite=Strict; Path=/` },
    );
  }

  async function change(req: IncomingMessage, res: ServerResponse, op: Operator, serial: string, action: string): Promise<void> {
    const body = await readJson(req);
    const reg = p.readRegistry();
    const d = reg.devices[serial];
    // An msp operator may claim an unclaimed unit for its own tenant by serial (the label on the box);
    // anything else it cannot see answers exactly as a serial that does not exist.
    if (!d || (!canSee(op, d.tenant) && !(action === 'claim' && d.state === 'allowed' && op.role === 'msp'))) {
      throw new HttpError(404, `no unit ${serial}`);
    }
    if (action === 'claim') {
      const tenant = typeof body['tenant'] === 'string' ? body['tenant'] : '';
      const segment = typeof body['segment'] === 'string' && body['segment'] ? body['segment'] : undefined;
      const site = typeof body['site'] === 'string' && body['site'] ? body['site'] : undefined;
      if (!tenant) throw new HttpError(400, 'give "tenant"');
      if (!canChange(op, tenant)) throw new HttpError(403, `operator ${op.name} cannot change tenant ${tenant}`);
      await p.updateRegistry((r) => p.claim(r, serial, tenant, segment, site)).catch(toHttp);
      p.operatorLog.append(
        { operator: op.name, action: 'claim', target: serial, remote: remoteOf(req), detail: { tenant, segment, site } },
        new Date(),
      );
    } else {
      if (!canChange(op, d.tenant)) throw new HttpError(403, `operator ${op.name} cannot change unit ${serial}`);
      await p.updateRegistry((r) => p.revoke(r, serial)).catch(toHttp);
      p.operatorLog.append({ operator: op.name, action: 'revoke', target: serial, remote: remoteOf(req) }, new Date());
    }
    p.log.info(`console ${action}`, { operator: op.name, serial });
    sendJson(res, 200, units(op).find((u) => u.serial === serial) ?? { serial });
  }

  /**
   * Tenants and segments are the provider's: VNIs and VTEPs are fabric resources, so only an admin
   * creates or changes them. The registry's own checks (names, VNI range and uniqueness, addresses,
   * MTU) answer a bad value with a 400 naming it.
   */
  async function tenantChange(req: IncomingMessage, res: ServerResponse, op: Operator, tenant: string | undefined): Promise<void> {
    if (op.role !== 'admin') throw new HttpError(403, 'tenants and segments are changed by provider admins');
    const body = await readJson(req);
    const name = typeof body['name'] === 'string' ? body['name'].trim() : '';
    if (!name) throw new HttpError(400, 'give "name"');
    if (tenant === undefined) {
      await p.updateRegistry((r) => addTenant(r, name)).catch(toHttp);
      p.operatorLog.append({ operator: op.name, action: 'tenant-add', target: name, remote: remoteOf(req) }, new Date());
    } else {
      const s = segmentInput(body);
      const replace = body['replace'] === true;
      await p.updateRegistry((r) => addSegment(r, tenant, name, s, replace)).catch(toHttp);
      p.operatorLog.append(
        {
          operator: op.name,
          action: replace ? 'segment-change' : 'segment-add',
          target: `${tenant}/${name}`,
          remote: remoteOf(req),
          detail: { ...s },
        },
        new Date(),
      );
    }
    p.log.info('console tenant change', { operator: op.name, tenant: tenant ?? name, segment: tenant === undefined ? undefined : name });
    sendJson(res, 200, { tenants: tenantsView(p.readRegistry(), units(op), op) });
  }

  function audit(req: IncomingMessage, res: ServerResponse, op: Operator, url: URL): void {
    const q = (url.searchParams.get('q') ?? '').toLowerCase();
    const limit = Math.min(10_000, Math.max(1, Number(url.searchParams.get('limit') ?? '500') || 500));
    const records: Record<string, unknown>[] = [];
    for (const line of p.auditLines()) {
      let r: Record<string, unknown>;
      try {
        r = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (op.role === 'msp' && !canSee(op, typeof r['tenant'] === 'string' ? r['tenant'] : undefined)) continue;
      if (q && !line.toLowerCase().includes(q)) continue;
      records.push(r);
    }
    const shown = records.slice(-limit);
    if (url.pathname === '/api/audit/export') {
      const cols = ['seq', 'time', 'event', 'tenant', 'segment', 'serial', 'site', 'remote', 'sessionId', 'reason', 'bytesIn', 'bytesOut'];
      const csv = [cols.join(','), ...shown.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\r\n') + '\r\n';
      p.operatorLog.append(
        { operator: op.name, action: 'audit-export', target: 'audit', remote: remoteOf(req), detail: { records: shown.length } },
        new Date(),
      );
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="connector-audit.csv"',
        'cache-control': 'no-store',
      });
      res.end(csv);
      return;
    }
    sendJson(res, 200, { records: shown, total: records.length });
  }

  function events(req: IncomingMessage, res: ServerResponse, op: Operator): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    let last = '';
    const send = (): void => {
      const data = JSON.stringify({ units: units(op), unreachable: p.live().unreachable, at: p.live().at });
      if (data !== last) res.write(`event: units\ndata: ${data}\n\n`);
      else res.write(': keepalive\n\n');
      last = data;
    };
    send();
    const timer = setInterval(send, p.pollMs);
    streams.add(res);
    req.on('close', () => {
      clearInterval(timer);
      streams.delete(res);
    });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://console');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && !path.startsWith('/api/')) return serveStatic(res, path);
    if (path === '/api/openapi.json' && method === 'GET') return sendJson(res, 200, OPENAPI);
    if (path === '/api/login' && method === 'POST') return login(req, res);
    if (path === '/api/login-cert' && method === 'POST') return loginCert(req, res);
    const mutating = method !== 'GET';
    const { op, token } = operatorOf(req, mutating);
    const unitMatch = /^\/api\/units\/([A-Za-z0-9_-]{1,64})(?:\/(claim|revoke))?$/.exec(path);
    if (path === '/api/logout' && method === 'POST') {
      sessions.delete(token);
      return sendJson(res, 200, { ok: true }, { 'set-cookie': `${COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0` });
    }
    if (path === '/api/me' && method === 'GET') {
      return sendJson(res, 200, { name: op.name, role: op.role, tenants: op.tenants, csrf: sessions.get(token)?.csrf });
    }
    if (path === '/api/units' && method === 'GET') {
      const live = p.live();
      return sendJson(res, 200, { units: units(op), unreachable: live.unreachable, at: live.at });
    }
    if (unitMatch && method === 'GET' && !unitMatch[2]) {
      const u = units(op).find((x) => x.serial === unitMatch[1]);
      if (!u) throw new HttpError(404, `no unit ${unitMatch[1] ?? ''}`);
      const own = p.unitReport(u.serial);
      return sendJson(res, 200, {
        ...unitDetail(u, p.live().sessions, p.auditLines(), op),
        health: own && unitHealth(own.status, own.health),
      });
    }
    if (unitMatch && method === 'POST' && unitMatch[2]) return change(req, res, op, unitMatch[1] as string, unitMatch[2]);
    const tenantMatch = /^\/api\/tenants(?:\/([A-Za-z0-9_.-]{1,64})\/segments)?$/.exec(path);
    if (tenantMatch && method === 'POST') return tenantChange(req, res, op, tenantMatch[1]);
    if (path === '/api/tenants' && method === 'GET') {
      const reg = p.readRegistry();
      return sendJson(res, 200, { tenants: tenantsView(reg, units(op), op) });
    }
    if (path === '/api/audit/verify' && method === 'GET') {
      // The whole log's verdict counts every tenant's records: for provider operators.
      if (op.role === 'msp') throw new HttpError(403, 'verifying the whole audit log is for provider operators');
      const v = p.verifyAudit();
      if (v === null) throw new HttpError(404, 'no audit log is configured (set auditLogFile in the console config)');
      return sendJson(res, 200, v);
    }
    if ((path === '/api/audit' || path === '/api/audit/export') && method === 'GET') return audit(req, res, op, url);
    if (path === '/api/operator-log' && method === 'GET') {
      if (op.role === 'msp') throw new HttpError(403, 'the operator log is for provider operators');
      return sendJson(res, 200, { records: p.operatorLog.read().slice(-1_000), chain: p.operatorLog.verify() });
    }
    if (path === '/api/events' && method === 'GET') return events(req, res, op);
    if (path === '/api/config' && method === 'GET') {
      return sendJson(res, 200, { drills: p.drillApi !== null, ...rollouts.features() });
    }
    if (await drills.handle(req, res, op, path, method)) return;
    if (await rollouts.handle(req, res, op, path, method)) return;
    throw new HttpError(404, `no ${method} ${path}; see GET /api/openapi.json`);
  }

  function serveStatic(res: ServerResponse, path: string): void {
    const name = path === '/' ? 'index.html' : path.slice(1);
    const type = STATIC[extname(name)];
    if (!/^[a-z0-9-]+\.(html|js|css)$/.test(name) || !type) throw new HttpError(404, `no page ${path}`);
    let body: Buffer;
    try {
      body = readFileSync(join(p.webDir, name));
    } catch {
      throw new HttpError(404, `no page ${path}`);
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-cache' });
    res.end(body);
  }

  // A client certificate is asked for, never required: operators without one log in with a password.
  const clientAuth = tls.clientCa === undefined ? {} : { requestCert: true, rejectUnauthorized: false, ca: tls.clientCa };
  const server: Server = createServer(
    { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...clientAuth, ...tlsOptions() },
    (req, res) => {
      route(req, res).catch((e: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (e instanceof HttpError) return sendError(res, e);
        p.log.error('console request failed', { path: req.url, error: errorMessage(e) });
        sendError(res, new HttpError(500, 'internal error; see the console log'));
      });
    },
  );
  guardServer(server, { name: 'console', log: p.log });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    address: server.address() as AddressInfo,
    async close() {
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A registry change refused by the registry's own checks is the operator's 400, with its message. */
function toHttp(e: unknown): never {
  throw new HttpError(400, errorMessage(e));
}

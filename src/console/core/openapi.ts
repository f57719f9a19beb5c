// SPDX-License-Identifier: UNLICENSED
// The console's API, described for scripts (OpenAPI 3.0, served at GET /api/openapi.json). Every call
// but login needs the session cookie; every call that changes something also needs the X-CSRF-Token
// header from the login answer. Errors are JSON `{ "error": "..." }` with a 4xx status.

const err = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const ok = (description: string, schema: Record<string, unknown> = { type: 'object' }) => ({
  description,
  content: { 'application/json': { schema } },
});
const unitRef = { $ref: '#/components/schemas/Unit' };
const int = { type: 'integer' };
const text = { type: 'string' };
const rolloutChange = { 200: ok('the rollout state'), 403: err, 404: err, 409: err, 502: err };
const maybe = (t: Record<string, unknown>) => ({ ...t, nullable: true });

export const OPENAPI = Object.freeze({
  openapi: '3.0.3',
  info: { title: 'connector console API', version: '1' },
  components: {
    securitySchemes: {
      session: { type: 'apiKey', in: 'cookie', name: 'ck_console' },
      csrf: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token' },
    },
    schemas: {
      Error: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] },
      Unit: {
        type: 'object',
        properties: {
          serial: { type: 'string' },
          state: { type: 'string', enum: ['allowed', 'claimed', 'revoked'] },
          tenant: { type: 'string', nullable: true },
          segment: { type: 'string', nullable: true },
          site: { type: 'string', nullable: true },
          online: { type: 'boolean' },
          headend: { type: 'string', nullable: true },
          remote: { type: 'string', nullable: true },
          agentVersion: { type: 'string', nullable: true },
          sinceMs: { type: 'integer', nullable: true },
          bytesIn: { type: 'integer' },
          bytesOut: { type: 'integer' },
          rttMs: { type: 'number', nullable: true, description: "the headend's latest RTT probe of the session, ms" },
          jitterMs: { type: 'number', nullable: true, description: 'RFC 3550 jitter over those probes, ms' },
          updatedAt: { type: 'string', format: 'date-time' },
        },
      },
      UnitDetail: {
        allOf: [
          unitRef,
          {
            type: 'object',
            properties: {
              sessions: {
                type: 'array',
                description: 'live sessions the headends report for the unit (a trunk unit has one per VLAN)',
                items: {
                  type: 'object',
                  properties: {
                    headend: text,
                    vni: int,
                    vlan: int,
                    state: text,
                    transport: { type: 'string', enum: ['datagram', 'tls'] },
                    remote: text,
                    startedAtMs: int,
                    framesIn: int,
                    framesOut: int,
                    bytesIn: int,
                    bytesOut: int,
                  },
                },
              },
              history: {
                type: 'array',
                description: 'the unit in the headend audit log (connect, disconnect, refused, transport), newest first, at most 200',
                items: {
                  type: 'object',
                  properties: {
                    seq: maybe(int),
                    time: { type: 'string', format: 'date-time' },
                    event: text,
                    reason: maybe(text),
                    remote: maybe(text),
                    transport: maybe(text),
                    bytesIn: maybe(int),
                    bytesOut: maybe(int),
                  },
                },
              },
            },
          },
        ],
      },
    },
  },
  security: [{ session: [] }],
  paths: {
    '/api/login': {
      post: {
        security: [],
        summary: 'Log in; sets the session cookie and returns the CSRF token',
        requestBody: ok('name and password', { type: 'object', properties: { name: { type: 'string' }, password: { type: 'string' } } }),
        responses: { 200: ok('the operator, role, tenants and csrf token'), 401: err, 429: err },
      },
    },
    '/api/logout': { post: { security: [{ session: [], csrf: [] }], responses: { 200: ok('logged out') } } },
    '/api/me': { get: { responses: { 200: ok('the operator, role, tenants and csrf token'), 401: err } } },
    '/api/units': {
      get: { summary: 'The units the operator may see, with live state', responses: { 200: ok('units', { type: 'object' }) } },
    },
    '/api/units/{serial}': {
      get: {
        summary: 'One unit: its fleet row, live sessions and history',
        responses: { 200: ok('one unit', { $ref: '#/components/schemas/UnitDetail' }), 404: err },
      },
    },
    '/api/units/{serial}/claim': {
      post: {
        security: [{ session: [], csrf: [] }],
        summary: 'Claim a unit for a tenant (admin; msp for its own tenants, by serial)',
        requestBody: ok('tenant, optional segment and site', {
          type: 'object',
          properties: { tenant: { type: 'string' }, segment: { type: 'string' }, site: { type: 'string' } },
        }),
        responses: { 200: ok('the unit', unitRef), 400: err, 403: err, 404: err },
      },
    },
    '/api/units/{serial}/revoke': {
      post: { security: [{ session: [], csrf: [] }], responses: { 200: ok('the unit', unitRef), 403: err, 404: err } },
    },
    '/api/tenants': {
      get: { responses: { 200: ok('tenants with segments and unit counts') } },
      post: {
        security: [{ session: [], csrf: [] }],
        summary: 'Create a tenant (admin)',
        requestBody: ok('its name', { type: 'object', properties: { name: text }, required: ['name'] }),
        responses: { 200: ok('the tenants'), 400: err, 403: err },
      },
    },
    '/api/tenants/{tenant}/segments': {
      post: {
        security: [{ session: [], csrf: [] }],
        summary: "Add a tenant's segment, or change one with replace: true (admin)",
        requestBody: ok('the segment', {
          type: 'object',
          properties: {
            name: text,
            vni: { type: 'integer', minimum: 1, maximum: 16777215 },
            vteps: { type: 'array', items: text },
            vtepPathMtu: { type: 'integer', default: 1550 },
            multiSite: { type: 'boolean' },
            allowDhcpFromDc: { type: 'boolean' },
            replace: { type: 'boolean' },
          },
          required: ['name', 'vni'],
        }),
        responses: { 200: ok('the tenants'), 400: err, 403: err },
      },
    },
    '/api/config': {
      get: {
        summary: 'What this console has (drills: a drill service; rollouts: rollouts to show; rolloutControl: a controller to steer)',
        responses: { 200: ok('features') },
      },
    },
    '/api/rollouts': {
      get: {
        summary:
          "The OTA rollouts (from the rollout controller, or read-only from its state files), with each visible unit's state (an msp: its units only)",
        responses: { 200: ok('rollouts and the files not shown, with why'), 404: err, 502: err },
      },
      post: {
        security: [{ session: [], csrf: [] }],
        summary: 'Start a rollout of a signed release (admin; needs rolloutApi). One rollout sends jobs at a time.',
        requestBody: ok('the rollout', {
          type: 'object',
          properties: {
            release: text,
            cohort: { type: 'string', description: 'a percentage like 10% or serials separated by commas' },
            failThreshold: int,
            maxParallel: int,
            window: { type: 'string', description: 'HH:MM-HH:MM in UTC' },
            rolloutId: text,
          },
          required: ['release', 'cohort', 'failThreshold'],
        }),
        responses: { 201: ok('the rollout state'), 400: err, 403: err, 404: err, 409: err, 502: err },
      },
    },
    '/api/rollouts/{id}/pause': {
      post: { security: [{ session: [], csrf: [] }], summary: 'No new jobs; jobs already sent finish (admin)', responses: rolloutChange },
    },
    '/api/rollouts/{id}/resume': {
      post: {
        security: [{ session: [], csrf: [] }],
        summary: 'Send jobs again (admin); at the failure threshold only with {"acceptFailures": true}',
        responses: rolloutChange,
      },
    },
    '/api/rollouts/{id}/widen': {
      post: { security: [{ session: [], csrf: [] }], summary: 'A larger cohort: {"cohort": "50%"} (admin)', responses: rolloutChange },
    },
    '/api/releases': {
      get: {
        summary: 'The signed releases the rollout controller offers (provider roles)',
        responses: { 200: ok('releases'), 403: err, 502: err },
      },
    },
    '/api/drills': {
      get: {
        summary: "The drills of the operator's tenants (from the drill service)",
        responses: { 200: ok('drills'), 404: err, 502: err },
      },
      post: {
        security: [{ session: [], csrf: [] }],
        summary: 'Start a drill (admin; msp for its own tenants)',
        requestBody: ok('the drill', {
          type: 'object',
          properties: {
            tenant: text,
            kind: { type: 'string', enum: ['sandbox', 'in-place'] },
            segment: text,
            vmIp: text,
            ttlS: int,
            allowOutbound: { type: 'boolean' },
          },
          required: ['tenant', 'kind'],
        }),
        responses: { 201: ok('the drill'), 400: err, 403: err, 409: err, 502: err },
      },
    },
    '/api/drills/{id}': { get: { responses: { 200: ok('one drill with its timeline'), 404: err } } },
    '/api/drills/{id}/report': {
      get: {
        summary: "The drill's report as self-contained HTML (bound to the audit log by hash; the drill service needs --audit-log)",
        responses: { 200: { description: 'text/html' }, 404: err, 409: err },
      },
    },
    '/api/drills/{id}/end': {
      post: { security: [{ session: [], csrf: [] }], responses: { 200: ok('the ended drill'), 403: err, 404: err } },
    },
    '/api/failovers': {
      get: {
        summary: "The failovers of the operator's tenants (from the drill service; declared with `connector failover start`)",
        responses: { 200: ok('failovers with their state (active, ended) and timeline'), 404: err, 502: err },
      },
    },
    '/api/failovers/{id}': { get: { responses: { 200: ok('one failover with its timeline'), 404: err } } },
    '/api/failovers/{id}/report': {
      get: {
        summary: "The failover's report as self-contained HTML",
        responses: { 200: { description: 'text/html' }, 404: err, 409: err },
      },
    },
    '/api/audit': { get: { summary: 'Headend audit records (q: text search, limit)', responses: { 200: ok('records') } } },
    '/api/audit/verify': {
      get: {
        summary: 'The headend audit log checked as `connector audit verify` does: chain, head pointer, signed checkpoints (provider roles)',
        responses: { 200: ok('the verdict: ok with counts, or the first broken line and why'), 403: err, 404: err },
      },
    },
    '/api/audit/export': { get: { summary: 'The same records as CSV (formula-safe)', responses: { 200: { description: 'text/csv' } } } },
    '/api/operator-log': {
      get: { summary: 'Operator actions and the chain check (provider roles)', responses: { 200: ok('records'), 403: err } },
    },
    '/api/events': {
      get: {
        summary: 'Server-sent events: `units` whenever the fleet view changes',
        responses: { 200: { description: 'text/event-stream' } },
      },
    },
  },
});

// SPDX-License-Identifier: UNLICENSED
// The console's client for the datacentre services it fronts (the drill service, the rollout controller):
// JSON in and out with a timeout. A service's own refusals come back as the same 4xx with its message; a
// service that does not answer, or fails, is a 502 that names it.
import { HttpError } from './http-util.js';

const TIMEOUT_MS = 5_000;

export type ServiceCall = (method: string, path: string, body?: unknown) => Promise<unknown>;

/** `configKey` names the console setting that enables the service, for the 404 when it is not set. */
export function serviceClient(api: string | null, what: string, configKey: string): ServiceCall {
  return async (method, path, body) => {
    if (api === null) throw new HttpError(404, `${what}s are not configured (set ${configKey} in the console config)`);
    let res: Response;
    try {
      res = await fetch(new URL(path, api), {
        method,
        signal: AbortSignal.timeout(TIMEOUT_MS),
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
    } catch (e) {
      throw new HttpError(502, `the ${what} service at ${api} did not answer: ${(e as Error).message}`);
    }
    const doc = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) {
      const status = res.status >= 400 && res.status < 500 ? res.status : 502;
      throw new HttpError(status, String(doc['message'] ?? doc['error'] ?? `${what} service: HTTP ${res.status}`));
    }
    return doc;
  };
}

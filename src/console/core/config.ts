// SPDX-License-Identifier: UNLICENSED
// `connector console serve --config FILE`: a JSON document in, a validated ConsoleConfig out. Paths are
// relative to the config file's directory; unknown keys are refused. Pure apart from the caller reading
// the file.
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../../shared/errors.js';
import {
  array,
  formatPath,
  integer,
  object,
  optional,
  parseJsonText,
  parseWith,
  string,
  type SchemaIssue,
} from '../../shared/schema/schema.js';
import { registrySourceField, resolveRegistrySource, type RegistrySource } from '../../shared/registry/source.js';

export interface ConsoleConfig {
  host: string;
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  registry: RegistrySource;
  operatorsFile: string;
  /** The headends' operations endpoints (their metrics listener), e.g. http://10.0.0.1:9100. */
  headends: readonly string[];
  /** The headend's audit log (read-only here: search, verify, export). */
  auditLogFile: string | null;
  /** The console's own log of operator actions (JSON Lines, hash-chained). */
  operatorLogFile: string;
  /** A session unused this long is gone. */
  sessionIdleS: number;
  /** How often the live view polls the headends. */
  pollMs: number;
  /** The drill service's API (`connector drill serve`), e.g. http://127.0.0.1:9480; null: no drills page. */
  drillApi: string | null;
  /** The CA whose client certificates operators may log in with (POST /api/login-cert); null: passwords only. */
  clientCaFile: string | null;
  /** Where `connector ota rollout --state FILE` keeps its state files (*.json): the Rollouts page, read-only. */
  rolloutDir: string | null;
  /** The rollout controller's API (`connector ota controller`): the Rollouts page, with start, pause and resume. */
  rolloutApi: string | null;
  /** The OTA broker and an observer identity (`broker-config --observer`): each unit's own status and health. */
  otaBroker: { url: string; caFile: string; certFile: string; keyFile: string } | null;
}

export const CONSOLE_DEFAULTS = Object.freeze({ host: '127.0.0.1', port: 9443, sessionIdleS: 1_800, pollMs: 1_000 });

const file = () => string({ hint: 'a file path' });
const CONSOLE_SCHEMA = object({
  host: optional(string(), CONSOLE_DEFAULTS.host),
  port: optional(integer(0, 65_535), CONSOLE_DEFAULTS.port),
  tlsCertFile: file(),
  tlsKeyFile: file(),
  registryFile: registrySourceField(),
  operatorsFile: file(),
  headends: optional(array(string({ pattern: /^https?:\/\/\S+$/, hint: 'an http(s) URL of a headend metrics listener' })), []),
  auditLogFile: optional(file()),
  operatorLogFile: file(),
  sessionIdleS: optional(integer(60, 86_400), CONSOLE_DEFAULTS.sessionIdleS),
  pollMs: optional(integer(200, 60_000), CONSOLE_DEFAULTS.pollMs),
  rolloutDir: optional(string({ hint: 'a directory of rollout state files' })),
  clientCaFile: optional(file()),
  drillApi: optional(string({ pattern: /^https?:\/\/\S+$/, hint: 'the http(s) URL of `connector drill serve`' })),
  rolloutApi: optional(string({ pattern: /^https?:\/\/\S+$/, hint: 'the http(s) URL of `connector ota controller`' })),
  otaBroker: optional(
    object({
      url: string({ pattern: /^mqtts:\/\/\S+$/, hint: 'the mqtts:// URL of the OTA broker' }),
      caFile: file(),
      certFile: file(),
      keyFile: file(),
    }),
  ),
});

export function parseConsoleConfigText(text: string, file: string, baseDir: string): ConsoleConfig {
  const doc = parseJsonText(text, (problem, cause) => {
    throw new ConfigError(file, problem, { cause });
  });
  const fail = (i: SchemaIssue): never => {
    throw new ConfigError(`${file}: ${formatPath(i.path)}`, i.problem);
  };
  const c = parseWith(CONSOLE_SCHEMA, doc, fail);
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  return Object.freeze({
    host: c.host,
    port: c.port,
    tlsCertFile: path(c.tlsCertFile),
    tlsKeyFile: path(c.tlsKeyFile),
    registry: resolveRegistrySource(c.registryFile, baseDir),
    operatorsFile: path(c.operatorsFile),
    headends: Object.freeze([...c.headends]),
    auditLogFile: c.auditLogFile === undefined ? null : path(c.auditLogFile),
    operatorLogFile: path(c.operatorLogFile),
    sessionIdleS: c.sessionIdleS,
    pollMs: c.pollMs,
    drillApi: c.drillApi ?? null,
    rolloutApi: c.rolloutApi ?? null,
    otaBroker:
      c.otaBroker === undefined
        ? null
        : {
            url: c.otaBroker.url,
            caFile: path(c.otaBroker.caFile),
            certFile: path(c.otaBroker.certFile),
            keyFile: path(c.otaBroker.keyFile),
          },
    rolloutDir: c.rolloutDir === undefined ? null : path(c.rolloutDir),
    clientCaFile: c.clientCaFile === undefined ? null : path(c.clientCaFile),
  });
}

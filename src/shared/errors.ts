// SPDX-License-Identifier: UNLICENSED
// One base class with a stable code per condition. Tests and callers match on `code`, never on text.
// docs/errors.md lists every code: what it means, what to do, and the exit code (src/shared/cli/dispatch.ts).
// A code is added with its first throw site and its docs line; a bug (a call the code should never make)
// throws a TypeError or RangeError instead and exits 70.

export type ErrorCode =
  | 'CK_ERR_USAGE'
  | 'CK_ERR_CONFIG_INVALID'
  | 'CK_ERR_IO'
  | 'CK_ERR_EXEC'
  | 'CK_ERR_TAP'
  | 'CK_ERR_RUNTIME'
  | 'CK_ERR_REGISTRY'
  | 'CK_ERR_REGISTRY_DB'
  | 'CK_ERR_DC_PKI'
  | 'CK_ERR_DRILL'
  | 'CK_ERR_LAB'
  | 'CK_ERR_EST'
  | 'CK_ERR_FACTORY'
  | 'CK_ERR_FACTORY_BLOCK'
  | 'CK_ERR_OTA_BAD_SIGNATURE'
  | 'CK_ERR_OTA_MANIFEST'
  | 'CK_ERR_OTA_DOWNLOAD'
  | 'CK_ERR_OTA_STATE'
  | 'CK_ERR_USIGN_FORMAT'
  | 'CK_ERR_IMAGE'
  | 'CK_ERR_IMAGE_INPUT_MISSING';

export class ConnectorError extends Error {
  override name = 'ConnectorError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A command line the user typed wrong; the CLI prints the message and exits 2. */
export class UsageError extends ConnectorError {
  override name = 'UsageError';
  constructor(message: string) {
    super('CK_ERR_USAGE', message);
  }
}

export interface ConfigErrorOptions extends ErrorOptions {
  /** How an operator finds the key in the file, e.g. `config agent 'main', option tap_nam`; default `config "<key>"`. */
  where?: string;
}

/** A configuration value that is wrong: `key` is the stable name programs and tests match on. */
export class ConfigError extends ConnectorError {
  override name = 'ConfigError';
  constructor(
    readonly key: string,
    readonly problem: string,
    options: ConfigErrorOptions = {},
  ) {
    const { where, ...errorOptions } = options;
    super('CK_ERR_CONFIG_INVALID', `${where ?? `config "${key}"`}: ${problem}`, errorOptions);
  }
}

export const hasCode = (e: unknown, code: ErrorCode): e is ConnectorError => e instanceof ConnectorError && e.code === code;

export const isErrno = (e: unknown, code: string): e is NodeJS.ErrnoException =>
  e instanceof Error && (e as NodeJS.ErrnoException).code === code;

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

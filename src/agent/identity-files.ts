// SPDX-License-Identifier: UNLICENSED
// Identity from files already in the identity directory (an installer-provided or lab-provided identity).
// First-boot enrollment replaces this source when a factory block is configured.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { ConnectorError } from '../shared/errors.js';
import type { Identity, IdentitySource } from './agent.js';

export const IDENTITY_FILES = { key: 'op.key.pem', cert: 'op.cert.pem', ca: 'dc-ca.pem' } as const;

export function fileIdentitySource(dir: string): IdentitySource {
  let last: { serial?: string; notAfter?: string; error?: string } = {};
  const current = async (): Promise<Identity> => {
    try {
      const [key, cert, ca] = await Promise.all([
        readFile(join(dir, IDENTITY_FILES.key), 'utf8'),
        readFile(join(dir, IDENTITY_FILES.cert), 'utf8'),
        readFile(join(dir, IDENTITY_FILES.ca), 'utf8'),
      ]);
      const x = new X509Certificate(cert);
      last = { serial: /CN=([^\n,]+)/.exec(x.subject)?.[1] ?? '', notAfter: x.validTo };
      return { key, cert, ca };
    } catch (e) {
      last = { error: (e as Error).message };
      throw new ConnectorError(
        'CK_ERR_CONFIG_INVALID',
        `no usable identity in ${dir} (${IDENTITY_FILES.key}, ${IDENTITY_FILES.cert}, ${IDENTITY_FILES.ca}): ${(e as Error).message}`,
        { cause: e },
      );
    }
  };
  return {
    ready: async () => {
      await current();
    },
    current,
    status: () => ({ source: 'files', ...last }),
    close: async () => {},
  };
}

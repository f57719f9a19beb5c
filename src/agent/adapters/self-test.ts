// SPDX-License-Identifier: UNLICENSED
// `connector-agent --self-test`: proves on the device (or under qemu) that this binary's runtime works:
// the TAP addon loads, the crypto the tunnel and enrollment use is there, and which runtime it is.
import { generateKeyPairSync, getCiphers, sign, verify } from 'node:crypto';
import { DEFAULT_MAX_VERSION } from 'node:tls';
import { ConnectorError } from '../../shared/errors.js';
import { findTapAddon, loadTapAddon } from '../../shared/native/addon.js';

export interface SelfTestCheck {
  name: string;
  ok: boolean;
  detail: string;
}

function check(name: string, fn: () => string): SelfTestCheck {
  try {
    return { name, ok: true, detail: fn() };
  } catch (e) {
    return { name, ok: false, detail: e instanceof Error ? e.message : String(e) };
  }
}

export interface SelfTestResult {
  ok: boolean;
  checks: SelfTestCheck[];
}

export function runSelfTest(): SelfTestResult {
  const checks = [
    check('runtime', () => {
      const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
      return `node ${process.version} ${process.platform}-${process.arch} glibc ${header?.glibcVersionRuntime ?? 'none'} openssl ${process.versions.openssl}`;
    }),
    check('tap-addon', () => {
      const path = findTapAddon();
      loadTapAddon();
      return `loaded ${path}`;
    }),
    check('ecdsa-p256', () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const msg = Buffer.from('connector self-test');
      if (!verify('sha256', msg, publicKey, sign('sha256', msg, privateKey))) throw new ConnectorError('CK_ERR_RUNTIME', 'verify failed');
      return 'sign/verify ok';
    }),
    check('ed25519', () => {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const msg = Buffer.from('release manifest');
      if (!verify(null, msg, publicKey, sign(null, msg, privateKey))) throw new ConnectorError('CK_ERR_RUNTIME', 'verify failed');
      return 'sign/verify ok';
    }),
    check('tls13', () => {
      if (DEFAULT_MAX_VERSION !== 'TLSv1.3') throw new ConnectorError('CK_ERR_RUNTIME', `max TLS version is ${DEFAULT_MAX_VERSION}`);
      if (!getCiphers().includes('aes-256-gcm')) throw new ConnectorError('CK_ERR_RUNTIME', 'aes-256-gcm missing');
      return 'TLSv1.3, aes-256-gcm';
    }),
  ];
  return { ok: checks.every((c) => c.ok), checks };
}

// SPDX-License-Identifier: UNLICENSED
// The operational identity on disk under identity_dir (/etc/connector, kept by sysupgrade):
//   op.key.pem   EC P-256 PKCS#8, mode 0600, generated on the device
//   op.cert.pem  operational certificate followed by the device CA chain from /cacerts
//   dc-ca.pem    the DC trust anchor from the factory block (verifies the EST server and the headend)
//   factory-block.bin  copy of the factory block, to rewrite the raw block if a full-disk write erased it
// Replacement is atomic per file: write <name>.new, fsync, rename over, fsync the directory.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import { certFingerprint, subjectSerial } from '../../../shared/pki/x509.js';
import type { Identity, LoadResult } from '../../core/identity/lifecycle.js';

export type { Identity, LoadResult };

export const OP_KEY_FILE = 'op.key.pem';
export const OP_CERT_FILE = 'op.cert.pem';
export const DC_CA_FILE = 'dc-ca.pem';
export const FACTORY_COPY_FILE = 'factory-block.bin';

export function identityPaths(dir: string): { key: string; cert: string; ca: string; factoryCopy: string } {
  return {
    key: join(dir, OP_KEY_FILE),
    cert: join(dir, OP_CERT_FILE),
    ca: join(dir, DC_CA_FILE),
    factoryCopy: join(dir, FACTORY_COPY_FILE),
  };
}

export function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.new`;
  const fd = openSync(tmp, 'w', mode);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let done = 0;
    while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Loads and checks the stored identity: files present, key matches cert, valid at `nowMs`. */
export function loadIdentity(dir: string, nowMs: number): LoadResult {
  const p = identityPaths(dir);
  if (!existsSync(p.key) || !existsSync(p.cert)) return { ok: false, reason: 'no operational identity stored' };
  let keyPem: string, certPem: string, caPem: string, leaf: X509Certificate;
  try {
    keyPem = readFileSync(p.key, 'utf8');
    certPem = readFileSync(p.cert, 'utf8');
    caPem = existsSync(p.ca) ? readFileSync(p.ca, 'utf8') : '';
    leaf = new X509Certificate(certPem);
    const certSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
    const keySpki = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
    if (!certSpki.equals(keySpki)) return { ok: false, reason: 'stored key does not match the stored certificate' };
  } catch (e) {
    return { ok: false, reason: `stored identity unreadable: ${(e as Error).message}` };
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (nowMs >= notAfter.getTime()) return { ok: false, reason: `operational certificate expired at ${notAfter.toISOString()}` };
  const serial = subjectSerial(leaf.subject);
  if (!serial) return { ok: false, reason: 'operational certificate has no serial' };
  return {
    ok: true,
    identity: {
      serial,
      keyFile: p.key,
      certFile: p.cert,
      caFile: p.ca,
      keyPem,
      certPem,
      caPem,
      fingerprint: certFingerprint(leaf),
      notBefore,
      notAfter,
    },
  };
}

/** Stores a new key and certificate chain, each file replaced atomically, key first. */
export function saveIdentity(dir: string, keyPem: string, certChainPem: string, caPem: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = identityPaths(dir);
  writeFileAtomic(p.key, keyPem, 0o600);
  writeFileAtomic(p.cert, certChainPem, 0o644);
  if (!existsSync(p.ca) || readFileSync(p.ca, 'utf8') !== caPem) writeFileAtomic(p.ca, caPem, 0o644);
  fsyncDir(dir);
}

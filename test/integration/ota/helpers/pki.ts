// SPDX-License-Identifier: UNLICENSED
// Test PKI made with the openssl CLI (EC P-256): a CA, a server cert for 127.0.0.1, one client cert per
// CN (device serials and the controller). Fresh per test file, in a temp dir removed in t.after.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Identity {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: string;
  readonly server: Identity;
  identity(cn: string): Identity;
}

function ossl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createTestPki(t: { after(fn: () => void): void }, clients: readonly string[]): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ck-ota-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=connector-kit OTA test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const issue = (name: string, cn: string, ext: string): Identity => {
    ossl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ossl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
    chmodSync(join(dir, `${name}.key`), 0o644); // mosquitto may run as its own user
    return {
      certFile: join(dir, `${name}.pem`),
      keyFile: join(dir, `${name}.key`),
      cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
      key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    };
  };
  const server = issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  const ids = new Map<string, Identity>();
  for (const cn of clients) ids.set(cn, issue(`client-${cn}`, cn, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n'));
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    server,
    identity(cn) {
      const id = ids.get(cn);
      if (!id) throw new Error(`no test identity for ${cn}`);
      return id;
    },
  };
}

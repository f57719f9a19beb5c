// SPDX-License-Identifier: UNLICENSED
// The headend's front door, tested with a TLS peer we did not write (openssl s_client) from the customer's
// router namespace, i.e. through the CGNAT like a real Connector: only TLS 1.3 with a current device
// certificate from the device CA and a serial that is claimed and not denylisted gets a session.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { LAB_SERIALS } from '../../src/lab/core/configs.js';
import { DC } from '../../src/lab/core/topology.js';
import { labSkipReason, openLab, type LabHandle } from './lab-fixture.js';

const skip = labSkipReason({ headend: true });

interface Attempt {
  /** The server closed the connection within the window (refused); false: still connected. */
  closedByServer: boolean;
  output: string;
}

/** Connects with s_client and keeps stdin open: a refused peer is disconnected, an admitted one is not. */
function attempt(lab: LabHandle, extra: string[], windowMs = 2_500): Promise<Attempt> {
  const args = [
    'netns',
    'exec',
    lab.ns('router'),
    'openssl',
    's_client',
    '-connect',
    `${DC.publicAddr}:${DC.tlsPort}`,
    '-alpn',
    'connector-l2/1',
    '-CAfile',
    lab.state().files['dcCa'] ?? '',
    '-verify_return_error',
    '-no_ign_eof',
    ...extra,
  ];
  return new Promise((resolve) => {
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, windowMs);
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      resolve({ closedByServer: signal !== 'SIGKILL', output });
    });
  });
}

async function refusals(lab: LabHandle): Promise<Map<string, number>> {
  const r = await lab.run('dc', 'curl', ['-s', `http://${lab.state().files['headendMetrics'] ?? ''}/metrics`]);
  const m = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const x = /^connector_headend_refusals_total\{reason="([^"]+)"\} (\d+)/.exec(line);
    if (x?.[1] && x[2]) m.set(x[1], Number(x[2]));
  }
  return m;
}

const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

describe('headend TLS admission (openssl s_client through the CGNAT)', { skip }, () => {
  let lab: LabHandle;
  before(async () => {
    lab = await openLab(undefined, { headend: true, agents: false });
  });
  after(() => lab?.down());

  const cert = (serial: string): string[] => [
    '-cert',
    lab.state().files[`cert:${serial}`] ?? '',
    '-key',
    lab.state().files[`key:${serial}`] ?? '',
  ];

  test('a claimed device with a current certificate gets TLS 1.3, ALPN connector-l2/1, and stays connected', async () => {
    const a = await attempt(lab, ['-tls1_3', ...cert(LAB_SERIALS.spare)]);
    assert.equal(a.closedByServer, false, a.output);
    assert.match(a.output, /TLSv1\.3/);
    assert.match(a.output, /ALPN protocol: connector-l2\/1/);
    assert.match(a.output, /Verify return code: 0 \(ok\)/, 'the headend certificate chains to the DC CA the agents pin');
  });

  const refused: [string, () => string[]][] = [
    ['TLS 1.2', () => ['-tls1_2', ...cert(LAB_SERIALS.spare)]],
    ['no client certificate', () => ['-tls1_3']],
    ['a certificate from another CA', () => ['-tls1_3', ...cert(LAB_SERIALS.rogue)]],
    ['an expired certificate', () => ['-tls1_3', ...cert(LAB_SERIALS.expired)]],
    ['a denylisted serial', () => ['-tls1_3', ...cert(LAB_SERIALS.denied)]],
  ];
  for (const [what, args] of refused) {
    test(`refused: ${what}`, async () => {
      const before = await refusals(lab);
      const a = await attempt(lab, args());
      assert.equal(a.closedByServer, true, `the headend kept the connection open:\n${a.output}`);
      const after = await refusals(lab);
      assert.equal(total(after), total(before) + 1, `one more refusal counted: ${JSON.stringify([...after])}`);
      if (what === 'a denylisted serial') assert.equal((after.get('denylisted') ?? 0) - (before.get('denylisted') ?? 0), 1);
    });
  }

  test('TLS 1.2 fails in the handshake with a protocol-version alert: no cipher, no session', async () => {
    const a = await attempt(lab, ['-tls1_2', ...cert(LAB_SERIALS.spare)]);
    assert.match(a.output, /alert protocol version/);
    assert.match(a.output, /Cipher is \(NONE\)/);
  });
});

// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isImageFailure } from '../../../../src/image/core/errors.js';
import { checkOverlay, overlayDigest, type OverlayEntry } from '../../../../src/image/core/overlay.js';

const f = (path: string, sha = 'a'.repeat(64), mode = '0644'): OverlayEntry => ({ path, type: 'file', mode, size: 1, sha256: sha });
const d = (path: string): OverlayEntry => ({ path, type: 'dir', mode: '0755', size: 0 });

test('an ordinary overlay passes', () => {
  checkOverlay([d('etc'), d('etc/config'), f('etc/config/connector'), d('etc/init.d'), f('etc/init.d/connector', undefined, '0755')]);
});

for (const [entries, what] of [
  [[d('var'), f('var/run/x')], /\/var/],
  [[d('etc'), d('etc/config'), f('etc/config/network')], /\/etc\/config\/network.*uci/],
  [[d('etc'), d('etc/config'), f('etc/config/firewall')], /\/etc\/config\/firewall/],
] as const) {
  test(`an overlay with ${String(what)} is refused`, () => {
    assert.throws(
      () => checkOverlay(entries),
      (e: unknown) => isImageFailure(e, 'overlay-invalid') && what.test((e as Error).message),
    );
  });
}

test('the digest changes with content, mode or path, and only then', () => {
  const base = [d('etc'), f('etc/a')];
  assert.equal(overlayDigest(base), overlayDigest([d('etc'), f('etc/a')]));
  assert.notEqual(overlayDigest(base), overlayDigest([d('etc'), f('etc/a', 'b'.repeat(64))]));
  assert.notEqual(overlayDigest(base), overlayDigest([d('etc'), f('etc/a', undefined, '0755')]));
  assert.notEqual(overlayDigest(base), overlayDigest([d('etc'), f('etc/b')]));
});

test('the build time lands in enroll.min_time of /etc/config/connector, and only there', async () => {
  const { readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const { stampMinTime } = await import('../../../../src/image/core/overlay.js');
  const text = readFileSync(fileURLToPath(new URL('../../../../firmware/rootfs-overlay/etc/config/connector', import.meta.url)), 'utf8');
  const out = stampMinTime(text, 1_764_000_000);
  assert.match(out, /config enroll 'enroll'\n(?:.*\n)*?\toption min_time '1764000000'\n/);
  assert.equal(out.split('\n').length, text.split('\n').length);
  assert.throws(
    () => stampMinTime("config agent 'agent'\n\toption min_time '0'\n", 1),
    (e: unknown) => isImageFailure(e, 'overlay-invalid'),
  );
});

test('--headend URLs become `list headend` lines the agent parses, in failover order', async () => {
  const { readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const { stampHeadends, stampMinTime } = await import('../../../../src/image/core/overlay.js');
  const { parseAgentConfig } = await import('../../../../src/agent/core/config.js');
  const text = readFileSync(fileURLToPath(new URL('../../../../firmware/rootfs-overlay/etc/config/connector', import.meta.url)), 'utf8');
  const out = stampHeadends(stampMinTime(text, 1_764_000_000), ['tls://dc1.example.net:443', 'tls://dc2.example.net']);
  const cfg = parseAgentConfig(out);
  assert.deepEqual(
    cfg.headends.map((u) => u.host),
    ['dc1.example.net:443', 'dc2.example.net:443'],
  );
  assert.equal(cfg.enroll.minTimeS, 1_764_000_000);
  assert.throws(
    () => stampHeadends(text, ['https://dc1.example.net']),
    (e: unknown) => isImageFailure(e, 'overlay-invalid'),
  );
});

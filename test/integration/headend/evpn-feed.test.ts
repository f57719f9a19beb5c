// SPDX-License-Identifier: UNLICENSED
// The EVPN feed's commands to `bridge -batch`: a learned MAC is published at once on its segment's port,
// a reconcile refreshes the live ones and deletes the ones gone (also of a segment that left), and a
// start flushes what a killed predecessor left. A stand-in `bridge` records its stdin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { openEvpnFeed } from '../../../src/headend/adapters/evpn-feed.js';
import { silentLogger } from '../../../src/shared/log.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

test('evpn feed: publish on learn, refresh and withdraw on reconcile, flush at start', async (t) => {
  const d = tempDir(t, 'ck-evpn-');
  const log = d.path('stdin.txt');
  const bin = d.path('bridge');
  writeFileSync(bin, `#!/bin/sh\n[ "$*" = "-force -batch -" ] || exit 2\nexec cat >> '${log}'\n`);
  chmodSync(bin, 0o755);
  const feed = openEvpnFeed({ portTemplate: 'ev{vni}', log: silentLogger, bridgeBin: bin });
  t.after(() => feed.close());
  feed.flush([100, 200]);
  feed.learned(100, 0x02_00_00_00_00_01);
  feed.learned(200, 0x02_00_00_00_00_02);
  feed.reconcile([{ vni: 100, macs: [0x02_00_00_00_00_03] }]);
  const want = [
    'fdb flush dev ev100 master dynamic',
    'fdb flush dev ev200 master dynamic',
    'fdb replace 02:00:00:00:00:01 dev ev100 master dynamic',
    'fdb replace 02:00:00:00:00:02 dev ev200 master dynamic',
    'fdb del 02:00:00:00:00:01 dev ev100 master',
    'fdb replace 02:00:00:00:00:03 dev ev100 master dynamic',
    'fdb del 02:00:00:00:00:02 dev ev200 master',
  ];
  const got = await waitFor('the commands', 5_000, () => {
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    return lines.length >= want.length ? lines : undefined;
  });
  assert.deepEqual(got, want);
});

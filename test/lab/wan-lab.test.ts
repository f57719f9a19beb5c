// SPDX-License-Identifier: UNLICENSED
// `lab up --wan`: the isp-dc link gets the profile's round trip from the delay line, and
// `--nat-udp-timeout` sets the conntrack UDP timeouts of every NAT in the lab (a datagram tunnel's
// keepalive must beat them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DC } from '../../src/lab/core/topology.js';
import { parseWanSpec } from '../../src/lab/core/wan.js';
import { skipUnlessCi } from '../helpers/skip.js';
import { labSkipReason, openLab } from './lab-fixture.js';

const skip = skipUnlessCi(labSkipReason()) || undefined;

test(
  'lab --wan 12ms,1ms,1g,0 --nat-udp-timeout 30: the DC is 12 ms away and the NATs forget UDP after 30 s',
  { skip, timeout: 120_000 },
  async (t) => {
    const lab = await openLab(t, { wan: parseWanSpec('12ms,1ms,1g,0'), natUdpTimeoutS: 30 });
    const r = await lab.ping('router', DC.publicAddr, { count: 20, intervalS: 0.05, timeoutS: 1 });
    const min = Math.min(...r.rttMs);
    t.diagnostic(
      `router -> dc over the WAN: ${r.received}/${r.sent}, RTT min ${min.toFixed(2)} ms, max ${Math.max(...r.rttMs).toFixed(2)} ms`,
    );
    assert.equal(r.received, 20, `every ping answered: ${r.errors.join('; ')}`);
    assert.ok(min >= 11 && min < 18, `RTT is the profile's 12 ms ±1 ms (min ${min})`);
    for (const node of ['isp', 'router', 'router-b']) {
      for (const key of ['nf_conntrack_udp_timeout', 'nf_conntrack_udp_timeout_stream']) {
        const v = await lab.run(node, 'sysctl', ['-n', `net.netfilter.${key}`]);
        assert.equal(v.stdout.trim(), '30', `${node} ${key}`);
      }
    }
  },
);

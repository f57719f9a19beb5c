// SPDX-License-Identifier: UNLICENSED
// Full-site failover in namespaces (issue 15, item 2), with the real agent, headend and kernel VTEPs
// (site-dc.ts). The site (its Connector and its router) is lost; `connector failover start` fences the
// site's unit off the segment and raises the DC gateway with the router's address and NAT to an internet
// stand-in; the recovered VM reaches the stand-in (time logged: the ≤ 10 s target is measured here and
// in bench, never asserted as a timing). The site comes back while failed over: its unit is refused
// (`failover-active`) and 0 frames of the DC gateway reach the LAN. `failover end` withdraws the gateway,
// then the unit is admitted again and the VM reaches the site's router through the tunnel; the LAN link
// capture over the whole handover holds 0 frames of the DC gateway (no split brain).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, type ExecResult } from '../../../src/shared/exec.js';
import { ipIn, nsExec } from '../../../src/lab/adapters/netns.js';
import { isRoot } from '../../helpers/netns.js';
import { REPO } from '../../integration/headend/adapters/fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { skipUnlessCi } from '../../helpers/skip.js';
import { siteDc } from './site-dc.js';
import { gatewayName } from '../../../src/dr/adapters/gateway.js';

const ROUTER_MAC = '02:00:00:00:01:01';
const GW_MAC = '02:00:00:00:01:fe';

function cli(args: string[], allowFailure = false): Promise<ExecResult> {
  return exec(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/connector.ts'), ...args], { cwd: REPO, allowFailure });
}

const pingOnce = (ns: string, ip: string): Promise<ExecResult> => nsExec(ns, 'ping', ['-c', '1', '-W', '1', ip], { allowFailure: true });

test(
  'full-site failover: DC gateway with NAT for the recovered VM; fenced return; handover with 0 split-brain frames on the LAN',
  { skip: skipUnlessCi(!isRoot() && 'needs root for network namespaces') },
  async (t) => {
    // A tenant name of this run: the gateway namespace is named after tenant and segment.
    const tenant = `t${process.pid}`;
    t.after(() => void exec('ip', ['netns', 'del', gatewayName(tenant, 'lan')], { allowFailure: true }));
    const lab = await siteDc(t, {
      registry: (vtep) => ({
        version: 1,
        tenants: { [tenant]: { segments: { lan: { vni: 100, vteps: [vtep] } } } },
        devices: { 'CN-0001': { state: 'claimed', tenant, segment: 'lan', updatedAt: '' } },
      }),
      hosts: { router: { mac: ROUTER_MAC, ipCidr: '192.168.1.1/24' }, lanhost: { mac: '02:00:00:00:01:14', ipCidr: '192.168.1.20/24' } },
      vms: { vm: { vni: 100, mac: '02:00:00:00:01:32', ipCidr: '192.168.1.50/24' } },
    });
    const router = lab.hosts['router'];
    const lanhost = lab.hosts['lanhost'];
    const vm = lab.vms['vm'];
    assert.ok(router && lanhost && vm);
    await ipIn(vm.ns, 'route', 'add', 'default', 'via', '192.168.1.1');
    const inet = await lab.scope.ns('inet');
    await ipIn(inet, 'link', 'set', 'lo', 'up');
    // Normal operation: the recovered VM reaches the site's router through the tunnel.
    await waitFor('VM -> site router through the tunnel', 10_000, async () =>
      (await pingOnce(vm.ns, '192.168.1.1')).code === 0 ? true : undefined,
    );
    const lanCap = await lab.capture(lanhost.ns, lanhost.ifname, 'lan-handover');

    // The site is lost: its Connector and its router.
    await lab.stopAgent();
    await ipIn(router.ns, 'link', 'set', router.ifname, 'down');
    await lab.headend.waitForLine((l) => l['msg'] === 'session closed', 15_000);
    const reg = ['--registry', lab.registryFile];
    const common = [...reg, '--tenant', tenant];
    const placement = [
      ...common,
      '--gateway',
      `192.168.1.1/24,${GW_MAC}`,
      '--audit-log',
      lab.d.path('audit.jsonl'),
      '--dc-netns',
      lab.hvNs,
      '--dc-bridge',
      'br100',
      '--uplink-netns',
      inet,
      '--uplink',
      '203.0.113.2/24,203.0.113.1',
    ];
    // Too early for the default threshold: refused with the reason.
    const early = await cli(['failover', 'start', ...placement], true);
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, /down for \d+ s only/);

    // The policy: `failover watch` waits until the site has been down for the threshold, then fails over by
    // itself (here 2 s, polled every 200 ms; in production minutes).
    const t0 = Date.now();
    const start = cli(['failover', 'watch', '--poll-s', '0.2', ...placement, '--down-after-s', '2']);
    await waitFor(
      'the recovered VM reaches the internet stand-in',
      30_000,
      async () => ((await pingOnce(vm.ns, '203.0.113.1')).code === 0 ? true : undefined),
      100,
    );
    const reachedMs = Date.now() - t0;
    const started = JSON.parse((await start).stdout) as {
      id: string;
      mac: string;
      netns: string;
      timeline: { t: string; event: string }[];
    };
    const lost = Date.parse(started.timeline.find((e) => e.event === 'site-lost')?.t ?? '');
    const command = Date.parse(started.timeline.find((e) => e.event === 'failover-command')?.t ?? '');
    assert.ok(command - lost >= 2_000, `the watch waited for the threshold (${command - lost} ms after the site was lost)`);
    t.diagnostic(
      `failover by policy: site lost -> watch acted after ${command - lost} ms (threshold 2 s, poll 0.2 s); watch start -> VM reaches the internet stand-in in ${reachedMs} ms; timeline ${JSON.stringify(started.timeline)}`,
    );
    assert.equal(started.mac, GW_MAC);
    // NAT: the stand-in sees the gateway's uplink address, not the VM's.
    const conn = await nsExec(inet, 'ip', ['neigh', 'show']);
    assert.match(conn.stdout, /203\.0\.113\.2/);

    // The site returns while failed over: the unit is fenced off (refused), the router comes back.
    await ipIn(router.ns, 'link', 'set', router.ifname, 'up');
    lab.startAgent();
    await waitFor('the returning unit is refused', 20_000, () => {
      const audit = readFileSync(lab.d.path('audit.jsonl'), 'utf8');
      return audit.includes('"reason":"failover-active"') ? true : undefined;
    });
    assert.equal((await pingOnce(lanhost.ns, '203.0.113.1')).code === 0, false, 'the LAN does not reach the DC gateway');

    // Handover: the gateway withdraws first, then the unit is admitted again.
    const ended = JSON.parse((await cli(['failover', 'end', ...common])).stdout) as {
      gatewayWithdrawn: boolean;
      timeline: { event: string }[];
    };
    assert.equal(ended.gatewayWithdrawn, true);
    assert.deepEqual(
      ended.timeline.map((e) => e.event),
      ['failback-command', 'gateway-withdrawn', 'site-unfenced'],
    );
    const sessionsBefore = lab.headend.lines.filter((l) => l['msg'] === 'session up').length;
    await waitFor('the unit is admitted again', 20_000, () =>
      lab.headend.lines.filter((l) => l['msg'] === 'session up').length > sessionsBefore ? true : undefined,
    );
    // The VM re-resolves its gateway (the DC gateway's MAC is gone) and reaches the site's router again.
    await ipIn(vm.ns, 'neigh', 'flush', 'dev', vm.ifname);
    await waitFor('VM -> site router after failback', 10_000, async () =>
      (await pingOnce(vm.ns, '192.168.1.1')).code === 0 ? true : undefined,
    );

    const pcap = await lanCap.stop();
    const fromGw = await exec('tshark', [
      '-r',
      pcap,
      '-Y',
      `eth.src == ${GW_MAC} || (arp.src.proto_ipv4 == 192.168.1.1 && !(eth.src == ${ROUTER_MAC}))`,
      '-T',
      'fields',
      '-e',
      'frame.number',
    ]);
    const all = await exec('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.number']);
    const n = fromGw.stdout.split('\n').filter(Boolean).length;
    t.diagnostic(`LAN link over failover and handover: ${all.stdout.split('\n').filter(Boolean).length} frames, ${n} from the DC gateway`);
    assert.equal(n, 0, '0 split-brain frames reached the LAN');

    // The report: JSON + HTML, its figures from the audit log, verified against the chain; an edited
    // audit line makes the check fail.
    const audit = lab.d.path('audit.jsonl');
    const rep = JSON.parse(
      (await cli(['drill', 'report', ...reg, '--id', started.id, '--audit-log', audit, '--out', lab.d.path('reports')])).stdout,
    ) as {
      json: string;
      html: string;
      figures: Record<string, number | null>;
    };
    t.diagnostic(`failover report figures: ${JSON.stringify(rep.figures)}`);
    assert.ok((rep.figures['rtoMs'] ?? 0) > 0);
    assert.ok((rep.figures['refusedWhileFailedOver'] ?? 0) >= 1);
    assert.match(readFileSync(rep.html, 'utf8'), /Connector DR failover report/);
    const ok = await cli(['drill', 'verify-report', '--report', rep.json, '--audit-log', audit], true);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const lines = readFileSync(audit, 'utf8').split('\n');
    const tampered = lab.d.path('audit-tampered.jsonl');
    writeFileSync(tampered, lines.map((l) => l.replace('"reason":"failover-active"', '"reason":"other"')).join('\n'));
    const bad = await cli(['drill', 'verify-report', '--report', rep.json, '--audit-log', tampered], true);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /NOT OK/);
  },
);

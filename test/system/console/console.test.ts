// SPDX-License-Identifier: UNLICENSED
// The operator console in a real browser (headless Chromium) against a real headend and real tunnel
// clients on loopback: log in, see the fleet live, claim a waiting unit and watch its tunnel come up,
// export the audit log, and an MSP operator who cannot see or change another tenant's units, in the
// page or through the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createTunnelClient, type TunnelClient } from '../../../src/agent/adapters/tunnel-client.js';
import { addOperator, startConsole, type RunningConsole } from '../../../src/console/main.js';
import { parseConsoleConfigText } from '../../../src/console/core/config.js';
import { parseHeadendConfig } from '../../../src/headend/core/config.js';
import { startHeadend } from '../../../src/headend/main.js';
import { serveDrillApi } from '../../../src/dr/adapters/http-api.js';
import { drillFiles, updateBoth } from '../../../src/dr/adapters/store.js';
import { drillOps } from '../../../src/dr/main.js';
import { connectController, sharedRolloutChannels } from '../../../src/ota/adapters/rollout-mqtt.js';
import { startRolloutService } from '../../../src/ota/adapters/rollout-service.js';
import { healthTopic, jobStateReportTopic, statusTopic } from '../../../src/shared/ota/protocol.js';
import { healthDoc } from '../../../src/agent/core/ota/health.js';
import { serveRolloutApi } from '../../../src/ota/adapters/rollout-http-api.js';
import { generateUsignKeyPair } from '../../../src/shared/usign/index.js';
import { CONTROLLER_CN, startMosquitto } from '../../integration/ota/helpers/mosquitto.js';
import { agentArtifact, buildRelease } from '../../integration/ota/helpers/release.js';
import { mkdirSync } from 'node:fs';
import { silentLogger } from '../../../src/shared/log.js';
import { headendConfigDoc, registryDoc, writeJson } from '../../integration/headend/adapters/fixtures.js';
import { CHROMIUM, launchBrowser, type Page } from '../../helpers/browser.js';
import { createTestPki, type TestPki } from '../../helpers/pki.js';
import { skipUnlessCi } from '../../helpers/skip.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/wait.js';

const PASSWORD = 'correct horse battery';

async function unit(pki: TestPki, serial: string, port: number): Promise<TunnelClient> {
  const id = await pki.client(serial);
  const c = createTunnelClient({
    headends: [new URL(`tls://127.0.0.1:${port}`)],
    getIdentity: async () => ({ key: id.key, cert: id.cert, ca: pki.dcCa.pem }),
    hello: { agentVersion: '1.2.3-test', site: `site-${serial}`, capabilities: ['l2'] },
    keepaliveMs: 500,
    deadAfterMs: 3_000,
    backoff: { initialMs: 100, maxMs: 300, jitter: 0.2 },
    sendQueueFrames: 64,
    log: silentLogger,
  });
  c.start();
  return c;
}

async function login(page: Page, url: string, name: string): Promise<void> {
  await page.navigate(url);
  await page.evaluate(`(() => {
    document.querySelector('#login-name').value = ${JSON.stringify(name)};
    document.querySelector('#login-password').value = ${JSON.stringify(PASSWORD)};
    document.querySelector('#login-form').requestSubmit();
  })()`);
  await page.waitFor(
    `${name} logged in`,
    `!document.querySelector('#fleet-view').hidden && document.querySelectorAll('#fleet-table tbody tr').length > 0`,
  );
}

const rowsJs = `[...document.querySelectorAll('#fleet-table tbody tr')].map((tr) => ({ serial: tr.dataset.serial, cells: [...tr.cells].map((c) => c.textContent) }))`;

test(
  'console: fleet, claim and watch the tunnel come up, audit export, and tenant isolation, in Chromium',
  { skip: skipUnlessCi(CHROMIUM ? false : 'chromium is not installed') },
  async (t) => {
    const d = tempDir(t, 'ck-console-', true);
    const pki = await createTestPki(d.dir);
    writeJson(
      d.path('registry.json'),
      registryDoc(
        { acme: { vni: 100, vteps: ['127.0.0.2'] }, globex: { vni: 200, vteps: ['127.0.0.3'] } },
        { 'A-1': 'acme', 'G-1': 'globex', 'U-1': { state: 'allowed' }, 'U-2': { state: 'allowed' } },
      ),
    );
    const headend = await startHeadend(parseHeadendConfig(headendConfigDoc(d, pki, { vtepPort: 4789 }), d.dir), {
      log: silentLogger,
      registryPollMs: 100,
    });
    t.after(() => headend.close());
    const metrics = `http://127.0.0.1:${headend.metricsAddress?.port ?? 0}`;

    // The drill service beside the registry, as `connector drill serve` runs it.
    const drillApi = await serveDrillApi({
      host: '127.0.0.1',
      port: 0,
      ops: drillOps(drillFiles(d.path('registry.json')), Date.now, d.path('audit.jsonl')),
      log: silentLogger,
    });
    t.after(() => drillApi.close());
    // Two failovers in the drill book as `connector failover start|end` record them: acme's handed back,
    // globex's still active.
    const foAt = (s: number) => new Date(Date.now() - 60_000 + s * 1000).toISOString();
    await updateBoth(drillFiles(d.path('registry.json')), (b, r) => ({
      registry: r,
      book: {
        ...b,
        failovers: [
          {
            id: 'fo-acme0001',
            tenant: 'acme',
            segment: 'lan',
            gateway: '192.168.10.1/24',
            startedAt: foAt(0),
            endedAt: foAt(30),
            timeline: [
              { t: foAt(-5), event: 'site-down' },
              { t: foAt(0), event: 'failover-command' },
              { t: foAt(2), event: 'gateway-up', ok: true },
              { t: foAt(30), event: 'failback' },
            ],
          },
          { id: 'fo-globex01', tenant: 'globex', segment: 'lan', gateway: '10.20.0.1/24', startedAt: foAt(10), timeline: [] },
        ],
      },
    }));

    // The rollout controller as `connector ota controller` runs it, over a real mosquitto, with one signed
    // release; the test answers for unit A-1 on the broker as its agent would (progress, then success).
    const otaPki = await createTestPki(d.path('ota-pki'), { singleCa: true, clients: ['A-1', 'U-1', CONTROLLER_CN, 'connector-console'] });
    const broker = await startMosquitto(t, otaPki, undefined, undefined, { observers: ['connector-console'] });
    const releaseKey = generateUsignKeyPair();
    mkdirSync(d.path('releases'));
    const rel = buildRelease({
      dir: d.path('releases'),
      baseUrl: 'https://127.0.0.1:1',
      version: '1.1.0',
      key: releaseKey.secretKey,
      content: agentArtifact('1.1.0', true),
    });
    writeFileSync(d.path('releases/connector-1.1.0.json'), rel.manifestBytes);
    writeFileSync(d.path('releases/connector-1.1.0.json.sig'), rel.signature);
    const ctlId = otaPki.identity(CONTROLLER_CN);
    const ctlClient = await connectController({ url: broker.url, ca: otaPki.dcCa.pem, cert: ctlId.cert, key: ctlId.key }, CONTROLLER_CN);
    t.after(() => ctlClient.endAsync());
    mkdirSync(d.path('rollouts'));
    const rollouts = await startRolloutService({
      dir: d.path('rollouts'),
      releasesDir: d.path('releases'),
      keys: [releaseKey.publicKey],
      fleet: async () => ['A-1', 'G-1', 'U-2'],
      channel: sharedRolloutChannels(ctlClient),
      log: silentLogger,
      tickMs: 100,
    });
    const rolloutApi = await serveRolloutApi({ host: '127.0.0.1', port: 0, ops: rollouts.ops, log: silentLogger });
    t.after(async () => {
      await rolloutApi.close();
      await rollouts.close();
    });
    const a1Id = otaPki.identity('A-1');
    const a1 = await connectController({ url: broker.url, ca: otaPki.dcCa.pem, cert: a1Id.cert, key: a1Id.key }, 'A-1');
    t.after(() => a1.endAsync());
    const reportAsA1 = (jobId: string, state: string, extra: Record<string, unknown> = {}) =>
      a1.publishAsync(
        jobStateReportTopic('A-1'),
        JSON.stringify({ jobId, state, version: '1.0.0', at: new Date().toISOString(), ...extra }),
        { qos: 1 },
      );

    const ops = d.path('operators.json');
    await addOperator({ file: ops, name: 'alice', role: 'admin', tenants: [], password: PASSWORD });
    await addOperator({ file: ops, name: 'msp-acme', role: 'msp', tenants: ['acme'], password: PASSWORD });
    writeFileSync(
      d.path('console.json'),
      JSON.stringify({
        host: '127.0.0.1',
        port: 0,
        tlsCertFile: pki.server.certFile,
        tlsKeyFile: pki.server.keyFile,
        registryFile: 'registry.json',
        operatorsFile: 'operators.json',
        headends: [metrics],
        rolloutApi: `http://127.0.0.1:${rolloutApi.address.port}`,
        otaBroker: {
          url: broker.url,
          caFile: otaPki.dcCa.file,
          certFile: otaPki.identity('connector-console').certFile,
          keyFile: otaPki.identity('connector-console').keyFile,
        },
        drillApi: `http://127.0.0.1:${drillApi.address.port}`,
        auditLogFile: 'audit.jsonl',
        operatorLogFile: 'operator-log.jsonl',
        pollMs: 250,
      }),
    );
    const consoleCfg = parseConsoleConfigText(readFileSync(d.path('console.json'), 'utf8'), 'console.json', d.dir);
    const con: RunningConsole = await startConsole(consoleCfg, silentLogger);
    t.after(() => con.close());
    const url = `https://localhost:${con.address.port}/`;

    const units = [
      await unit(pki, 'A-1', headend.tunnelAddress.port),
      await unit(pki, 'G-1', headend.tunnelAddress.port),
      await unit(pki, 'U-1', headend.tunnelAddress.port),
    ];
    t.after(() => Promise.all(units.map((u) => u.close())));
    await waitFor('A-1 and G-1 up at the headend', 10_000, () => headend.sessions().length === 2);

    const browser = await launchBrowser({ insecureCerts: true });
    t.after(() => browser.close());
    const page = await browser.newPage();

    // The provider's admin sees every unit, live.
    const t0 = Date.now();
    await login(page, url, 'alice');
    t.diagnostic(`first page load and login to a filled fleet table: ${Date.now() - t0} ms`);
    await page.waitFor('A-1 and G-1 shown up', `(${rowsJs}).filter((r) => r.cells[5] === 'up').length === 2`);
    const rows = await page.evaluate<{ serial: string; cells: string[] }[]>(rowsJs);
    assert.deepEqual(
      rows.map((r) => [r.serial, r.cells[1], r.cells[5]]),
      [
        ['A-1', 'claimed', 'up'],
        ['G-1', 'claimed', 'up'],
        ['U-1', 'waiting for claim', 'down'],
        ['U-2', 'waiting for claim', 'down'],
      ],
    );
    assert.equal(rows[0]?.cells[6], '1.2.3-test', 'the agent version from the hello');
    // CK_CONSOLE_SCREENSHOTS=DIR keeps pictures of the main pages (docs/console.md uses them).
    const shots = process.env['CK_CONSOLE_SCREENSHOTS'];
    const shoot = async (p: Page, name: string): Promise<void> => {
      if (shots) writeFileSync(`${shots}/${name}.png`, await p.screenshot());
    };
    await shoot(page, 'console-fleet');

    // Claim the waiting unit in the page; its tunnel comes up by itself and the page shows it.
    await page.evaluate(`(() => {
    document.querySelector('#claim-serial').value = 'U-1';
    document.querySelector('#claim-tenant').value = 'acme';
    document.querySelector('#claim-form').requestSubmit();
  })()`);
    const claimedAt = Date.now();
    await page.waitFor('U-1 claimed', `document.querySelector('#claim-result').textContent.startsWith('claimed U-1')`);
    await page.waitFor(
      'U-1 up in the page',
      `(${rowsJs}).some((r) => r.serial === 'U-1' && r.cells[5] === 'up' && r.cells[2] === 'acme')`,
      15_000,
    );
    t.diagnostic(`claim to tunnel shown up in the page: ${Date.now() - claimedAt} ms`);
    const opLog = await page.evaluate<{ records: { operator: string; action: string; target: string }[]; chain: { ok: boolean } }>(
      `fetch('/api/operator-log').then((r) => r.json())`,
    );
    assert.ok(
      opLog.records.some((r) => r.operator === 'alice' && r.action === 'claim' && r.target === 'U-1'),
      'the claim is in the operator log with the name',
    );
    assert.equal(opLog.chain.ok, true);

    // U-1 reports its health on the OTA channel as its agent does (retained); it cannot speak for A-1.
    const u1Id = otaPki.identity('U-1');
    const u1 = await connectController({ url: broker.url, ca: otaPki.dcCa.pem, cert: u1Id.cert, key: u1Id.key }, 'U-1');
    t.after(() => u1.endAsync());
    const u1Health = healthDoc(
      {
        version: '1.2.3-test',
        pid: 1,
        uptimeS: 30,
        phase: 'running',
        tunnel: { state: 'up', headend: '127.0.0.1' },
        counters: { core: { lanFramesIn: 120, proxiedArp: 7 } },
        macTable: [
          { mac: '02:00:00:00:00:09', side: 'lan', ageS: 1, state: 'learned' },
          { mac: '02:00:00:00:00:0a', side: 'tunnel', ageS: 3, state: 'learned' },
        ],
        neighbours: [{ ip: '192.168.10.9', mac: '02:00:00:00:00:09', side: 'lan', ageS: 1, source: 'arp', holder: true }],
        alarms: {
          active: [{ code: 'split-brain', severity: 'critical', subject: '192.168.10.9', message: 'held on both sides', count: 2 }],
        },
      },
      new Date(),
    );
    await u1.publishAsync(healthTopic('U-1'), JSON.stringify(u1Health), { qos: 1, retain: true });
    await u1.publishAsync(statusTopic('U-1'), JSON.stringify({ online: true, version: '1.0.0', at: new Date().toISOString() }), {
      qos: 1,
      retain: true,
    });
    await u1.publishAsync(healthTopic('A-1'), JSON.stringify(u1Health), { qos: 0, retain: true });

    // One unit's page: its tunnel, its session, its history and a throughput chart that fills live.
    await page.evaluate(`document.querySelector('#fleet-table button[aria-label="Open unit U-1"]').click()`);
    await page.waitFor(
      'the unit page',
      `!document.querySelector('#unit-view').hidden && document.querySelector('#unit-serial').textContent === 'U-1'`,
    );
    await page.waitFor('U-1 up on its page', `document.querySelector('#unit-facts [data-tunnel]')?.dataset.tunnel === 'up'`);
    await page.waitFor('its connect in the history', `document.querySelector('#unit-history tbody tr[data-event=connect]') !== null`);
    await page.waitFor('its session', `document.querySelectorAll('#unit-sessions tbody tr').length === 1`);
    // Some traffic from the site, so the chart has something to draw.
    const frame = Buffer.concat([Buffer.from('ffffffffffff020000000009', 'hex'), Buffer.from([0x88, 0xb5]), Buffer.alloc(1000)]);
    const traffic = setInterval(() => units[2]?.sendFrames(Array.from({ length: 20 }, () => frame)), 50);
    t.after(() => clearInterval(traffic));
    await page.waitFor(
      'throughput from the site drawn',
      `/peak (?!0\\.00 )[\\d.]+ Mbit/.test(document.querySelector('#unit-chart-caption').textContent)`,
      10_000,
    );
    // The fleet shows it too: each unit's headend, RTT and jitter, and its throughput now.
    await page.waitFor('U-1 throughput in the fleet', `parseFloat((${rowsJs}).find((r) => r.serial === 'U-1').cells[10]) > 0`, 10_000);
    clearInterval(traffic);
    const u1Row = (await page.evaluate<{ serial: string; cells: string[] }[]>(rowsJs)).find((r) => r.serial === 'U-1');
    assert.match(u1Row?.cells[8] ?? '', /^127\.0\.0\.1:\d+$/, 'the headend');
    await page.waitFor('the chart fills', `document.querySelector('#unit-chart-in').getAttribute('points').split(' ').length >= 3`, 10_000);
    await page.waitFor(
      'its RTT measured by the headend',
      `Number(document.querySelector('#unit-facts [data-rtt]')?.dataset.rtt) > 0`,
      10_000,
    );
    await page.waitFor('RTT and jitter in the fleet', `/^\\d+\\.\\d \\/ /.test((${rowsJs}).find((r) => r.serial === 'U-1').cells[9])`);
    await page.waitFor('the RTT chart drawn', `document.querySelector('#unit-rtt-line').getAttribute('points').length > 0`);
    await page.waitFor('the 24 h timeline shows it up', `document.querySelectorAll('#unit-timeline rect').length >= 1`);
    // Its own report: alarms, MAC and neighbour tables, counters and OTA state, as the unit sent them.
    await page.waitFor('its health report', `document.querySelectorAll('#unit-macs tbody tr').length === 2`, 10_000);
    assert.deepEqual(
      await page.evaluate<string[]>(`[...document.querySelector('#unit-alarms tbody tr').cells].map((c) => c.textContent)`),
      ['split-brain', 'critical', '192.168.10.9', 'held on both sides', '2 ×'],
    );
    assert.equal(await page.evaluate<number>(`document.querySelectorAll('#unit-neighbours tbody tr').length`), 1);
    assert.match(await page.evaluate<string>(`document.querySelector('#unit-counters').textContent`), /core\.proxiedArp7/);
    assert.match(await page.evaluate<string>(`document.querySelector('#unit-facts').textContent`), /OTAonline, 1\.0\.0/);
    assert.match(
      await page.evaluate<string>(`document.querySelector('#unit-health-caption').textContent`),
      /tunnel up; 2 MACs, 1 neighbours, 1 active alarms/,
    );
    const a1Health = await page.evaluate<unknown>(`fetch('/api/units/A-1').then((r) => r.json()).then((d) => d.health)`);
    assert.equal(a1Health, null, "a unit cannot publish another unit's health (the broker ACL)");
    assert.match(
      await page.evaluate<string>(`document.querySelector('#unit-timeline-caption').textContent`),
      /^Up (under 0\.1|[\d.]+) % of the last 24 hours/,
    );
    await shoot(page, 'console-unit');
    await page.evaluate(`document.querySelector('#unit-health-title').scrollIntoView()`);
    await shoot(page, 'console-unit-health');
    await page.evaluate(`window.scrollTo(0, 0)`);
    await page.evaluate(`document.querySelector('#unit-back').click()`);
    await page.waitFor('back to the fleet', `!document.querySelector('#fleet-view').hidden`);

    await page.evaluate(`document.querySelector('nav [data-view=tenants]').click()`);
    await page.waitFor('the tenants page', `document.querySelectorAll('#tenants-table tbody tr').length === 2`);
    await shoot(page, 'console-tenants');
    // A new tenant and its segment, from the page (admin only).
    await page.evaluate(`(() => {
      document.querySelector('#tenant-name').value = 'initech';
      document.querySelector('#tenant-form').requestSubmit();
    })()`);
    await page.waitFor('tenant added', `document.querySelector('#tenant-result').textContent === 'tenant initech added'`);
    await page.evaluate(`(() => {
      document.querySelector('#segment-tenant').value = 'initech';
      document.querySelector('#segment-name').value = 'lan';
      document.querySelector('#segment-vni').value = '300';
      document.querySelector('#segment-vteps').value = '127.0.0.4, 127.0.0.5';
      document.querySelector('#segment-form').requestSubmit();
    })()`);
    await page.waitFor(
      'segment shown',
      `[...document.querySelectorAll('#tenants-table tbody tr')].some((tr) => tr.cells[0].textContent === 'initech' && tr.cells[1].textContent === 'lan (300)')`,
    );
    // A VNI already taken is refused with the registry's reason, in the page.
    await page.evaluate(`(() => {
      document.querySelector('#segment-name').value = 'dmz';
      document.querySelector('#segment-vni').value = '100';
      document.querySelector('#segment-form').requestSubmit();
    })()`);
    await page.waitFor(
      'refusal shown',
      `/^not saved: .*VNI 100 is already used/.test(document.querySelector('#tenant-result').textContent)`,
    );
    // A rollout started from the page on two units one at a time, A-1's progress and success live, then
    // paused before G-1's job and resumed.
    await page.evaluate(`document.querySelector('nav [data-view=rollouts]').click()`);
    await page.waitFor('the release offered', `document.querySelector('#rollout-release').options.length === 1`);
    await page.evaluate(`(() => {
      document.querySelector('#rollout-cohort').value = 'A-1,G-1';
      document.querySelector('#rollout-parallel').value = '1';
      document.querySelector('#rollout-form').requestSubmit();
    })()`);
    await page.waitFor(
      'rollout started',
      `/^rollout rel-1\\.1\\.0-[0-9a-f]{8} started$/.test(document.querySelector('#rollout-result').textContent)`,
    );
    const rolloutId = (await page.evaluate<string>(`document.querySelector('#rollout-result').textContent`)).split(' ')[1] ?? '';
    const rowJs = `document.querySelector('#rollouts-table tbody tr[data-rollout="${rolloutId}"]')`;
    const unitState = (serial: string) => `document.querySelector('#rollout-units tr[data-serial="${serial}"]')?.cells[4].textContent`;
    await page.waitFor('A-1 sent its job', `${unitState('A-1')} === 'sent' && ${unitState('G-1')} === 'pending'`);
    assert.deepEqual((await page.evaluate<string[]>(`[...${rowJs}.cells].map((c) => c.textContent)`)).slice(0, 4), [
      rolloutId,
      '1.1.0',
      'active',
      '2 of 3',
    ]);
    await reportAsA1(rolloutId, 'downloading', { progress: { bytes: 50, total: 200 } });
    await page.waitFor('progress shown live', `${unitState('A-1')} === 'downloading 25 %'`, 5_000);
    await shoot(page, 'console-rollouts');
    await page.evaluate(`document.querySelector('#rollouts-table button[aria-label="Pause rollout ${rolloutId}"]').click()`);
    await page.waitFor(
      'paused',
      `${rowJs}.dataset.status === 'paused' && /^paused: paused by alice at /.test(${rowJs}.cells[2].textContent)`,
    );
    await reportAsA1(rolloutId, 'succeeded', { version: '1.1.0' });
    await page.waitFor('success shown live', `${unitState('A-1')} === 'succeeded' && ${rowJs}.cells[4].textContent === '1'`, 5_000);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await page.evaluate<string>(unitState('G-1')), 'pending', 'no job for G-1 while paused');
    await page.evaluate(`document.querySelector('#rollouts-table button[aria-label="Resume rollout ${rolloutId}"]').click()`);
    await page.waitFor('resumed and G-1 sent', `${rowJs}.dataset.status === 'active' && ${unitState('G-1')} === 'sent'`);
    assert.deepEqual(
      readFileSync(d.path('operator-log.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { operator: string; action: string; target: string })
        .filter((r) => r.action.startsWith('rollout-'))
        .map((r) => `${r.operator} ${r.action} ${r.target}`),
      [`alice rollout-start ${rolloutId}`, `alice rollout-pause ${rolloutId}`, `alice rollout-resume ${rolloutId}`],
    );

    // A sandbox drill for acme from the Drills page, then ended there; one for globex through the API.
    await page.evaluate(`document.querySelector('nav [data-view=drills]').click()`);
    await page.waitFor(
      'the drills page',
      `!document.querySelector('#drills-view').hidden && document.querySelector('#drill-tenant').options.length >= 2`,
    );
    await page.evaluate(`(() => {
      document.querySelector('#drill-tenant').value = 'acme';
      document.querySelector('#drill-form').requestSubmit();
    })()`);
    await page.waitFor('drill started', `/^drill [0-9a-f]+ started for acme$/.test(document.querySelector('#drill-result').textContent)`);
    await page.waitFor('drill running', `document.querySelector('#drills-table tbody tr[data-state=running]') !== null`);
    await shoot(page, 'console-drills');
    await page.evaluate(`document.querySelector('#drills-table button[aria-label^="End drill"]').click()`);
    await page.waitFor(
      'drill ended',
      `document.querySelector('#drills-table tbody tr[data-state=running]') === null && document.querySelectorAll('#drills-table tbody tr').length === 1`,
    );
    // Its timeline: the start and the end on a line and in a table.
    await page.evaluate(`document.querySelector('#drills-table button[aria-label^="Open drill"]').click()`);
    await page.waitFor(
      'the drill timeline',
      `document.querySelectorAll('#drill-timeline circle').length === 2 && document.querySelector('#drill-events tr[data-event=drill-end]') !== null`,
    );
    await shoot(page, 'console-drill');
    // Its report, as an auditor files it: HTML bound to the audit log by hash.
    const report = await page.evaluate<{ status: number; type: string; body: string }>(`(async () => {
      const a = document.querySelector('#drills-table a[aria-label^="Report of drill"]');
      const r = await fetch(a.href);
      return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
    })()`);
    assert.equal(report.status, 200);
    assert.match(report.type, /^text\/html/);
    assert.match(report.body, /reportHash|SHA-256/i);
    // The failovers beside the drills: each with its state, its timeline and its report.
    await page.waitFor('failovers listed', `document.querySelectorAll('#failovers-table tbody tr').length === 2`);
    assert.deepEqual(
      await page.evaluate<string[]>(
        `[...document.querySelectorAll('#failovers-table tbody tr')].map((tr) => tr.dataset.failover + ' ' + tr.dataset.state)`,
      ),
      ['fo-globex01 active', 'fo-acme0001 ended'],
    );
    await page.evaluate(`document.querySelector('#failovers-table button[aria-label="Open failover fo-acme0001"]').click()`);
    await page.waitFor(
      'the failover timeline',
      `/^Failover fo-acme0001 \\(acme, lan, ended\\)$/.test(document.querySelector('#drill-detail-title').textContent) && document.querySelectorAll('#drill-timeline circle').length === 4`,
    );
    const foReport = await page.evaluate<number>(
      `fetch(document.querySelector('#failovers-table a[aria-label="Report of failover fo-acme0001"]').href).then((r) => r.status)`,
    );
    assert.equal(foReport, 200);
    const globexDrill = await page.evaluate<string>(`(async () => {
      const me = await (await fetch('/api/me')).json();
      const r = await fetch('/api/drills', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf }, body: JSON.stringify({ tenant: 'globex', kind: 'sandbox' }) });
      return (await r.json()).id;
    })()`);
    assert.match(globexDrill, /^[0-9a-f]+$/);

    await page.evaluate(`document.querySelector('nav [data-view=audit]').click()`);
    await page.waitFor('the audit page', `document.querySelectorAll('#audit-table tbody tr').length > 0`);
    await page.evaluate(`document.querySelector('#audit-verify').click()`);
    await page.waitFor('the chain verified', `document.querySelector('#audit-verdict').dataset.ok === 'true'`);
    assert.match(
      await page.evaluate<string>(`document.querySelector('#audit-verdict').textContent`),
      /^Chain intact: \d+ records in 1 file\(s\), \d+ signed checkpoints, \d+ records after the last one; head pointer checked\.$/,
    );
    await shoot(page, 'console-audit');

    // Audit: the headend's records through the console, exported as CSV.
    const csv = await page.evaluate<string>(`fetch('/api/audit/export').then((r) => r.text())`);
    assert.match(csv.split('\r\n')[0] ?? '', /^seq,time,event,tenant/);
    assert.ok(csv.includes('"connect"') && csv.includes('"U-1"'), 'the export has the new session');

    // The MSP of acme, on a phone-sized page: its units only, in the page and through the API.
    const phone = await browser.newPage(390, 844);
    await login(phone, url, 'msp-acme');
    await phone.waitFor('the MSP fleet', `(${rowsJs}).length === 2`);
    assert.deepEqual(
      (await phone.evaluate<{ serial: string }[]>(rowsJs)).map((r) => r.serial),
      ['A-1', 'U-1'],
      'no globex unit in the MSP page',
    );
    await shoot(phone, 'console-msp-phone');
    const api = await phone.evaluate<Record<string, number>>(`(async () => {
    const me = await (await fetch('/api/me')).json();
    const post = (path, body, csrf = me.csrf) => fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify(body) }).then((r) => r.status);
    const units = await (await fetch('/api/units')).json();
    const audit = await (await fetch('/api/audit?limit=10000')).json();
    return {
      unitsSeen: units.units.length,
      globexUnit: (await fetch('/api/units/G-1')).status,
      claimGlobexUnit: await post('/api/units/G-1/claim', { tenant: 'acme' }),
      revokeGlobexUnit: await post('/api/units/G-1/revoke', {}),
      claimForGlobex: await post('/api/units/U-2/claim', { tenant: 'globex' }),
      noCsrf: await post('/api/units/A-1/revoke', {}, 'wrong'),
      globexAudit: audit.records.filter((r) => r.tenant === 'globex').length,
      operatorLog: (await fetch('/api/operator-log')).status,
      auditVerify: (await fetch('/api/audit/verify')).status,
      tenants: (await (await fetch('/api/tenants')).json()).tenants.length,
      rolloutUnits: (await (await fetch('/api/rollouts')).json()).rollouts.flatMap((r) => r.units.map((u) => u.serial)).join(','),
      releases: (await fetch('/api/releases')).status,
      startRollout: await post('/api/rollouts', { release: 'connector-1.1.0.json', cohort: '100%', failThreshold: 1 }),
      pauseRollout: await post('/api/rollouts/${rolloutId}/pause', {}),
      drillsSeen: (await (await fetch('/api/drills')).json()).drills.map((d) => d.tenant).join(','),
      failoversSeen: (await (await fetch('/api/failovers')).json()).failovers.map((f) => f.id).join(','),
      globexFailover: (await fetch('/api/failovers/fo-globex01')).status,
      globexFailoverReport: (await fetch('/api/failovers/fo-globex01/report')).status,
      globexDrill: (await fetch('/api/drills/${globexDrill}')).status,
      globexReport: (await fetch('/api/drills/${globexDrill}/report')).status,
      endGlobexDrill: await post('/api/drills/${globexDrill}/end', {}),
      startGlobexDrill: await post('/api/drills', { tenant: 'globex', kind: 'sandbox' }),
    };
  })()`);
    assert.deepEqual(api, {
      unitsSeen: 2,
      globexUnit: 404,
      claimGlobexUnit: 404,
      revokeGlobexUnit: 404,
      claimForGlobex: 403,
      noCsrf: 403,
      globexAudit: 0,
      operatorLog: 403,
      auditVerify: 403,
      tenants: 1,
      rolloutUnits: 'A-1',
      releases: 403,
      startRollout: 403,
      pauseRollout: 403,
      drillsSeen: 'acme',
      failoversSeen: 'fo-acme0001',
      globexFailover: 404,
      globexFailoverReport: 404,
      globexDrill: 404,
      globexReport: 404,
      endGlobexDrill: 404,
      startGlobexDrill: 403,
    });
    assert.equal(headend.sessions().length, 3, 'nothing the MSP tried closed a session');

    // An edited record in the headend's log: the console's check names the line.
    const auditText = readFileSync(d.path('audit.jsonl'), 'utf8').split('\n');
    const edited = auditText.findIndex((l) => l.includes('"U-1"'));
    auditText[edited] = (auditText[edited] ?? '').replace('"U-1"', '"U-9"');
    writeFileSync(d.path('audit.jsonl'), auditText.join('\n'));
    // The browser's cookie is the MSP's now: alice logs in again first.
    const tampered = await page.evaluate<{ ok: boolean; line: number; problem: string }>(`(async () => {
      await fetch('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'alice', password: ${JSON.stringify(PASSWORD)} }) });
      return (await fetch('/api/audit/verify')).json();
    })()`);
    assert.equal(tampered.ok, false, JSON.stringify(tampered));
    assert.ok(tampered.line >= edited + 1, `the edit (line ${edited + 1}) is found: ${JSON.stringify(tampered)}`);
  },
);

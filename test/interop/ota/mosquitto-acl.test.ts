// SPDX-License-Identifier: UNLICENSED
// The broker config `connector ota broker-config` generates, run by a real mosquitto: a device cannot
// publish another device's status (MQTT 5 PUBACK 135), cannot read another device's jobs, and cannot
// take over another device's client id; unknown certificates are refused at the TLS layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { jobStateReportTopic, jobStateTopic, jobTopic, statusTopic } from '../../../src/shared/ota/protocol.js';
import { createTestPki, type TestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { CONTROLLER_CN, startMosquitto } from '../../integration/ota/helpers/mosquitto.js';

const A = 'R3S-0001';
const B = 'R3S-0002';

async function connectAs(
  t: { after(fn: () => void | Promise<void>): void },
  url: string,
  pki: TestPki,
  cn: string,
  clientId = cn,
): Promise<MqttClient> {
  const id = pki.identity(cn);
  const c = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId,
    ca: pki.dcCa.pem,
    cert: id.cert,
    key: id.key,
    reconnectPeriod: 0,
  });
  t.after(() => c.endAsync(true));
  return c;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('mosquitto enforces per-device topics and client ids', async (t) => {
  const pki = await createTestPki(tempDir(t, 'ck-ota-pki-').dir, { singleCa: true, clients: [A, B, CONTROLLER_CN] });
  const broker = await startMosquitto(t, pki);
  const ctl = await connectAs(t, broker.url, pki, CONTROLLER_CN);
  const a = await connectAs(t, broker.url, pki, A);
  const b = await connectAs(t, broker.url, pki, B);

  await t.test("own status is accepted, another device's status gets PUBACK 135", async () => {
    const seen: string[] = [];
    ctl.on('message', (topic) => seen.push(topic));
    await ctl.subscribeAsync('connector/v1/+/status', { qos: 1 });
    await a.publishAsync(statusTopic(A), '{"online":true}', { qos: 1 });
    await assert.rejects(
      a.publishAsync(statusTopic(B), '{"online":false,"forged":true}', { qos: 1 }),
      (e: unknown) => (e as { code?: number }).code === 135,
    );
    await assert.rejects(a.publishAsync(jobStateTopic(B, 'j1'), '{}', { qos: 1 }), (e: unknown) => (e as { code?: number }).code === 135);
    await settle(300);
    assert.ok(seen.includes(statusTopic(A)));
    assert.ok(!seen.includes(statusTopic(B)), 'forged status never delivered');
  });

  await t.test("a device subscribing to another device's jobs receives nothing", async () => {
    const gotA: string[] = [];
    const gotB: string[] = [];
    a.on('message', (topic) => gotA.push(topic));
    b.on('message', (topic) => gotB.push(topic));
    await a.subscribeAsync(`connector/v1/${B}/jobs/+`, { qos: 1 });
    await a.subscribeAsync('connector/v1/#', { qos: 1 });
    await b.subscribeAsync(`connector/v1/${B}/jobs/+`, { qos: 1 });
    await ctl.publishAsync(jobTopic(B, 'j-acl'), '{"jobId":"j-acl"}', { qos: 1, retain: true });
    await settle(500);
    assert.deepEqual(gotB, [jobTopic(B, 'j-acl')]);
    assert.ok(!gotA.includes(jobTopic(B, 'j-acl')), `A received ${gotA.join(', ')}`);
    // A device may not write job documents, even to itself.
    await assert.rejects(a.publishAsync(jobTopic(A, 'self'), '{}', { qos: 1 }), (e: unknown) => (e as { code?: number }).code === 135);
  });

  await t.test(
    'a device makes the broker retain at most two messages (status, job-state); per-job state topics only with --legacy-job-state',
    async () => {
      const retainedOf = async (url: string, serial: string): Promise<string[]> => {
        const probe = await connectAs(t, url, pki, CONTROLLER_CN, `probe-${Math.random().toString(36).slice(2)}`);
        const got: string[] = [];
        probe.on('message', (topic, payload, packet) => {
          if (packet.retain && payload.length > 0) got.push(topic);
        });
        await probe.subscribeAsync(`connector/v1/${serial}/#`, { qos: 1 });
        await settle(400);
        await probe.endAsync(true);
        return got;
      };
      const flood = async (c: MqttClient): Promise<number> => {
        let refused = 0;
        for (let i = 0; i < 20; i++) {
          await c.publishAsync(jobStateTopic(A, `flood-${i}`), '{"x":1}', { qos: 1, retain: true }).catch((e: unknown) => {
            if ((e as { code?: number }).code === 135) refused++;
          });
        }
        return refused;
      };
      await a.publishAsync(jobStateReportTopic(A), '{"jobId":"j1","state":"installed","version":"1.0.0"}', { qos: 1, retain: true });
      assert.equal(await flood(a), 20, 'every per-job state topic refused with PUBACK 135');
      const kept = await retainedOf(broker.url, A);
      assert.ok(kept.length <= 2 && kept.includes(jobStateReportTopic(A)), `retained for ${A}: ${kept.join(', ')}`);

      const legacy = await startMosquitto(t, pki, (c) => c, 'legacy', { legacyJobState: true });
      const old = await connectAs(t, legacy.url, pki, A);
      assert.equal(await flood(old), 0, 'an old agent may still report per job with --legacy-job-state');
      assert.ok((await retainedOf(legacy.url, A)).length >= 20, 'and then each of its topics is retained: why the flag is off by default');
    },
  );

  await t.test("reusing another device's client id does not kick it off", async () => {
    let bClosed = false;
    b.on('close', () => (bClosed = true));
    const imposter = await connectAs(t, broker.url, pki, A, B);
    await settle(500);
    assert.equal(bClosed, false, 'B keeps its session');
    assert.equal(b.connected, true);
    await b.publishAsync(statusTopic(B), '{"online":true}', { qos: 1 });
    // The imposter is still only A: B's topics stay closed to it.
    await assert.rejects(imposter.publishAsync(statusTopic(B), '{}', { qos: 1 }), (e: unknown) => (e as { code?: number }).code === 135);
    const log = readFileSync(broker.logFile, 'utf8');
    assert.doesNotMatch(log, new RegExp(`Client ${B} already connected`));
  });

  await t.test('control: without use_username_as_clientid the same trick does kick the victim off', async () => {
    const weak = await startMosquitto(t, pki, (c) => c.replace('use_username_as_clientid true\n', ''), 'weak');
    const victim = await connectAs(t, weak.url, pki, B);
    let kicked = false;
    victim.on('close', () => (kicked = true));
    await connectAs(t, weak.url, pki, A, B);
    await settle(500);
    assert.equal(kicked, true);
  });

  await t.test('a self-signed certificate with a valid-looking CN is refused', async () => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'rogue.key',
        '-out',
        'rogue.pem',
        '-days',
        '1',
        '-subj',
        `/CN=${B}`,
      ],
      { cwd: pki.dir, stdio: 'ignore' },
    );
    await assert.rejects(
      mqtt.connectAsync(broker.url, {
        protocolVersion: 5,
        clientId: B,
        ca: pki.dcCa.pem,
        cert: readFileSync(join(pki.dir, 'rogue.pem')),
        key: readFileSync(join(pki.dir, 'rogue.key')),
        reconnectPeriod: 0,
        connectTimeout: 3000,
      }),
    );
    assert.equal(b.connected, true);
  });
});

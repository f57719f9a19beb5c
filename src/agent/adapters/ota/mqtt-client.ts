// SPDX-License-Identifier: UNLICENSED
// Device side of the OTA channel over MQTT 5 with the device certificate: a retained status with a
// Last Will, the job subscription, and job-state reports. Jobs go to the updater one at a time.
import mqtt, { type MqttClient } from 'mqtt';
import { errorMessage } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import {
  deviceJobsFilter,
  healthTopic,
  MQTT_MAX_PACKET_BYTES,
  jobStateReportTopic,
  parseJobDocument,
  parseJobTopic,
  statusTopic,
  type DeviceStatus,
  type JobStateReport,
} from '../../../shared/ota/protocol.js';
import type { Updater } from './updater.js';

export interface DeviceMqttOptions {
  /** mqtts://host:port */
  readonly url: string;
  readonly serial: string;
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly board: string;
  readonly log: Logger;
  readonly keepaliveS?: number;
}

export interface DeviceMqtt {
  readonly client: MqttClient;
  /** The updater's `report` port. */
  report(r: JobStateReport): Promise<void>;
  publishStatus(extra?: Partial<DeviceStatus>): Promise<void>;
  /** Retained at QoS 0: the latest is what counts, and a broker whose ACL predates it refuses it silently. */
  publishHealth(doc: unknown): void;
  /** Starts taking jobs; resolves once subscribed. */
  attach(updater: Updater): Promise<void>;
  readonly drops: Record<string, number>;
  close(): Promise<void>;
}

export async function connectDeviceMqtt(o: DeviceMqttOptions): Promise<DeviceMqtt> {
  const log = o.log.child({ serial: o.serial });
  const offline: DeviceStatus = { online: false };
  const client = await mqtt.connectAsync(o.url, {
    protocolVersion: 5,
    clientId: o.serial, // the broker replaces it with the certificate CN anyway
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    keepalive: o.keepaliveS ?? 30,
    clean: false,
    properties: { sessionExpiryInterval: 3600, maximumPacketSize: MQTT_MAX_PACKET_BYTES },
    reconnectPeriod: 1000,
    will: { topic: statusTopic(o.serial), payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: true },
  });
  client.on('error', (e) => log.warn('ota mqtt error', { error: errorMessage(e) }));
  const drops: Record<string, number> = {};
  let updater: Updater | undefined;
  let lastJob: DeviceStatus['job'];

  const publishStatus = async (extra: Partial<DeviceStatus> = {}): Promise<void> => {
    const version = updater ? await updater.runningVersion() : undefined;
    const s: DeviceStatus = {
      online: true,
      board: o.board,
      at: new Date().toISOString(),
      ...(version ? { version } : {}),
      ...(lastJob ? { job: lastJob } : {}),
      ...extra,
    };
    await client.publishAsync(statusTopic(o.serial), JSON.stringify(s), { qos: 1, retain: true });
  };

  client.on('message', (topic, payload) => {
    const t = parseJobTopic(topic);
    if (!t || t.state || t.serial !== o.serial || payload.length === 0) return;
    const doc = parseJobDocument(payload);
    if (!doc.ok) {
      drops[doc.drop] = (drops[doc.drop] ?? 0) + 1;
      log.warn('ota job dropped', { topic, drop: doc.drop });
      return;
    }
    if (doc.value.jobId !== t.jobId) {
      drops['job-id-mismatch'] = (drops['job-id-mismatch'] ?? 0) + 1;
      return;
    }
    if (!updater) return;
    updater.handleJob(doc.value).catch((e: unknown) => log.error('ota job crashed', { jobId: t.jobId, error: errorMessage(e) }));
  });

  return {
    client,
    drops,
    publishStatus,
    publishHealth(doc) {
      if (!client.connected) return;
      client.publish(healthTopic(o.serial), JSON.stringify(doc), { qos: 0, retain: true }, (e) => {
        if (e) log.debug('health not published', { error: errorMessage(e) });
      });
    },
    async report(r) {
      await client.publishAsync(jobStateReportTopic(o.serial), JSON.stringify(r), { qos: 1, retain: true });
      lastJob = { jobId: r.jobId, state: r.state };
      if (r.state !== 'downloading') await publishStatus();
    },
    async attach(u) {
      updater = u;
      await publishStatus();
      await client.subscribeAsync(deviceJobsFilter(o.serial), { qos: 1 });
    },
    async close() {
      await client.endAsync();
    },
  };
}

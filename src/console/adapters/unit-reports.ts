// SPDX-License-Identifier: UNLICENSED
// What the units say about themselves: the console watches the OTA broker (MQTT 5, mutual TLS, an
// observer certificate that may only read) for every unit's retained status and health, and keeps the
// latest of each in memory. A message that is not JSON is counted and dropped. Reconnects by itself; the
// console works on without it (a unit page then shows what the headends know).
import mqtt, { type MqttClient } from 'mqtt';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { ALL_HEALTH_FILTER, ALL_STATUS_FILTER, isSerial } from '../../shared/ota/protocol.js';

export interface UnitReports {
  /** The latest status and health documents of one unit (undefined: never heard). */
  get(serial: string): { status?: unknown; health?: unknown };
  state(): { connected: boolean; units: number; drops: number; lastError: string | null };
  close(): Promise<void>;
}

export async function watchUnitReports(o: { url: string; ca: Buffer; cert: Buffer; key: Buffer; log: Logger }): Promise<UnitReports> {
  const latest = new Map<string, { status?: unknown; health?: unknown }>();
  let drops = 0;
  let lastError: string | null = null;
  const client: MqttClient = mqtt.connect(o.url, {
    protocolVersion: 5,
    clientId: `connector-console-${process.pid}`,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    clean: true,
    reconnectPeriod: 2_000,
  });
  client.on('connect', () => {
    lastError = null;
    client.subscribe([ALL_STATUS_FILTER, ALL_HEALTH_FILTER], { qos: 0 }, (e) => {
      if (e) o.log.warn('console: unit reports not subscribed', { error: errorMessage(e) });
    });
  });
  client.on('error', (e) => {
    if (lastError !== errorMessage(e)) o.log.warn('console: OTA broker', { error: errorMessage(e) });
    lastError = errorMessage(e);
  });
  client.on('message', (topic, payload) => {
    const [, , serial, kind] = topic.split('/');
    if (!serial || !isSerial(serial) || (kind !== 'status' && kind !== 'health')) return;
    const entry = latest.get(serial) ?? {};
    if (payload.length === 0) {
      // A cleared retained message: the unit's record is gone.
      delete entry[kind];
    } else {
      try {
        entry[kind] = JSON.parse(payload.toString('utf8')) as unknown;
      } catch {
        drops++;
        return;
      }
    }
    latest.set(serial, entry);
  });
  return {
    get: (serial) => latest.get(serial) ?? {},
    state: () => ({ connected: client.connected, units: latest.size, drops, lastError }),
    close: async () => {
      await client.endAsync(true);
    },
  };
}

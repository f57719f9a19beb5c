// SPDX-License-Identifier: UNLICENSED
// The rollout controller's MQTT 5 client (the controller certificate) and the channel the rollout loop
// runs over: retained QoS 1 job documents out, every device's job-state reports in.
import mqtt, { type MqttClient } from 'mqtt';
import { ALL_JOB_STATE_REPORTS_FILTER, ALL_JOB_STATES_FILTER } from '../../shared/ota/protocol.js';

/** Current agents' reports and, while older agents remain in the fleet, theirs. */
const REPORT_FILTERS = [ALL_JOB_STATE_REPORTS_FILTER, ALL_JOB_STATES_FILTER];
import type { RolloutChannel } from '../core/rollout-run.js';

export interface ControllerMqttOptions {
  readonly url: string;
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export async function connectController(o: ControllerMqttOptions, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(o.url, {
    protocolVersion: 5,
    clientId,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    clean: true,
    reconnectPeriod: 1000,
  });
}

export function mqttRolloutChannel(client: MqttClient): RolloutChannel {
  let listener: ((topic: string, payload: Buffer) => void) | undefined;
  return {
    async subscribeReports(onReport) {
      listener = onReport;
      client.on('message', onReport);
      await client.subscribeAsync(REPORT_FILTERS, { qos: 1 });
    },
    async unsubscribeReports() {
      if (listener) client.removeListener('message', listener);
      listener = undefined;
      await client.unsubscribeAsync(REPORT_FILTERS).catch(() => undefined);
    },
    async publishJob(topic, payload) {
      await client.publishAsync(topic, payload, { qos: 1, retain: true });
    },
  };
}

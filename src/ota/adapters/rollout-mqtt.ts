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

/** The channel of one rollout loop on its own client (the `connector ota rollout` command). */
export function mqttRolloutChannel(client: MqttClient): RolloutChannel {
  return sharedRolloutChannels(client)();
}

/**
 * Channels for several rollout loops over one client (the controller service): the broker subscription
 * is made once and shared, each loop hears every report (a loop keeps only its own rollout's), and one
 * loop leaving does not deafen the others.
 */
export function sharedRolloutChannels(client: MqttClient): () => RolloutChannel {
  let listeners = 0;
  let subscribed: Promise<unknown> | undefined;
  return () => {
    let listener: ((topic: string, payload: Buffer) => void) | undefined;
    return {
      async subscribeReports(onReport) {
        listener = onReport;
        listeners++;
        client.on('message', onReport);
        subscribed ??= client.subscribeAsync(REPORT_FILTERS, { qos: 1 });
        await subscribed;
      },
      async unsubscribeReports() {
        if (!listener) return;
        client.removeListener('message', listener);
        listener = undefined;
        if (--listeners > 0) return;
        subscribed = undefined;
        await client.unsubscribeAsync(REPORT_FILTERS).catch(() => undefined);
      },
      async publishJob(topic, payload) {
        await client.publishAsync(topic, payload, { qos: 1, retain: true });
      },
    };
  };
}

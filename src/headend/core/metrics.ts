// SPDX-License-Identifier: UNLICENSED
// Counters and gauges rendered as Prometheus text exposition format 0.0.4. Series are created on first
// use and kept in insertion order; the hot path increments a number in a Map. Pure.

export type Labels = Readonly<Record<string, string | number>>;

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  series: Map<string, number>;
}

/** `{a="1",b="2"}`: the label set as the exposition format writes it, names sorted, values escaped. */
export function labelKey(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Metrics {
  #families = new Map<string, Family>();

  define(name: string, type: 'counter' | 'gauge', help: string): void {
    if (!this.#families.has(name)) this.#families.set(name, { help, type, series: new Map() });
  }

  #family(name: string): Family {
    const f = this.#families.get(name);
    if (!f) throw new RangeError(`metric ${name} is not defined`);
    return f;
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const s = this.#family(name).series;
    const k = labelKey(labels);
    s.set(k, (s.get(k) ?? 0) + by);
  }

  set(name: string, labels: Labels, value: number): void {
    this.#family(name).series.set(labelKey(labels), value);
  }

  /** Removes one series (a gauge whose subject is gone). */
  remove(name: string, labels: Labels): void {
    this.#family(name).series.delete(labelKey(labels));
  }

  get(name: string, labels: Labels = {}): number {
    return this.#families.get(name)?.series.get(labelKey(labels)) ?? 0;
  }

  /** The HELP and TYPE lines of a family, for text rendered outside this object. */
  header(name: string): string {
    const f = this.#family(name);
    return `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n`;
  }

  /** The exposition text; `omit`: families the caller renders itself. */
  render(omit?: ReadonlySet<string>): string {
    let out = '';
    for (const [name, f] of this.#families) {
      if (omit?.has(name)) continue;
      out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n`;
      for (const [k, v] of f.series) out += `${name}${k} ${v}\n`;
    }
    return out;
  }
}

/** Every metric the headend exports, defined up front so a scrape shows all families from the start. */
export function headendMetrics(): Metrics {
  const m = new Metrics();
  m.define('connector_headend_info', 'gauge', 'Always 1: the labels name this headend (instance) and its version.');
  m.define('connector_headend_sessions', 'gauge', 'Tunnel sessions past the hello, per segment VNI.');
  m.define('connector_headend_sessions_total', 'counter', 'Tunnel sessions opened since start.');
  m.define(
    'connector_headend_frames_total',
    'counter',
    'Frames forwarded, per segment VNI and direction (tunnel-in, tunnel-out, vtep-in, vtep-out).',
  );
  m.define('connector_headend_bytes_total', 'counter', 'Ethernet frame bytes forwarded, per segment VNI and direction.');
  m.define('connector_headend_drops_total', 'counter', 'Frames or records dropped, per reason.');
  m.define(
    'connector_headend_offload_total',
    'counter',
    'OFFLOAD records (super-frames) from sessions, passed whole, and segments cut from them.',
  );
  m.define(
    'connector_headend_vtep_coalesce_total',
    'counter',
    "Runs of a VTEP's TCP segments sent to sessions as super-frames, the segments they carried, and segments left alone for a bad checksum.",
  );
  m.define(
    'connector_headend_aqm_dropping_sessions',
    'gauge',
    "Sessions whose queue toward the device is in CoDel's dropping state (a standing queue).",
  );
  m.define(
    'connector_headend_event_loop_delay_seconds',
    'gauge',
    'Event-loop delay over the last 10 s window (quantile 0.99 and 1 = max).',
  );
  m.define('connector_headend_workers', 'gauge', 'Worker processes serving sessions (kernel L2 engine with workers > 1).');
  m.define('connector_headend_event_loop_delayed', 'gauge', '1 while the event-loop delay alarm is raised (p99 above 100 ms).');
  m.define('connector_headend_refusals_total', 'counter', 'Connections refused, per reason.');
  m.define('connector_headend_handshakes_total', 'counter', 'TLS handshakes completed, by resumed (yes: a session ticket, no: full).');
  m.define(
    'connector_headend_handshakes_wasted_total',
    'counter',
    'TLS handshakes completed for a client that left before its hello (work the headend did for nobody).',
  );
  m.define('connector_headend_datagram_sessions', 'gauge', 'Sessions whose data toward the device leaves as datagrams.');
  m.define('connector_headend_datagrams_total', 'counter', 'Authentic datagrams received (in) and datagrams sent (out).');
  m.define(
    'connector_headend_datagram_bundles_total',
    'counter',
    'Datagrams sent that carried several small frames (to agents that unpack them).',
  );
  m.define(
    'connector_headend_datagram_drops_total',
    'counter',
    'Datagrams dropped, by reason (not-data-v2 and peer-id before any crypto; replay, auth, epoch after).',
  );
  m.define(
    'connector_headend_datagram_send_drops_total',
    'counter',
    'Datagrams the kernel did not take on the datagram socket (a full send buffer, or an error such as no route).',
  );
  m.define('connector_headend_memory_bytes', 'gauge', 'Process memory by kind: rss, heap_used, heap_total, external, array_buffers.');
  m.define(
    'connector_headend_memory_trims_total',
    'counter',
    'Times freed native memory was handed back to the kernel after a large drop in sessions (released: whether any was).',
  );
  m.define('connector_headend_session_closes_total', 'counter', 'Sessions closed, per reason.');
  m.define('connector_headend_registry_reloads_total', 'counter', 'Registry reloads, per result (ok, error).');
  m.define(
    'connector_headend_registry_connected',
    'gauge',
    '1 while the registry backend is reachable; 0 while the last good registry is served without it.',
  );
  m.define(
    'connector_headend_segment_mtu_too_small',
    'gauge',
    '1 when the VTEP path MTU of a segment cannot carry 1514-byte inner frames (needs >= 1550).',
  );
  m.define('connector_headend_audit_errors_total', 'counter', 'Audit lines that could not be written.');
  m.define('connector_headend_mac_entries', 'gauge', 'Learned MAC entries per segment VNI.');
  return m;
}

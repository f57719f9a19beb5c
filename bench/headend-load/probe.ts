// SPDX-License-Identifier: UNLICENSED
// The probe: one more device session that pings through the headend every 20 ms and records each round
// trip. It reconnects on its own (every 100 ms, bounded by the run) so a headend restart does not end it.
// A ping still unanswered when a window closes counts with its age so far: a stalled loop shows in max.
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ALPN_PROTOCOL, CONTROL_VNI, decodeControl, encodeControl, isControlFrame } from '../../src/shared/tunnel/control.js';
import { RecordDecoder, encodeRecord } from '../../src/shared/tunnel/records.js';

export interface ProbeStats {
  pings: number;
  answered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class Probe {
  readonly #sent = new Map<number, number>();
  readonly #rtts: { at: number; ms: number }[] = [];
  #socket: TLSSocket | null = null;
  #up = false;
  #nonce = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #retry: NodeJS.Timeout | null = null;

  constructor(private readonly o: { port: number; key: string; cert: string; ca: string }) {}

  get up(): boolean {
    return this.#up;
  }

  start(): void {
    this.#connect();
    this.#timer = setInterval(() => this.#ping(), 20);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#retry) clearTimeout(this.#retry);
    this.#socket?.destroy();
  }

  /** Round trips of pings sent in [from, to] (performance.now ms); the unanswered count with their age. */
  stats(from: number, to: number): ProbeStats {
    const ms = this.#rtts.filter((r) => r.at >= from && r.at <= to).map((r) => r.ms);
    const answered = ms.length;
    for (const at of this.#sent.values()) if (at >= from && at <= to) ms.push(to - at);
    ms.sort((a, b) => a - b);
    const q = (p: number): number => +(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0).toFixed(1);
    return { pings: ms.length, answered, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: +(ms[ms.length - 1] ?? 0).toFixed(1) };
  }

  #ping(): void {
    if (!this.#up || !this.#socket) return;
    const nonce = ++this.#nonce >>> 0;
    const t = performance.now();
    this.#sent.set(nonce, t);
    this.#socket.write(encodeRecord(CONTROL_VNI, encodeControl({ type: 'ping', nonce, t })));
  }

  #onRecord(vni: number, frame: Buffer): void {
    if (!isControlFrame(vni, frame)) return;
    const d = decodeControl(frame);
    if (!d.ok) return;
    if (d.msg.type === 'hello-ack') this.#up = true;
    else if (d.msg.type === 'pong') {
      const at = this.#sent.get(d.msg.nonce);
      if (at !== undefined) {
        this.#sent.delete(d.msg.nonce);
        this.#rtts.push({ at, ms: performance.now() - at });
      }
    }
  }

  #connect(): void {
    if (this.#stopped) return;
    const s = tlsConnect({
      host: '127.0.0.1',
      port: this.o.port,
      key: this.o.key,
      cert: this.o.cert,
      ca: this.o.ca,
      ALPNProtocols: [ALPN_PROTOCOL],
      minVersion: 'TLSv1.3',
    });
    this.#socket = s;
    const dec = new RecordDecoder(
      (vni, frame) => this.#onRecord(vni, frame),
      () => {},
    );
    s.on('secureConnect', () =>
      s.write(encodeRecord(CONTROL_VNI, encodeControl({ type: 'hello', agentVersion: 'probe', site: 'probe', capabilities: [] }))),
    );
    s.on('data', (chunk: Buffer) => {
      if (dec.push(chunk) !== null) s.destroy();
    });
    s.on('error', () => {});
    s.on('close', () => {
      this.#up = false;
      // Pings lost with the connection are not round trips: they are outages, reported by the phase.
      this.#sent.clear();
      if (!this.#stopped) this.#retry = setTimeout(() => this.#connect(), 100);
    });
  }
}

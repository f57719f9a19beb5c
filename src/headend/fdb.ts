// SPDX-License-Identifier: UNLICENSED
// Per-segment forwarding database of the headend: MAC -> where it was last seen (a tunnel session or a
// VTEP address), with aging and a size bound. One instance per segment, so identical MACs in two tenants
// never meet. Pure: time comes in as an argument.

export type Port = { kind: 'session'; id: string } | { kind: 'vtep'; address: string };

interface Entry {
  port: Port;
  seenAt: number;
}

export class Fdb {
  #map = new Map<number, Entry>();
  constructor(
    readonly ageMs: number,
    readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.#map.size;
  }

  /** Records `mac` behind `port`; returns false when the table is full and the MAC is new (not learned). */
  learn(mac: number, port: Port, now: number): boolean {
    const e = this.#map.get(mac);
    if (e) {
      e.port = port;
      e.seenAt = now;
      return true;
    }
    if (this.#map.size >= this.maxEntries) {
      this.expire(now);
      if (this.#map.size >= this.maxEntries) return false;
    }
    this.#map.set(mac, { port, seenAt: now });
    return true;
  }

  lookup(mac: number, now: number): Port | undefined {
    const e = this.#map.get(mac);
    if (!e) return undefined;
    if (now - e.seenAt >= this.ageMs) {
      this.#map.delete(mac);
      return undefined;
    }
    return e.port;
  }

  expire(now: number): void {
    for (const [mac, e] of this.#map) if (now - e.seenAt >= this.ageMs) this.#map.delete(mac);
  }

  /** Forgets everything learned behind a session (it closed) or a VTEP (it left the segment). */
  forgetPort(match: (p: Port) => boolean): void {
    for (const [mac, e] of this.#map) if (match(e.port)) this.#map.delete(mac);
  }
}

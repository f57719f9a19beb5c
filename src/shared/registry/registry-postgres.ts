// SPDX-License-Identifier: UNLICENSED
// The provider's registry backend: PostgreSQL. Every service keeps the whole registry in memory (the
// admission path never waits on the database) and follows changes by LISTEN/NOTIFY: a writer bumps the
// revision and notifies in its transaction, and every subscriber fetches the device rows newer than the
// revision it holds. Writers serialise on the registry row (SELECT ... FOR UPDATE), so two operators
// changing it at once never lose an update. When the connection drops the service keeps the last good
// registry, says so, and reconnects with backoff.
import pg from 'pg';
import { ConnectorError, errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { EMPTY_REGISTRY, parseRegistry, type Device, type Registry } from './registry.js';
import { devicesWith, stepBetween, type Devices } from './devices-overlay.js';
import { CHANNEL, migrate } from './registry-postgres-schema.js';
import type { RegistryStatus, RegistryStore } from './source.js';

export interface PostgresStoreOptions {
  readonly log?: Logger;
  /** Reconnect backoff, doubling from min to max (jittered). */
  readonly backoffMs?: { readonly min: number; readonly max: number };
}

interface Snapshot {
  readonly reg: Registry;
  readonly rev: number;
  /** Tenants and denylist as the database returned them ('' when not read from it): unchanged means a
   * change of units only, which is validated unit by unit instead of re-parsing 100,000 of them. */
  readonly shape: string;
}

const NOTHING: Snapshot = { reg: EMPTY_REGISTRY, rev: 0, shape: '' };

type Row = { serial: string; doc: unknown };

function dbError(what: string, e: unknown): ConnectorError {
  if (e instanceof ConnectorError) return e;
  return new ConnectorError('CK_ERR_REGISTRY_DB', `registry database: ${what}: ${errorMessage(e)}`, { cause: e });
}

/** Reads what changed since `from` (or everything) and returns the new snapshot; `client` must be in a transaction. */
async function pull(client: pg.ClientBase, from: Snapshot, forUpdate: boolean): Promise<Snapshot> {
  const meta = await client.query<{ rev: string; tenants: unknown; denylist: unknown }>(
    `SELECT rev, tenants, denylist FROM ck_registry WHERE id = 1${forUpdate ? ' FOR UPDATE' : ''}`,
  );
  const m = meta.rows[0];
  if (!m) throw new ConnectorError('CK_ERR_REGISTRY_DB', 'registry database: the ck_registry row is missing');
  const rev = Number(m.rev);
  if (rev === from.rev) return from;
  // A revision lower than ours means another database (or a restore): start over from nothing.
  const base = rev > from.rev ? from : NOTHING;
  const rows = await client.query<Row>('SELECT serial, doc FROM ck_devices WHERE rev > $1', [base.rev]);
  const shape = JSON.stringify([m.tenants, m.denylist]);
  if (base.rev > 0 && shape === base.shape) {
    // Every rule about a unit involves only that unit and the tenants, which did not change.
    const changed: Record<string, unknown> = {};
    for (const r of rows.rows) if (r.doc !== null) changed[r.serial] = r.doc;
    const part = parseRegistry({ version: 1, tenants: m.tenants, devices: changed, denylist: m.denylist });
    const step = new Map<string, Device | null>();
    for (const r of rows.rows) step.set(r.serial, part.devices[r.serial] ?? null);
    // Shares the map it had (devices-overlay.ts): no copy of 100,000 units per change.
    const reg: Registry = Object.freeze({ ...base.reg, devices: devicesWith(base.reg.devices, step) });
    return { reg, rev, shape };
  }
  const devices: Record<string, unknown> = { ...base.reg.devices };
  for (const r of rows.rows) {
    if (r.doc === null) delete devices[r.serial];
    else devices[r.serial] = r.doc;
  }
  return { reg: parseRegistry({ version: 1, tenants: m.tenants, devices, denylist: m.denylist }), rev, shape };
}

/** Field by field: parseRegistry rebuilds every unit on each change, so identity says nothing. */
function sameDevice(a: Device | undefined, b: Device | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  const ka = Object.keys(a) as (keyof Device)[];
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (k === 'vlans') {
      if (JSON.stringify(a.vlans) !== JSON.stringify(b.vlans)) return false;
    } else if (a[k] !== b[k]) return false;
  }
  return true;
}

/** The rows a write must touch: from the step that derived `next` (a claim, a revoke), else by comparing all. */
function changedDevices(prev: Devices, next: Devices): { serials: string[]; docs: (string | null)[] } {
  const serials: string[] = [];
  const docs: (string | null)[] = [];
  const step = stepBetween(prev, next);
  if (step) {
    for (const [serial, d] of step) {
      if (sameDevice(prev[serial], d ?? undefined)) continue;
      serials.push(serial);
      docs.push(d === null ? null : JSON.stringify(d));
    }
    return { serials, docs };
  }
  for (const [serial, d] of Object.entries(next)) {
    if (!sameDevice(prev[serial], d)) {
      serials.push(serial);
      docs.push(JSON.stringify(d));
    }
  }
  for (const serial of Object.keys(prev)) {
    if (!next[serial]) {
      serials.push(serial);
      docs.push(null);
    }
  }
  return { serials, docs };
}

export class PostgresRegistryStore implements RegistryStore {
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  readonly #backoff: { min: number; max: number };
  #snap: Snapshot = NOTHING;
  #listener: pg.Client | null = null;
  #connected = false;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;
  #attempt = 0;
  #refreshing: Promise<void> | null = null;
  #dirty = false;
  /** The revision this store is committing: its own NOTIFY may arrive before update() returns. */
  #writing = -1;
  readonly #watchers = new Set<() => void>();

  private constructor(
    readonly url: string,
    o: PostgresStoreOptions,
  ) {
    this.#log = o.log ?? silentLogger;
    this.#backoff = { min: o.backoffMs?.min ?? 250, max: o.backoffMs?.max ?? 10_000 };
    this.#pool = new pg.Pool({ connectionString: url, max: 4, idleTimeoutMillis: 30_000 });
    // An idle pooled connection that dies emits here; without a handler it would crash the process.
    this.#pool.on('error', (e) => this.#log.debug('registry database pool connection lost', { error: e.message }));
  }

  /** Connects, brings the schema up to date, loads the registry and subscribes; fails if the database is unreachable. */
  static async open(url: string, o: PostgresStoreOptions = {}): Promise<PostgresRegistryStore> {
    const s = new PostgresRegistryStore(url, o);
    try {
      const c = await s.#pool.connect().catch((e: unknown) => {
        throw dbError('cannot connect', e);
      });
      try {
        const m = await migrate(c);
        if (m.from !== m.to) s.#log.info('registry database schema migrated', { from: m.from, to: m.to });
      } finally {
        c.release();
      }
      await s.reload();
      await s.#listen();
    } catch (e) {
      await s.close();
      throw dbError('cannot open', e);
    }
    return s;
  }

  current(): Registry {
    return this.#snap.reg;
  }

  get revision(): number {
    return this.#snap.rev;
  }

  status(): RegistryStatus {
    return { backend: 'postgres', connected: this.#connected, revision: this.#snap.rev };
  }

  async reload(): Promise<Registry> {
    const before = this.#snap;
    await this.#inTransaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (c) => {
      // Adopt only a newer snapshot: a concurrent refresh may have got further meanwhile.
      const next = await pull(c, before, false);
      if (next.rev !== this.#snap.rev && (this.#snap === before || next.rev > this.#snap.rev)) this.#snap = next;
    });
    return this.#snap.reg;
  }

  async update(change: (reg: Registry) => Registry): Promise<Registry> {
    const done = await this.#inTransaction('BEGIN', async (c) => {
      this.#writing = -1;
      // The row lock serialises writers; once held, READ COMMITTED sees every earlier writer's commit.
      const cur = await pull(c, this.#snap, true);
      const next = change(cur.reg);
      const { serials, docs } = changedDevices(cur.reg.devices, next.devices);
      const tenants = JSON.stringify(next.tenants);
      const denylist = JSON.stringify(next.denylist);
      if (serials.length === 0 && tenants === JSON.stringify(cur.reg.tenants) && denylist === JSON.stringify(cur.reg.denylist)) {
        return cur;
      }
      const rev = cur.rev + 1;
      if (serials.length > 0) {
        await c.query(
          `INSERT INTO ck_devices (serial, doc, rev) SELECT s, d, $3 FROM unnest($1::text[], $2::jsonb[]) AS t(s, d)
           ON CONFLICT (serial) DO UPDATE SET doc = EXCLUDED.doc, rev = EXCLUDED.rev`,
          [serials, docs, rev],
        );
      }
      await c.query('UPDATE ck_registry SET rev = $1, tenants = $2, denylist = $3, updated_at = now() WHERE id = 1', [
        rev,
        tenants,
        denylist,
      ]);
      // Delivered at COMMIT, to every listener, in commit order.
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, String(rev)]);
      this.#writing = rev;
      return { reg: next, rev, shape: '' };
    }).catch((e: unknown) => {
      // A failed COMMIT notifies nobody, and another writer may commit this revision number next.
      this.#writing = -1;
      throw e;
    });
    if (done.rev > this.#snap.rev) this.#snap = done;
    return done.reg;
  }

  watch(onChange: () => void): () => void {
    this.#watchers.add(onChange);
    return () => this.#watchers.delete(onChange);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    const l = this.#listener;
    this.#listener = null;
    this.#connected = false;
    await l?.end().catch(() => {});
    await this.#refreshing?.catch(() => {});
    await this.#pool.end().catch(() => {});
  }

  /** Empties the registry (`connector registry migrate --force`): every device becomes a tombstone. */
  async clear(): Promise<void> {
    await this.update(() => EMPTY_REGISTRY);
  }

  async #inTransaction<T>(begin: string, body: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.#pool.connect();
    } catch (e) {
      throw dbError('cannot connect', e);
    }
    let broken = false;
    // A checked-out client whose connection dies emits 'error'; the failed query reports it to the caller.
    const onError = (): void => {
      broken = true;
    };
    c.on('error', onError);
    try {
      await c.query(begin);
      const r = await body(c);
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw e instanceof ConnectorError ? e : dbError('query failed', e);
    } finally {
      c.removeListener('error', onError);
      c.release(broken);
    }
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    const lost = (why: string): void => {
      if (this.#listener !== client) return;
      this.#listener = null;
      this.#connected = false;
      client.end().catch(() => {});
      if (this.#closed) return;
      this.#log.warn('registry database connection lost; keeping the last good registry', {
        error: why,
        revision: this.#snap.rev,
      });
      this.#scheduleReconnect();
    };
    client.on('error', (e) => lost(e.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', (n) => {
      const rev = Number(n.payload);
      if (n.channel === CHANNEL && rev !== this.#snap.rev && rev !== this.#writing) this.#refresh();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.#listener = client;
    this.#connected = true;
  }

  #scheduleReconnect(): void {
    const base = Math.min(this.#backoff.max, this.#backoff.min * 2 ** this.#attempt);
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.#attempt++;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#closed) return;
      this.#listen().then(
        () => {
          this.#log.info('registry database connection back', { attempts: this.#attempt });
          this.#attempt = 0;
          // Changes made while we were away were never notified to us: catch up now.
          this.#refresh();
        },
        (e: unknown) => {
          this.#log.debug('registry database reconnect failed', { error: errorMessage(e), attempt: this.#attempt });
          this.#scheduleReconnect();
        },
      );
    }, delay);
    this.#retry.unref();
  }

  /** Catches up after a notification; notifications arriving meanwhile coalesce into one more pass. */
  #refresh(): void {
    if (this.#refreshing) {
      this.#dirty = true;
      return;
    }
    const before = this.#snap.rev;
    this.#refreshing = this.reload()
      .then(
        () => {
          if (this.#snap.rev !== before) for (const w of this.#watchers) w();
        },
        (e: unknown) => this.#log.error('registry refresh failed; keeping the last good registry', { error: errorMessage(e) }),
      )
      .finally(() => {
        this.#refreshing = null;
        if (this.#dirty && !this.#closed) {
          this.#dirty = false;
          this.#refresh();
        }
      });
  }
}

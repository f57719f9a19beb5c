// SPDX-License-Identifier: UNLICENSED
// The registry's tables in PostgreSQL and their versioned migrations. Tenants (with their segments) and
// the denylist are small and live in one row; devices are one row each, stamped with the revision that
// last wrote them, so a reader fetches only what changed since the revision it holds (100,000 units make
// a whole-document reload on every change too slow). A removed device stays as a row with a NULL doc
// (a tombstone) so readers learn about the removal the same way.
import type pg from 'pg';
import { ConnectorError } from '../errors.js';

/** Migration N (1-based) brings the schema from version N-1 to N. Append only; never edit a shipped one. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE ck_registry (
     id integer PRIMARY KEY CHECK (id = 1),
     rev bigint NOT NULL,
     tenants jsonb NOT NULL,
     denylist jsonb NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now()
   );
   INSERT INTO ck_registry (id, rev, tenants, denylist) VALUES (1, 0, '{}', '[]');
   CREATE TABLE ck_devices (serial text PRIMARY KEY, doc jsonb, rev bigint NOT NULL);
   CREATE INDEX ck_devices_rev ON ck_devices (rev);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
/** The NOTIFY channel; the payload is the new revision. */
export const CHANNEL = 'ck_registry';

/**
 * Brings the database to SCHEMA_VERSION in one transaction. An advisory lock makes concurrent starters
 * (a headend and an EST server booting together) wait for each other instead of racing the DDL.
 */
export async function migrate(client: pg.ClientBase): Promise<{ from: number; to: number }> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('ck_registry_schema'))`);
    await client.query('CREATE TABLE IF NOT EXISTS ck_schema (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)');
    const r = await client.query<{ version: number }>('SELECT version FROM ck_schema WHERE id = 1');
    const from = r.rows[0]?.version ?? 0;
    if (from > SCHEMA_VERSION) {
      throw new ConnectorError(
        'CK_ERR_REGISTRY',
        `registry database schema is version ${from}, newer than this kit's ${SCHEMA_VERSION}: upgrade the kit`,
      );
    }
    for (let v = from; v < SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v] as string);
    await client.query('INSERT INTO ck_schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version', [
      SCHEMA_VERSION,
    ]);
    await client.query('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  }
}

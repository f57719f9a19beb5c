// SPDX-License-Identifier: UNLICENSED
// A throwaway PostgreSQL server for one test file: initdb in a temp dir as the `postgres` user (initdb
// refuses root), listening only on a unix socket in that dir, trust auth, stopped and removed in t.after
// even when the test fails. Each caller gets its own database on it.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { skipOrFail } from './skip.js';

const BIN = process.env['CK_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

export interface TestPostgres {
  /** A URL for a fresh, empty database on this server. */
  newDatabase(): string;
  /** Stops the server (the tests of connection loss); `start` brings it back on the same socket. */
  stop(): void;
  start(): void;
  readonly socketDir: string;
}

function pgUser(): { uid: number; gid: number; name: string } | null {
  const me = userInfo();
  if (me.uid !== 0) return { uid: me.uid, gid: me.gid, name: me.username };
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid, name: 'postgres' };
  } catch {
    return null;
  }
}

/** The reason PostgreSQL cannot run here, or undefined. */
export function postgresMissing(): string | undefined {
  if (!existsSync(join(BIN, 'initdb')) || !existsSync(join(BIN, 'pg_ctl')))
    return `PostgreSQL not found in ${BIN} (apt-get install postgresql)`;
  if (!pgUser()) return 'no postgres user to run initdb as (it refuses root)';
  return undefined;
}

/** Starts a server for this test (skips it outside CI when PostgreSQL is missing; fails it under CI). */
export function startPostgres(t: TestContext): TestPostgres | null {
  const missing = postgresMissing();
  if (missing) {
    skipOrFail(t, missing);
    return null;
  }
  const user = pgUser()!;
  const dir = mkdtempSync(join(tmpdir(), 'ck-pg-'));
  chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const asPg = (cmd: string, args: string[]): void => {
    const run = userInfo().uid === 0 ? ['runuser', ['-u', user.name, '--', join(BIN, cmd), ...args]] : [join(BIN, cmd), args];
    execFileSync(run[0] as string, run[1] as string[], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000, cwd: dir });
  };
  const start = (): void =>
    asPg('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', '-o', `-k ${dir} -c listen_addresses= -c fsync=off`, 'start']);
  let running = false;
  t.after(() => {
    if (running) {
      try {
        asPg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already down
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  asPg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  start();
  running = true;
  let n = 0;
  const psql = (sql: string): void => {
    execFileSync(join(BIN, 'psql'), ['-h', dir, '-U', 'postgres', '-d', 'postgres', '-qAtc', sql], { stdio: 'pipe', timeout: 30_000 });
  };
  return {
    socketDir: dir,
    newDatabase() {
      const db = `ck_${process.pid}_${++n}`;
      psql(`CREATE DATABASE ${db}`);
      return `postgres://postgres@/${db}?host=${encodeURIComponent(dir)}`;
    },
    stop() {
      asPg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      running = false;
    },
    start() {
      start();
      running = true;
    },
  };
}

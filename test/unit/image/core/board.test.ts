// SPDX-License-Identifier: UNLICENSED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseBoardConfig } from '../../../../src/image/core/board.js';
import { isImageFailure } from '../../../../src/image/core/errors.js';

const TEXT = readFileSync(fileURLToPath(new URL('../../../../board/nanopi-r3s/board.json', import.meta.url)), 'utf8');

test('the R3S board file: rockchip/armv8, its profile, kmod-tun, a fixed ROOTFS_PARTSIZE, eth1 LAN / eth0 WAN', () => {
  const b = parseBoardConfig(TEXT);
  assert.equal(b.target, 'rockchip/armv8');
  assert.equal(b.profile, 'friendlyarm_nanopi-r3s');
  assert.equal(b.boardName, 'friendlyarm,nanopi-r3s');
  assert.ok(b.packages.includes('kmod-tun'));
  assert.equal(b.rootfsPartsizeMib, 512);
  assert.deepEqual(b.interfaces, { lan: 'eth1', wan: 'eth0', tap: 'tap-dr', bridge: 'br-lan' });
});

test('bad values are refused naming the key', () => {
  const bad = (patch: Record<string, unknown>, key: RegExp): void => {
    assert.throws(
      () => parseBoardConfig(JSON.stringify({ ...(JSON.parse(TEXT) as object), ...patch })),
      (e: unknown) => isImageFailure(e, 'board-invalid') && key.test((e as Error).message),
    );
  };
  bad({ rootfsPartsizeMib: 0 }, /rootfsPartsizeMib/);
  bad({ rootfsPartsizeMib: 104.5 }, /rootfsPartsizeMib/);
  bad({ packages: ['kmod tun'] }, /packages/);
  bad({ interfaces: { lan: 'eth1', wan: 'eth0', tap: 'a-name-longer-than-15', bridge: 'br-lan' } }, /interfaces\.tap/);
  bad({ boardName: 'nanopi-r3s' }, /boardName/);
});

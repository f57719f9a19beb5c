// SPDX-License-Identifier: UNLICENSED
// Preloaded with NODE_OPTIONS="--import <this file>" (node refuses --cpu-prof there): the first SIGUSR2
// starts sampling with the in-process inspector, the second writes CK_CPU_PROF_DIR/CPU.<pid>.cpuprofile,
// so the profile covers the load window only (no startup, no module loading). The in-thread inspector
// session answers synchronously.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.CK_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: Number(process.env.CK_CPU_PROF_US ?? 200) });
  let on = false;
  process.on('SIGUSR2', () => {
    if (!on) {
      on = true;
      session.post('Profiler.start');
      return;
    }
    on = false;
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `CPU.${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}

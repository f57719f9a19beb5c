// SPDX-License-Identifier: UNLICENSED
// The agent binary exactly as the image build makes it (src/image/adapters: bundle -> SEA blob -> postject
// -> strip -> patchelf, the glibc runtime in /usr/lib/connector, the TAP addon cross-compiled as an
// asset), laid out in `root` as in the image: usr/bin/connector-agent, usr/lib/connector/*.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../../../src/shared/exec.js';
import { assembleGlibcRuntime } from '../../../src/image/adapters/glibc-runtime.js';
import { bundleAgent, buildSea, launcherSource, unpackNpmTarball } from '../../../src/image/adapters/sea.js';
import { REPO, type AgentInputs } from './inputs.js';

export const RUNTIME_DIR = '/usr/lib/connector';
export const AGENT_PATH = '/usr/bin/connector-agent';

export interface AgentBinary {
  path: string;
  size: number;
  sha256: string;
}

export async function buildAgentBinary(inputs: AgentInputs, work: string, root: string): Promise<AgentBinary> {
  const host = await unpackNpmTarball(inputs.nodeHost, join(work, 'node-host'));
  const target = await unpackNpmTarball(inputs.nodeTarget, join(work, 'node-target'));
  const postject = await unpackNpmTarball(inputs.postject, join(work, 'postject'));
  const addon = join(work, 'tap.node');
  await exec('bash', [join(REPO, 'scripts/build-addon-arm64.sh'), addon], {
    cwd: REPO,
    env: { ...process.env, NODE_INCLUDE: join(host, 'include/node') },
  });
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  await assembleGlibcRuntime(inputs.glibc, join(work, 'glibc'), join(root, RUNTIME_DIR));
  const bundle = await bundleAgent(join(REPO, 'src/agent/cli.ts'), REPO, '0.0.0-arm64-vm');
  const out = join(root, AGENT_PATH);
  const sea = await buildSea({
    workDir: join(work, 'sea'),
    hostNode: join(host, 'bin/node'),
    targetNode: join(target, 'bin/node'),
    postjectDir: postject,
    launcher: launcherSource(bundle),
    tapAddon: addon,
    runtimeDir: RUNTIME_DIR,
    out,
    strip: 'aarch64-linux-gnu-strip',
  });
  return { path: out, size: sea.size, sha256: sea.sha256 };
}

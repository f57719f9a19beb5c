// SPDX-License-Identifier: UNLICENSED
// The Rollouts page: every rollout live, and with the rollout controller (admins) start, pause, resume
// and widen.
import { $, api, button, cell, fillSelect, state } from './common.js';

export async function loadRollouts() {
  const { rollouts, problems } = await api('/api/rollouts');
  $('#rollouts-problems').textContent = problems.length ? `Not shown: ${problems.join('; ')}` : '';
  const tbody = $('#rollouts-table tbody');
  tbody.replaceChildren();
  const ub = $('#rollout-units tbody');
  ub.replaceChildren();
  for (const r of rollouts) {
    const tr = document.createElement('tr');
    tr.dataset.rollout = r.id;
    tr.dataset.status = r.status;
    const c = r.counts;
    const status = r.status === 'paused' && r.pauseReason ? `paused: ${r.pauseReason}` : r.status;
    for (const v of [r.id, r.version, status, `${c.inCohort} of ${c.units}`, c.succeeded, c.failed, c.inProgress, r.createdAt]) cell(tr, v);
    const actions = document.createElement('td');
    if (state.rolloutControl && state.me.role === 'admin') {
      if (r.status === 'active') actions.appendChild(button('Pause', `Pause rollout ${r.id}`, () => steerRollout(r.id, 'pause')));
      if (r.status === 'paused') actions.appendChild(button('Resume', `Resume rollout ${r.id}`, () => steerRollout(r.id, 'resume')));
      if (r.status === 'completed' && c.inCohort < c.units)
        actions.appendChild(
          button('Widen to all', `Widen rollout ${r.id} to every unit`, () => steerRollout(r.id, 'widen', { cohort: '100%' })),
        );
    }
    tr.appendChild(actions);
    tbody.appendChild(tr);
    for (const u of r.units) {
      const row = document.createElement('tr');
      row.dataset.serial = u.serial;
      const state = u.percent !== null && u.state === 'downloading' ? `downloading ${u.percent} %` : u.state;
      for (const v of [r.id, u.serial, u.tenant, u.inCohort ? 'yes' : 'no', state, u.version, u.reason, u.updatedAt]) cell(row, v);
      ub.appendChild(row);
    }
  }
}

export async function steerRollout(id, action, body = {}) {
  try {
    const r = await api(`/api/rollouts/${encodeURIComponent(id)}/${action}`, { method: 'POST', body: JSON.stringify(body) });
    $('#rollout-result').textContent = `rollout ${r.rolloutId} is ${r.status}`;
  } catch (err) {
    // A rollout paused at its failure threshold: the operator is asked before the failures are accepted.
    if (action === 'resume' && /acceptFailures/.test(err.message) && confirm(`${err.message}\n\nResume anyway?`))
      return steerRollout(id, action, { acceptFailures: true });
    $('#rollout-result').textContent = `not ${action}d: ${err.message}`;
  }
  await loadRollouts().catch(() => {});
}

export async function loadReleases() {
  const { releases } = await api('/api/releases');
  fillSelect(
    $('#rollout-release'),
    releases.map((r) => [r.name, `${r.version} (${r.name})`]),
  );
}

$('#rollout-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const r = await api('/api/rollouts', {
      method: 'POST',
      body: JSON.stringify({
        release: $('#rollout-release').value,
        cohort: $('#rollout-cohort').value,
        failThreshold: Number($('#rollout-threshold').value),
        maxParallel: Number($('#rollout-parallel').value),
      }),
    });
    $('#rollout-result').textContent = `rollout ${r.rolloutId} started`;
  } catch (err) {
    $('#rollout-result').textContent = `not started: ${err.message}`;
  }
  await loadRollouts().catch(() => {});
});

// SPDX-License-Identifier: UNLICENSED
// The console page's shared pieces: the page state, the JSON API client and small DOM helpers.

export const state = {
  me: null,
  csrf: '',
  units: [],
  tenants: [],
  events: null,
  unit: null,
  detail: null,
  detailAt: 0,
  samples: new Map(),
};
/** Throughput samples kept per unit: 5 minutes at one-second polls. */
export const SAMPLES = 300;
export const SVG = 'http://www.w3.org/2000/svg';
export const $ = (sel) => document.querySelector(sel);

export async function api(path, options = {}) {
  const headers = {
    ...(options.body ? { 'content-type': 'application/json' } : {}),
    ...(state.csrf ? { 'x-csrf-token': state.csrf } : {}),
  };
  const res = await fetch(path, { credentials: 'same-origin', ...options, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

export function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

/** A labelled button (the label is what a screen reader says: the action and its object). */
export function button(text, label, onClick, cls) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

/** Whether this operator may change what belongs to `tenant` (the server decides; this only hides buttons). */
export const mayChange = (tenant) => state.me.role === 'admin' || (state.me.role === 'msp' && state.me.tenants.includes(tenant));

export function since(ms) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Fills a table body with one row per object, the named columns in order. */
export function fillRows(tbody, rows, cols) {
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const c of cols) cell(tr, typeof c === 'function' ? c(r) : r[c]);
    tbody.appendChild(tr);
  }
}

/** Replaces a select's options with [value, text] pairs, keeping the current choice when it is still offered. */
export function fillSelect(select, pairs) {
  const keep = select.value;
  select.replaceChildren();
  for (const [value, text] of pairs) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    select.appendChild(o);
  }
  if (keep) select.value = keep;
}

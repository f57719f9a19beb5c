// SPDX-License-Identifier: UNLICENSED
// Public surface of the device identity: what src/agent/main.ts wires in.
export { ensureIdentity, renewAtOf, type IdentityOptions } from './enroll.js';
export { runRenewal, type RenewalOptions } from './renewal.js';
export { IdentityStatusTracker, type IdentityState, type IdentityStatus } from '../../core/identity-status.js';
export { systemClock, checkClock, DEFAULT_MIN_TIME_S, type WallClock } from './clock.js';
export { loadIdentity, identityPaths, type Identity } from './store.js';

import type { IdentityStatus, IdentityStatusTracker as Tracker } from '../../core/identity-status.js';
/** Plain-data snapshot for the status socket: `identityStatus(tracker)`. */
export const identityStatus = (tracker: Tracker): IdentityStatus => tracker.snapshot();

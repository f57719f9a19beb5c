// SPDX-License-Identifier: UNLICENSED
// A send thread and its ring (tx-ring.c): the event loop copies a job in and goes on; the thread runs the
// jobs one after another, in the order they were queued, so the system calls of sending (the kernel's
// work for a datagram or a frame) happen on another core. One producer (the loop), one consumer.
#ifndef CK_TX_RING_H
#define CK_TX_RING_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tx_ring tx_ring_t;
// Runs one job on the thread; `job` is what the loop wrote after tx_ring_reserve.
typedef void (*tx_ring_run)(void *owner, uint8_t *job);

// Starts a thread named `name` (at most 15 characters) with a ring of `cap` bytes; NULL when out of
// memory or threads (errno-like code in *err).
tx_ring_t *tx_ring_start(size_t cap, const char *name, tx_ring_run run, void *owner, int *err);
// Room for a job of `size` bytes, 8-aligned, or NULL when the ring has none (the job is dropped).
uint8_t *tx_ring_reserve(tx_ring_t *r, size_t size);
// Hands the job just reserved and written to the thread.
void tx_ring_commit(tx_ring_t *r);
// Bytes queued and not yet run.
uint64_t tx_ring_queued(tx_ring_t *r);
// Stops and joins the thread, calls `discard` for each job it had not run, frees the ring.
void tx_ring_stop(tx_ring_t *r, tx_ring_run discard);
#endif

// SPDX-License-Identifier: UNLICENSED
// The send thread's ring (tx-ring.h). Positions count bytes ever written and read; a job that does not
// fit before the ring's end starts again at its beginning, behind a wrap mark (size 0) when one fits.
// The loop copies outside the lock: only it writes past wpos, and the thread never reads past it.
#include "tx-ring.h"
#include <stdlib.h>
#include <sys/prctl.h>

typedef struct job_head {
  uint32_t size;  // bytes of the record, header included; 0: the rest of the ring is unused
  uint32_t pad;
} job_head_t;

struct tx_ring {
  uv_thread_t th;
  uv_mutex_t mu;
  uv_cond_t cv;
  uint8_t *buf;
  size_t cap;
  uint64_t wpos, rpos;
  uint64_t pending;                // wpos once the reserved job is committed
  int stop, sleeping;
  tx_ring_run run;
  void *owner;
  char name[16];
};

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

// The record at position p, or NULL past a wrap (and p moved to the ring's start).
static job_head_t *at(tx_ring_t *r, uint64_t *p) {
  size_t off = (size_t)(*p % r->cap);
  job_head_t *h = (job_head_t *)(r->buf + off);
  if (r->cap - off < sizeof *h || h->size == 0) {
    *p += r->cap - off;
    return NULL;
  }
  return h;
}

static void thread_main(void *arg) {
  tx_ring_t *r = arg;
  prctl(PR_SET_NAME, r->name, 0, 0, 0);
  uv_mutex_lock(&r->mu);
  for (;;) {
    while (r->rpos == r->wpos && !r->stop) {
      r->sleeping = 1;
      uv_cond_wait(&r->cv, &r->mu);
      r->sleeping = 0;
    }
    if (r->stop) break;
    uint64_t p = r->rpos, w = r->wpos;
    uv_mutex_unlock(&r->mu);
    while (p < w) {
      job_head_t *h = at(r, &p);
      if (h == NULL) continue;
      r->run(r->owner, (uint8_t *)(h + 1));
      p += h->size;
      // Room back to the loop as each job ends, not after the whole run.
      uv_mutex_lock(&r->mu);
      r->rpos = p;
      uv_mutex_unlock(&r->mu);
    }
    uv_mutex_lock(&r->mu);
    r->rpos = p;  // also past a wrap mark that ended the run
  }
  uv_mutex_unlock(&r->mu);
}

tx_ring_t *tx_ring_start(size_t cap, const char *name, tx_ring_run run, void *owner, int *err) {
  tx_ring_t *r = calloc(1, sizeof *r);
  if (r != NULL) r->buf = malloc(cap);
  if (r == NULL || r->buf == NULL) {
    if (r != NULL) free(r);
    *err = UV_ENOMEM;
    return NULL;
  }
  r->cap = cap;
  r->run = run;
  r->owner = owner;
  for (size_t i = 0; i < sizeof r->name - 1 && name[i] != '\0'; i++) r->name[i] = name[i];
  int rc = uv_mutex_init(&r->mu);
  if (rc == 0 && (rc = uv_cond_init(&r->cv)) != 0) uv_mutex_destroy(&r->mu);
  if (rc == 0 && (rc = uv_thread_create(&r->th, thread_main, r)) != 0) {
    uv_cond_destroy(&r->cv);
    uv_mutex_destroy(&r->mu);
  }
  if (rc != 0) {
    free(r->buf);
    free(r);
    *err = rc;
    return NULL;
  }
  return r;
}

uint8_t *tx_ring_reserve(tx_ring_t *r, size_t size) {
  size_t need = align8(sizeof(job_head_t) + size);
  if (need > r->cap) return NULL;
  uv_mutex_lock(&r->mu);
  uint64_t w = r->wpos, rp = r->rpos;
  uv_mutex_unlock(&r->mu);
  size_t off = (size_t)(w % r->cap);
  size_t pad = r->cap - off < need ? r->cap - off : 0;
  if (w + pad + need - rp > r->cap) return NULL;
  if (pad >= sizeof(job_head_t)) ((job_head_t *)(r->buf + off))->size = 0;
  job_head_t *h = (job_head_t *)(r->buf + (size_t)((w + pad) % r->cap));
  h->size = (uint32_t)need;
  r->pending = w + pad + need;
  return (uint8_t *)(h + 1);
}

void tx_ring_commit(tx_ring_t *r) {
  uv_mutex_lock(&r->mu);
  r->wpos = r->pending;
  if (r->sleeping) uv_cond_signal(&r->cv);
  uv_mutex_unlock(&r->mu);
}

uint64_t tx_ring_queued(tx_ring_t *r) {
  uv_mutex_lock(&r->mu);
  uint64_t q = r->wpos - r->rpos;
  uv_mutex_unlock(&r->mu);
  return q;
}

void tx_ring_stop(tx_ring_t *r, tx_ring_run discard) {
  uv_mutex_lock(&r->mu);
  r->stop = 1;
  uv_cond_signal(&r->cv);
  uv_mutex_unlock(&r->mu);
  uv_thread_join(&r->th);
  for (uint64_t p = r->rpos; p < r->wpos;) {
    job_head_t *h = at(r, &p);
    if (h == NULL) continue;
    discard(r->owner, (uint8_t *)(h + 1));
    p += h->size;
  }
  uv_cond_destroy(&r->cv);
  uv_mutex_destroy(&r->mu);
  free(r->buf);
  free(r);
}

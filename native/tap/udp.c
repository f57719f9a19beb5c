// SPDX-License-Identifier: UNLICENSED
// The datagram channel's UDP socket in C (docs/datagram.md): node's dgram makes one JS call, one Buffer
// and one address object per datagram received and one system call per datagram sent, which cost more
// than the AEAD. Here reads are drained per wake-up into one reused buffer with ONE JS call per batch,
// the kernel coalesces a peer's datagrams on the way in (UDP_GRO, split again here) and sends go out
// several per system call (sendmmsg), a run of equal-sized datagrams to one peer as one UDP GSO send
// (UDP_SEGMENT): the kernel cuts it, and on loopback or veth it travels whole to a GRO reader.
//
// Batch layout handed to JS: repeated [u16 little-endian length][u16 big-endian source port]
// [16 bytes source address: IPv4 in the first 4][datagram], `count` records, `used` bytes.
//
// With udpSendThread(h) the system calls of sending leave the loop: udpSend copies the task's datagrams
// into a ring and a thread of the socket's own ("ck-udp-tx") hands them to the kernel, which does the
// UDP/IP work, the GSO cut and the checksums on that thread's core. One ring, one thread, jobs in the
// order they were queued: the socket's datagrams never overtake each other. Off by default: measured, it
// costs more CPU in all than it takes off the loop (docs/performance.md, "Send threads").
#define NAPI_VERSION 8
#define _GNU_SOURCE 1 // sendmmsg, struct mmsghdr
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>
#include "tx-ring.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#define REC_HEADER 20u
#define READ_ROOM 65536u             // one read: a datagram, or a GRO train of them
#define BATCH_BYTES (512u * 1024u)
#define MAX_BATCH 1024u
#define GSO_MAX_SEGS 64u
#define GSO_MAX_BYTES 60000u          // a GSO send is one UDP payload of at most 64 KB, headers aside
#define MAX_SEND 1024u
// The send ring: one task's datagrams at most (the endpoint's 1 MB arena) twice over. It is work in
// progress, not a queue that stands: a datagram the kernel cannot take is dropped, as on the loop.
#define TX_RING (2u * 1024u * 1024u)

// Working space of one sender (the loop's, or the send thread's): send_runs' message arrays.
typedef struct send_space {
  struct mmsghdr *msgs;
  struct iovec *iov;
  uint32_t *first, *segs;
  char (*ctrl)[CMSG_SPACE(sizeof(uint16_t))];
} send_space_t;

// One udpSend call in the ring: this, then n u16 lengths (8-aligned), then the datagrams.
typedef struct tx_job {
  uint32_t n;
  socklen_t tolen;                 // 0: the connected peer
  struct sockaddr_storage to;
} tx_job_t;

typedef struct udp {
  int fd;
  int family;
  napi_env env;
  uv_poll_t *poll;
  napi_ref cb, buf, self;
  napi_async_context actx;
  uint8_t *data, *scratch;
  uint32_t max_batch;
  int in_callback;
  int gro, gso;                       // the kernel took UDP_GRO; UDP_SEGMENT has not failed (atomic: both senders)
  double truncated, recv_errors, send_errors, dropped;
  int last_errno;
  // send_runs' working space, per socket (worker threads each load the addon but share its statics).
  send_space_t sp;
  tx_ring_t *tx;                      // NULL: the loop sends itself
  send_space_t tx_sp;                 // the send thread's own working space
  // The send thread's counters (atomic: the loop reads them for stats).
  uint64_t tx_errors, tx_dropped;
  int tx_last_errno;
} udp_t;

static const char *errno_name(int err) {
#define E(x) case x: return #x;
  switch (err) {
    E(EPERM) E(EINTR) E(EIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EINVAL) E(EMSGSIZE)
    E(ENOBUFS) E(EADDRINUSE) E(EADDRNOTAVAIL) E(EAFNOSUPPORT) E(ECONNREFUSED) E(EHOSTUNREACH) E(ENETUNREACH)
    E(ENOTSOCK) E(ENOPROTOOPT) E(ENOTCONN) E(EDESTADDRREQ)
  }
#undef E
  return "EUNKNOWN";
}

// An Error shaped like node's own: code 'EADDRINUSE', errno -98, syscall, address and port.
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *addr, int port) {
  char msg[256];
  const char *name = errno_name(err);
  snprintf(msg, sizeof msg, "%s %s %s:%d (%s)", syscall, name, addr, port, strerror(err));
  napi_value code, text, e, v;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &e);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_create_string_utf8(env, addr, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "address", v);
  napi_create_int32(env, port, &v);
  napi_set_named_property(env, e, "port", v);
  return e;
}

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, "EINVAL", msg);
  return NULL;
}

static void release_js(udp_t *u) {
  if (u->cb) { napi_delete_reference(u->env, u->cb); u->cb = NULL; }
  if (u->buf) { napi_delete_reference(u->env, u->buf); u->buf = NULL; }
  if (u->self) { napi_delete_reference(u->env, u->self); u->self = NULL; }
  if (u->actx) { napi_async_destroy(u->env, u->actx); u->actx = NULL; }
}

static void free_space(send_space_t *sp) {
  free(sp->msgs);
  free(sp->iov);
  free(sp->first);
  free(sp->segs);
  free(sp->ctrl);
  memset(sp, 0, sizeof *sp);
}

static int alloc_space(send_space_t *sp) {
  sp->msgs = calloc(MAX_SEND, sizeof *sp->msgs);
  sp->iov = calloc(MAX_SEND, sizeof *sp->iov);
  sp->first = calloc(MAX_SEND, sizeof *sp->first);
  sp->segs = calloc(MAX_SEND, sizeof *sp->segs);
  sp->ctrl = calloc(MAX_SEND, sizeof *sp->ctrl);
  if (sp->msgs && sp->iov && sp->first && sp->segs && sp->ctrl) return 1;
  free_space(sp);
  return 0;
}

static void tx_discard(void *owner, uint8_t *job) {
  udp_t *u = owner;
  u->dropped += ((tx_job_t *)job)->n;
}

// Stops the send thread (what it has not sent yet is dropped with the socket, and counted).
static void tx_stop(udp_t *u) {
  if (u->tx == NULL) return;
  tx_ring_stop(u->tx, tx_discard);
  u->tx = NULL;
  free_space(&u->tx_sp);
  u->send_errors += (double)u->tx_errors;
  u->dropped += (double)u->tx_dropped;
  u->tx_errors = u->tx_dropped = 0;
  if (u->tx_last_errno) u->last_errno = u->tx_last_errno;
}

static void udp_close(udp_t *u) {
  tx_stop(u);
  if (u->poll) {
    uv_poll_stop(u->poll);
    // libc's free as the close callback: the addon may be unloaded before the loop runs it (see tap.c).
    uv_close((uv_handle_t *)u->poll, (uv_close_cb)(void (*)(void))free);
    u->poll = NULL;
  }
  if (u->fd >= 0) { close(u->fd); u->fd = -1; }
  free(u->scratch);
  u->scratch = NULL;
  if (!u->in_callback) release_js(u);
}

static void cleanup_hook(void *arg) { udp_close(arg); }

static void finalize(napi_env env, void *data, void *hint) {
  udp_t *u = data;
  napi_remove_env_cleanup_hook(env, cleanup_hook, u);
  udp_close(u);
  free_space(&u->sp);
  free(u);
}

static udp_t *unwrap(napi_env env, napi_value obj) {
  void *u = NULL;
  if (napi_unwrap(env, obj, &u) != napi_ok || u == NULL) { fail(env, "not a UDP handle"); return NULL; }
  return u;
}

static int get_string(napi_env env, napi_value v, char *out, size_t size) {
  size_t len = 0;
  return napi_get_value_string_utf8(env, v, out, size, &len) == napi_ok && len > 0 && len < size - 1;
}

// An IP literal and port as a socket address of the socket's family (IPv4 in IPv6 as ::ffff:a.b.c.d).
static int make_addr(int family, const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof *a;
    return inet_pton(AF_INET, ip, &a->sin_addr) == 1;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)port);
  *len = sizeof *a;
  if (inet_pton(AF_INET6, ip, &a->sin6_addr) == 1) return 1;
  struct in_addr v4;
  if (inet_pton(AF_INET, ip, &v4) != 1) return 0;
  a->sin6_addr.s6_addr[10] = a->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
  return 1;
}

// udpOpen(ip, port, rcvbuf, sndbuf, pmtuProbe) -> { fd, port, gro }: a non-blocking socket bound to ip:port
// (port 0: the kernel picks), DF on every packet with the channel's own path MTU search when pmtuProbe.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], obj, v;
  char ip[64];
  int32_t port = 0, rcvbuf = 0, sndbuf = 0;
  bool probe = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || !get_string(env, argv[0], ip, sizeof ip) ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || napi_get_value_int32(env, argv[2], &rcvbuf) != napi_ok ||
      napi_get_value_int32(env, argv[3], &sndbuf) != napi_ok || napi_get_value_bool(env, argv[4], &probe) != napi_ok || port < 0 ||
      port > 65535)
    return fail(env, "udpOpen(ip, port, rcvbuf, sndbuf, pmtuProbe)");
  struct in6_addr probe6;
  int family = inet_pton(AF_INET6, ip, &probe6) == 1 ? AF_INET6 : AF_INET;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!make_addr(family, ip, port, &ss, &sl)) return fail(env, "udpOpen: ip must be an IPv4 or IPv6 literal");
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return napi_throw(env, errno_error(env, errno, "socket", ip, port)), NULL;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (probe) {
    int mode = 3; // IP(V6)_PMTUDISC_PROBE: DF, no local fragmentation, no trust in ICMP's path MTU
    if (family == AF_INET) setsockopt(fd, IPPROTO_IP, 10 /* IP_MTU_DISCOVER */, &mode, sizeof mode);
    else setsockopt(fd, IPPROTO_IPV6, 23 /* IPV6_MTU_DISCOVER */, &mode, sizeof mode);
  }
  int one = 1;
  int gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int e = errno;
    close(fd);
    return napi_throw(env, errno_error(env, e, "bind", ip, port)), NULL;
  }
  struct sockaddr_storage bound;
  socklen_t bl = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bl);
  int bport = ntohs(family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port : ((struct sockaddr_in6 *)&bound)->sin6_port);
  udp_t *u = calloc(1, sizeof *u);
  if (u == NULL) { close(fd); return fail(env, "udpOpen: out of memory"); }
  u->fd = fd;
  u->family = family;
  u->env = env;
  u->gro = gro;
  u->gso = 1;
  if (!alloc_space(&u->sp)) {
    close(fd);
    free(u);
    return fail(env, "udpOpen: out of memory");
  }
  if (napi_create_object(env, &obj) != napi_ok || napi_wrap(env, obj, u, finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(u);
    return fail(env, "udpOpen: cannot wrap the socket");
  }
  napi_add_env_cleanup_hook(env, cleanup_hook, u);
  napi_create_int32(env, fd, &v);
  napi_set_named_property(env, obj, "fd", v);
  napi_create_int32(env, bport, &v);
  napi_set_named_property(env, obj, "port", v);
  napi_get_boolean(env, gro, &v);
  napi_set_named_property(env, obj, "gro", v);
  return obj;
}

// udpConnect(h, ip, port): only that peer's datagrams arrive, and sends need no address.
static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char ip[64];
  int32_t port = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return fail(env, "udpConnect(h, ip, port)");
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!get_string(env, argv[1], ip, sizeof ip) || napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 1 || port > 65535 ||
      !make_addr(u->family, ip, port, &ss, &sl))
    return fail(env, "udpConnect: ip must be an IP literal and port 1-65535");
  if (u->fd < 0) return fail(env, "udpConnect: the socket is closed");
  if (connect(u->fd, (struct sockaddr *)&ss, sl) < 0) return napi_throw(env, errno_error(env, errno, "connect", ip, port)), NULL;
  return NULL;
}

static void deliver(udp_t *u, uint32_t count, size_t used, napi_value err) {
  napi_env env = u->env;
  napi_value cb, self, argv[3], result;
  if (napi_get_reference_value(env, u->cb, &cb) != napi_ok || napi_get_reference_value(env, u->self, &self) != napi_ok) return;
  napi_create_uint32(env, count, &argv[0]);
  napi_create_uint32(env, (uint32_t)used, &argv[1]);
  if (err) argv[2] = err; else napi_get_undefined(env, &argv[2]);
  u->in_callback = 1;
  napi_status st = napi_make_callback(env, u->actx, self, cb, 3, argv, &result);
  u->in_callback = 0;
  if (u->fd < 0) release_js(u);
  if (st != napi_ok) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
}

static void put_record(udp_t *u, size_t *off, const struct sockaddr_storage *from, const uint8_t *d, size_t n) {
  uint8_t *r = u->data + *off;
  r[0] = (uint8_t)(n & 0xff);
  r[1] = (uint8_t)(n >> 8);
  memset(r + 4, 0, 16);
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)from;
    memcpy(r + 2, &a->sin_port, 2);
    memcpy(r + 4, &a->sin_addr, 4);
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    memcpy(r + 2, &a->sin6_port, 2);
    memcpy(r + 4, &a->sin6_addr, 16);
  }
  memcpy(r + REC_HEADER, d, n);
  *off += REC_HEADER + n;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  udp_t *u = h->data;
  napi_handle_scope scope;
  if (napi_open_handle_scope(u->env, &scope) != napi_ok) return;
  uint32_t count = 0;
  size_t off = 0;
  int err = status < 0 ? -status : 0;
  while (!err && (events & UV_READABLE) && count < u->max_batch && BATCH_BYTES - off >= READ_ROOM + REC_HEADER * GSO_MAX_SEGS * 2) {
    struct sockaddr_storage from;
    char ctrl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {u->scratch, READ_ROOM};
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
    ssize_t n = recvmsg(u->fd, &m, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // An ICMP error for an earlier send (port unreachable, no route): the path monitor sees the silence.
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH || errno == EMSGSIZE) {
        u->recv_errors++;
        u->last_errno = errno;
        continue;
      }
      err = errno;
      break;
    }
    if (m.msg_flags & MSG_TRUNC) { u->truncated++; continue; }
    size_t seg = (size_t)n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int g;
        memcpy(&g, CMSG_DATA(c), sizeof g);
        if (g > 0) seg = (size_t)g;
      }
    if (seg == 0) continue; // an empty datagram is nobody's
    for (size_t at = 0; at < (size_t)n; at += seg) {
      size_t len = (size_t)n - at < seg ? (size_t)n - at : seg;
      put_record(u, &off, &from, u->scratch + at, len);
      count++;
    }
  }
  napi_value e = NULL;
  if (err) {
    uv_poll_stop(h);
    e = errno_error(u->env, err, "recvmsg", "udp", 0);
  }
  if (count > 0 || e) deliver(u, count, off, e);
  napi_close_handle_scope(u->env, scope);
}

// udpStart(h, maxBatch, onBatch(count, used, err)) -> the batch Buffer (reused: read it in the callback).
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], buf, name;
  uint32_t max_batch = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return fail(env, "udpStart(h, maxBatch, onBatch)");
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  if (u->fd < 0) return fail(env, "udpStart: the socket is closed");
  if (u->poll != NULL) return fail(env, "udpStart: already started");
  if (napi_get_value_uint32(env, argv[1], &max_batch) != napi_ok || max_batch < 1 || max_batch > MAX_BATCH)
    return fail(env, "udpStart: maxBatch must be 1-1024");
  void *data = NULL;
  if (napi_create_buffer(env, BATCH_BYTES, &data, &buf) != napi_ok) return fail(env, "udpStart: out of memory");
  u->scratch = malloc(READ_ROOM);
  u->poll = calloc(1, sizeof *u->poll);
  if (u->scratch == NULL || u->poll == NULL) return fail(env, "udpStart: out of memory");
  u->data = data;
  u->max_batch = max_batch;
  if (napi_create_reference(env, argv[2], 1, &u->cb) != napi_ok || napi_create_reference(env, buf, 1, &u->buf) != napi_ok ||
      napi_create_reference(env, argv[0], 1, &u->self) != napi_ok)
    return fail(env, "udpStart: cannot keep the callback");
  napi_create_string_utf8(env, "udp", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &u->actx);
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  u->poll->data = u;
  if (uv_poll_init(loop, u->poll, u->fd) != 0 || uv_poll_start(u->poll, UV_READABLE, on_poll) != 0) return fail(env, "udpStart: cannot poll");
  return buf;
}

// What one sender's system calls came to: datagrams the kernel refused for good, and the last errno.
typedef struct send_count {
  double errors;
  int last_errno;
} send_count_t;

// Sends datagrams [from, n) as runs: equal-sized ones (the last may be shorter) as one GSO message
// when `gso`. Returns how many datagrams the kernel took; *stop is set when the socket is full.
static uint32_t send_runs(udp_t *u, send_space_t *sp, send_count_t *c, struct iovec *iov, uint32_t n, struct sockaddr_storage *to,
                          socklen_t tolen, int gso, int *stop) {
  struct mmsghdr *msgs = sp->msgs;
  uint32_t *first = sp->first, *segs = sp->segs;
  uint32_t nm = 0;
  for (uint32_t i = 0; i < n;) {
    size_t size = iov[i].iov_len, total = size;
    uint32_t j = i + 1;
    if (gso)
      while (j < n && j - i < GSO_MAX_SEGS && total + iov[j].iov_len <= GSO_MAX_BYTES && iov[j].iov_len <= size) {
        total += iov[j].iov_len;
        // A shorter datagram ends the run: GSO cuts at `size`, and only the last piece may be short.
        if (iov[j++].iov_len < size) break;
      }
    struct msghdr *m = &msgs[nm].msg_hdr;
    memset(m, 0, sizeof *m);
    m->msg_name = to;
    m->msg_namelen = tolen;
    m->msg_iov = &iov[i];
    m->msg_iovlen = j - i;
    if (j - i > 1) {
      m->msg_control = sp->ctrl[nm];
      m->msg_controllen = sizeof sp->ctrl[nm];
      struct cmsghdr *cm = CMSG_FIRSTHDR(m);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t s = (uint16_t)size;
      memcpy(CMSG_DATA(cm), &s, sizeof s);
    }
    first[nm] = i;
    segs[nm] = j - i;
    nm++;
    i = j;
  }
  uint32_t sent = 0;
  for (uint32_t k = 0; k < nm;) {
    int r = sendmmsg(u->fd, &msgs[k], nm - k, MSG_DONTWAIT);
    if (r > 0) {
      for (int x = 0; x < r; x++) sent += segs[k + (uint32_t)x];
      k += (uint32_t)r;
      continue;
    }
    if (errno == EINTR) continue;
    c->last_errno = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) { *stop = 1; break; }
    if (segs[k] > 1 && (errno == EIO || errno == EINVAL)) {
      // This path cannot segment (no checksum offload on the way out): every datagram on its own from now.
      __atomic_store_n(&u->gso, 0, __ATOMIC_RELAXED);
      int s2 = 0;
      uint32_t rest = send_runs(u, sp, c, &iov[first[k]], n - first[k], to, tolen, 0, &s2);
      *stop = s2;
      return sent + rest;
    }
    // This message only (too big for the path, no route, refused): the others still go.
    c->errors += segs[k];
    k++;
  }
  return sent;
}

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

// On the send thread: one udpSend call's datagrams, sent as the loop would have.
static void tx_run(void *owner, uint8_t *job) {
  udp_t *u = owner;
  tx_job_t *j = (tx_job_t *)job;
  const uint16_t *lens = (const uint16_t *)(j + 1);
  uint8_t *d = (uint8_t *)(j + 1) + align8(j->n * sizeof(uint16_t));
  for (uint32_t i = 0; i < j->n; i++) {
    u->tx_sp.iov[i].iov_base = d;
    u->tx_sp.iov[i].iov_len = lens[i];
    d += lens[i];
  }
  int stop = 0;
  send_count_t c = {0, 0};
  uint32_t sent = send_runs(u, &u->tx_sp, &c, u->tx_sp.iov, j->n, j->tolen ? &j->to : NULL, j->tolen,
                            __atomic_load_n(&u->gso, __ATOMIC_RELAXED), &stop);
  if (sent < j->n) __atomic_fetch_add(&u->tx_dropped, (uint64_t)(j->n - sent), __ATOMIC_RELAXED);
  if (c.errors > 0) __atomic_fetch_add(&u->tx_errors, (uint64_t)c.errors, __ATOMIC_RELAXED);
  if (c.last_errno) __atomic_store_n(&u->tx_last_errno, c.last_errno, __ATOMIC_RELAXED);
}

// Queues one call's datagrams (iov[0, n), to) for the send thread; false when the ring has no room.
static int tx_queue(udp_t *u, const struct iovec *iov, uint32_t n, const struct sockaddr_storage *to, socklen_t tolen) {
  size_t bytes = 0;
  for (uint32_t i = 0; i < n; i++) bytes += iov[i].iov_len;
  tx_job_t *j = (tx_job_t *)tx_ring_reserve(u->tx, sizeof(tx_job_t) + align8(n * sizeof(uint16_t)) + bytes);
  if (j == NULL) return 0;
  j->n = n;
  j->tolen = tolen;
  if (tolen) memcpy(&j->to, to, sizeof j->to);
  uint16_t *lens = (uint16_t *)(j + 1);
  uint8_t *d = (uint8_t *)(j + 1) + align8(n * sizeof(uint16_t));
  for (uint32_t i = 0; i < n; i++) {
    lens[i] = (uint16_t)iov[i].iov_len;
    memcpy(d, iov[i].iov_base, iov[i].iov_len);
    d += iov[i].iov_len;
  }
  tx_ring_commit(u->tx);
  return 1;
}

// udpSend(h, datagrams[], ip?, port?) -> how many the kernel took (with a send thread: how many were
// queued for it); the rest are dropped and counted (a full socket buffer is a full queue). Several per
// system call; without ip the connected peer.
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], ret;
  char ip[64] = "";
  int32_t port = 0;
  uint32_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return fail(env, "udpSend(h, datagrams, ip?, port?)");
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || n > MAX_SEND) return fail(env, "udpSend: datagrams must be an array of at most 1024");
  struct iovec *iov = u->sp.iov;
  struct sockaddr_storage to;
  socklen_t tolen = 0;
  if (argc >= 4) {
    napi_valuetype t;
    napi_typeof(env, argv[2], &t);
    if (t != napi_undefined) {
      if (!get_string(env, argv[2], ip, sizeof ip) || napi_get_value_int32(env, argv[3], &port) != napi_ok || port < 1 || port > 65535 ||
          !make_addr(u->family, ip, port, &to, &tolen))
        return fail(env, "udpSend: ip must be an IP literal and port 1-65535");
    }
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    bool is = false;
    void *d = NULL;
    size_t len = 0;
    if (napi_get_element(env, argv[1], i, &e) != napi_ok || napi_is_buffer(env, e, &is) != napi_ok || !is ||
        napi_get_buffer_info(env, e, &d, &len) != napi_ok || len == 0 || len > 65507)
      return fail(env, "udpSend: each datagram must be a non-empty Buffer of at most 65507 bytes");
    iov[i].iov_base = d;
    iov[i].iov_len = len;
  }
  uint32_t sent = 0;
  if (u->fd >= 0 && n > 0) {
    if (u->tx != NULL) {
      sent = tx_queue(u, iov, n, tolen ? &to : NULL, tolen) ? n : 0;
    } else {
      int stop = 0;
      send_count_t c = {0, 0};
      sent = send_runs(u, &u->sp, &c, iov, n, tolen ? &to : NULL, tolen, u->gso, &stop);
      u->send_errors += c.errors;
      if (c.last_errno) u->last_errno = c.last_errno;
    }
  }
  u->dropped += n - sent;
  napi_create_uint32(env, sent, &ret);
  return ret;
}

// udpSendThread(h): from now on a thread of this socket's own makes the send system calls (above).
static napi_value js_send_thread(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "udpSendThread(h)");
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  if (u->fd < 0) return fail(env, "udpSendThread: the socket is closed");
  if (u->tx != NULL) return NULL;
  if (!alloc_space(&u->tx_sp)) return fail(env, "udpSendThread: out of memory");
  int err = 0;
  u->tx = tx_ring_start(TX_RING, "ck-udp-tx", tx_run, u, &err);
  if (u->tx == NULL) {
    free_space(&u->tx_sp);
    return napi_throw(env, errno_error(env, -err, "uv_thread_create", "udp", 0)), NULL;
  }
  return NULL;
}

// udpStats(h) -> { truncated, recvErrors, sendErrors, dropped, lastError, gro, gso, sendThread, queuedBytes }
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, v;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "udpStats(h)");
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  double send_errors = u->send_errors, dropped = u->dropped, queued = 0;
  int last = u->last_errno;
  if (u->tx != NULL) {
    send_errors += (double)__atomic_load_n(&u->tx_errors, __ATOMIC_RELAXED);
    dropped += (double)__atomic_load_n(&u->tx_dropped, __ATOMIC_RELAXED);
    queued = (double)tx_ring_queued(u->tx);
    int e = __atomic_load_n(&u->tx_last_errno, __ATOMIC_RELAXED);
    if (e) last = e;
  }
  napi_create_object(env, &obj);
  napi_create_double(env, u->truncated, &v);
  napi_set_named_property(env, obj, "truncated", v);
  napi_create_double(env, u->recv_errors, &v);
  napi_set_named_property(env, obj, "recvErrors", v);
  napi_create_double(env, send_errors, &v);
  napi_set_named_property(env, obj, "sendErrors", v);
  napi_create_double(env, dropped, &v);
  napi_set_named_property(env, obj, "dropped", v);
  napi_create_string_utf8(env, last ? errno_name(last) : "", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "lastError", v);
  napi_get_boolean(env, u->gro, &v);
  napi_set_named_property(env, obj, "gro", v);
  napi_get_boolean(env, __atomic_load_n(&u->gso, __ATOMIC_RELAXED), &v);
  napi_set_named_property(env, obj, "gso", v);
  napi_get_boolean(env, u->tx != NULL, &v);
  napi_set_named_property(env, obj, "sendThread", v);
  napi_create_double(env, queued, &v);
  napi_set_named_property(env, obj, "queuedBytes", v);
  return obj;
}

// udpClose(h): stops reading and closes the socket; safe twice and from inside the batch callback.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "udpClose(h)");
  udp_t *u = unwrap(env, argv[0]);
  if (u != NULL) udp_close(u);
  return NULL;
}

void udp_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"udpOpen", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpConnect", NULL, js_connect, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpStart", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpSend", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpSendThread", NULL, js_send_thread, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpStats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
    {"udpClose", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

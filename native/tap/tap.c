// SPDX-License-Identifier: UNLICENSED
// TAP frame I/O for Node, in plain C against N-API and libuv only (no C++ runtime), so one source builds
// for linux-x64 tests and the linux-arm64 device. It does what the data path needs and nothing more:
// open or attach a TAP, watch its non-blocking fd with uv_poll, drain up to maxBatch frames per wake-up
// into one reused buffer and make ONE JS call per batch, write many frames per call. No parsing here.
//
// Batch layout handed to JS: repeated [u16 little-endian length][frame bytes], `count` records,
// `used` bytes. The buffer is reused for the next batch once the JS handler returns.
//
// Opened with vnetHdr (IFF_VNET_HDR, header size 10, little endian), every read and write carries a
// struct virtio_net_hdr before the frame, and with setOffload(true) (TUNSETOFFLOAD CSUM|TSO4|TSO6|
// TSO_ECN) the kernel hands over TCP super-frames of up to 64 KB instead of segmenting them first. Then
// the batch layout is [u32 little-endian length][virtio_net_hdr (10)][frame], the length counting both.
//
// With writeThread(handle) the writes leave the loop: write() and writeOffload() copy their frames into a
// ring and a thread of the TAP's own ("ck-tap-tx") makes the system calls, in order, so the kernel's work
// for a written frame (the bridge and, on veth, the receiving host's stack) runs on that thread. Off by
// default: measured on x86 it took nothing off the agent's loop (docs/performance.md, "Send threads").
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/sockios.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
// The headend's host build (binding.gyp) defines CK_MALLOC_TRIM; the device's build does not: its C
// library returns memory on its own, and the device's loader allows only the symbols the TAP needs.
#if defined(CK_MALLOC_TRIM) && defined(__GLIBC__)
#define WITH_MALLOC_TRIM 1
#include <malloc.h>
#include <time.h>
#endif
#include <node_api.h>
#include <uv.h>
#include "tx-ring.h"

#define TUN_PATH "/dev/net/tun"
#define MAX_FRAME 65535u           // largest frame passed on; a u16 length always fits
#define READ_ROOM (MAX_FRAME + 1u) // one spare byte: the kernel silently cuts a frame to the read size
#define SLOT_BYTES 2048u           // per-frame budget of the batch buffer (1518-byte frames + header)
#define MAX_BATCH 1024u
#define VNET_HDR_LEN 10u
#define MAX_VNET_READ (VNET_HDR_LEN + 65550u)  // a TSO super-frame: IP 65535 + Ethernet + VLAN
#define VNET_READ_ROOM (MAX_VNET_READ + 1u)
#define VNET_SUPER_FRAMES 8u                  // super-frames a batch may hold beside its small frames
// The write ring: a full read batch of ordinary frames, or a run of super-frames, with room to spare.
#define TX_RING (4u * 1024u * 1024u)
#define TX_JOB_BYTES (1024u * 1024u)  // a longer write() becomes several jobs, so any batch fits the ring
// The virtio_net_hdr of a frame without offloads: the kernel takes it as it is.
static const uint8_t PLAIN_HDR[VNET_HDR_LEN];
#ifndef TUNSETVNETLE
#define TUNSETVNETLE _IOW('T', 220, int)
#endif

typedef struct tap {
  int fd;                          // -1 once closed
  char ifname[IFNAMSIZ];
  napi_env env;
  uv_poll_t *poll;                 // NULL until start(); freed by uv_close's callback
  napi_ref cb, buf, self;
  napi_async_context actx;
  uint8_t *data;
  size_t cap;
  uint32_t max_batch;
  uint32_t room;                   // bytes one plain read may take (READ_ROOM unless start() was told less)
  double truncated, write_errors;  // counters JS cannot see itself
  int last_write_errno;
  int in_callback;                 // close() from inside the handler defers releasing the JS side
  int vnet;                        // IFF_VNET_HDR: every read and write carries a virtio_net_hdr
  tx_ring_t *tx;                   // NULL: the loop writes itself
  // The write thread's counters (atomic: the loop reads them): frames it could not write, and errors.
  uint64_t tx_dropped, tx_errors;
  int tx_last_errno;
} tap_t;

#define CHECK(call) do { if ((call) != napi_ok) { throw_last(env); return NULL; } } while (0)

static void throw_last(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, "EINVAL", info && info->error_message ? info->error_message : "N-API call failed");
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

// uv_err_name() only knows libuv's own list (no EBADFD) and leaks a string for the rest.
static const char *errno_name(int err) {
#define E(x) case x: return #x;
  switch (err) {
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(ENXIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY)
    E(EEXIST) E(ENODEV) E(EINVAL) E(ENOSPC) E(ENAMETOOLONG) E(EBADFD) E(EMSGSIZE) E(EALREADY) E(ENOBUFS) E(ENOPROTOOPT) E(ENOTSOCK)
  }
#undef E
  return "EUNKNOWN";
}

// An Error shaped like Node's own system errors: code 'EPERM', errno -1, syscall, plus the device name.
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *dev, const char *hint) {
  char msg[256];
  const char *name = errno_name(err);
  snprintf(msg, sizeof msg, "%s %s: %s (%s)%s%s", syscall, dev, name, strerror(err), hint ? ": " : "", hint ? hint : "");
  napi_value code, text, e, n;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &e);
  napi_create_int32(env, -err, &n);
  napi_set_named_property(env, e, "errno", n);
  set_str(env, e, "syscall", syscall);
  set_str(env, e, "device", dev);
  return e;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *dev, const char *hint) {
  napi_throw(env, errno_error(env, err, syscall, dev, hint));
  return NULL;
}

static void release_js(tap_t *t) {
  if (t->cb) { napi_delete_reference(t->env, t->cb); t->cb = NULL; }
  if (t->buf) { napi_delete_reference(t->env, t->buf); t->buf = NULL; }
  if (t->self) { napi_delete_reference(t->env, t->self); t->self = NULL; }
  if (t->actx) { napi_async_destroy(t->env, t->actx); t->actx = NULL; }
}

// A job of the write ring: this, then `count` records [u32 frame length][virtio_net_hdr when vnet][frame].
typedef struct tap_job {
  uint32_t count;
  uint32_t vnet;
} tap_job_t;

static void tx_discard(void *owner, uint8_t *job) {
  tap_t *t = owner;
  t->tx_dropped += ((tap_job_t *)job)->count;
}

// Safe to call twice and from the env cleanup hook: each resource is released once and marked.
static void tap_close(tap_t *t) {
  if (t->tx != NULL) {
    // What the thread had not written is dropped with the device, and counted.
    tx_ring_stop(t->tx, tx_discard);
    t->tx = NULL;
  }
  if (t->poll) {
    uv_poll_stop(t->poll);
    // The close callback is libc's free(), not a function of ours: when a worker thread exits, node
    // unloads the addon before the loop runs close callbacks, and a pointer into it would dangle.
    uv_close((uv_handle_t *)t->poll, (uv_close_cb)(void (*)(void))free);
    t->poll = NULL;
  }
  if (t->fd >= 0) { close(t->fd); t->fd = -1; }
  if (!t->in_callback) release_js(t);  // else deliver() releases once napi_make_callback has returned
}

static void cleanup_hook(void *arg) { tap_close((tap_t *)arg); }

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  tap_t *t = data;
  napi_remove_env_cleanup_hook(env, cleanup_hook, t);
  tap_close(t);
  free(t);
}

static tap_t *unwrap(napi_env env, napi_value obj) {
  void *t = NULL;
  if (napi_unwrap(env, obj, &t) != napi_ok || !t) { throw_last(env); return NULL; }
  return t;
}

// One JS call per batch. napi_make_callback runs it inside an async context and drains ticks and
// microtasks; an exception escapes to process 'uncaughtException' instead of vanishing in libuv.
static void deliver(tap_t *t, uint32_t count, size_t used, napi_value err) {
  napi_env env = t->env;
  napi_value cb, self, argv[3], result;
  if (napi_get_reference_value(env, t->cb, &cb) != napi_ok || napi_get_reference_value(env, t->self, &self) != napi_ok) return;
  napi_create_uint32(env, count, &argv[0]);
  napi_create_uint32(env, (uint32_t)used, &argv[1]);
  if (err) argv[2] = err; else napi_get_undefined(env, &argv[2]);
  t->in_callback = 1;
  napi_status st = napi_make_callback(env, t->actx, self, cb, 3, argv, &result);
  t->in_callback = 0;
  if (t->fd < 0) release_js(t);
  if (st != napi_ok) {
    napi_value exc;
    if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  tap_t *t = h->data;
  napi_handle_scope scope;
  if (napi_open_handle_scope(t->env, &scope) != napi_ok) return;
  uint32_t count = 0;
  size_t off = 0;
  int err = status < 0 ? -status : 0;
  const size_t lenb = t->vnet ? 4 : 2;
  const size_t room = t->room;
  const size_t max = t->vnet ? MAX_VNET_READ : MAX_FRAME;
  while (!err && (events & UV_READABLE) && count < t->max_batch && t->cap - off >= lenb + room) {
    ssize_t n = read(t->fd, t->data + off + lenb, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    // The kernel cut it (a read fills the room only when the frame did not fit); never pass half a frame.
    if ((size_t)n > max || (size_t)n >= room) { t->truncated++; continue; }
    t->data[off] = (uint8_t)(n & 0xff);
    t->data[off + 1] = (uint8_t)(n >> 8);
    if (t->vnet) { t->data[off + 2] = (uint8_t)(n >> 16); t->data[off + 3] = 0; }
    off += lenb + (size_t)n;
    count++;
  }
  napi_value e = NULL;
  if (err) {
    // A dead device (deleted link: EBADFD) stays readable forever; stop polling so the loop cannot spin.
    uv_poll_stop(h);
    e = errno_error(t->env, err, "read", t->ifname, "polling stopped; reopen the TAP");
  }
  if (count > 0 || e) deliver(t, count, off, e);
  napi_close_handle_scope(t->env, scope);
}

// The calls tap_open_fd() can fail in, compared by address: the device build allows only the libc
// symbols scripts/build-addon-arm64.sh lists (the musl-loaded binary resolves them), and strcmp is not one.
static const char W_OPEN[] = "open(" TUN_PATH ")";
static const char W_SETIFF[] = "ioctl(TUNSETIFF)";

// Opens (or attaches to) TAP `name`: the fd, or -errno with *what naming the failing call. Blocking only
// in the kernel (TUNSETIFF takes the RTNL lock): openAsync runs it on a libuv worker thread.
static int tap_open_fd(const char *name, size_t len, int vnet, char *ifname_out, const char **what) {
  int fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { *what = W_OPEN; return -errno; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); *what = W_SETIFF; return -e; }
  if (vnet) {
    int sz = VNET_HDR_LEN, le = 1;
    unsigned int off = 0;
    // Little endian on every host (a no-op on x86-64 and arm64, whose native order it is); offloads stay
    // off until a session that accepts super-frames asks for them (setOffload).
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0 || ioctl(fd, TUNSETOFFLOAD, off) < 0) {
      int e = errno; close(fd); *what = "ioctl(TUNSETVNETHDRSZ)"; return -e;
    }
    if (ioctl(fd, TUNSETVNETLE, &le) < 0 && errno != EINVAL) { int e = errno; close(fd); *what = "ioctl(TUNSETVNETLE)"; return -e; }
  }
  memcpy(ifname_out, ifr.ifr_name, IFNAMSIZ - 1);
  return fd;
}

static const char *open_hint(int e, const char *what) {
  if (what == W_OPEN)
    return e == ENOENT ? "no TUN/TAP support: load kmod-tun (opkg install kmod-tun; modprobe tun)"
         : e == EACCES || e == EPERM ? "needs root or CAP_NET_ADMIN" : NULL;
  if (what == W_SETIFF)
    return e == EPERM ? "needs root or CAP_NET_ADMIN"
         : e == EBUSY ? "another process already has this single-queue TAP open"
         : e == EINVAL ? "bad name, or an existing device of another type or with other flags" : NULL;
  return NULL;
}

// The JS handle { ifname, fd, vnetHdr } around an open fd; NULL (fd closed, exception pending) on failure.
static napi_value wrap_handle(napi_env env, int fd, const char *ifname, int vnet) {
  napi_value obj, fdv;
  tap_t *t = calloc(1, sizeof *t);
  if (!t) { close(fd); return throw_errno(env, ENOMEM, "calloc", ifname, NULL); }
  t->fd = fd;
  t->vnet = vnet;
  t->env = env;
  memcpy(t->ifname, ifname, IFNAMSIZ - 1);
  if (napi_create_object(env, &obj) != napi_ok || napi_wrap(env, obj, t, finalize, NULL, NULL) != napi_ok) {
    close(fd); free(t); throw_last(env); return NULL;
  }
  napi_add_env_cleanup_hook(env, cleanup_hook, t);
  set_str(env, obj, "ifname", t->ifname);
  napi_create_int32(env, fd, &fdv);
  napi_set_named_property(env, obj, "fd", fdv);
  napi_get_boolean(env, vnet, &fdv);
  napi_set_named_property(env, obj, "vnetHdr", fdv);
  return obj;
}

// open(name, vnetHdr?) -> handle object { ifname, fd, vnetHdr }. An empty name lets the kernel pick tapN.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool vnet = false;
  char name[64] = "", ifname[IFNAMSIZ] = "";
  size_t len = 0;
  const char *what = "";
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok)
    return napi_throw_type_error(env, "EINVAL", "open(name): name must be a string"), NULL;
  if (argc >= 2) napi_get_value_bool(env, argv[1], &vnet);
  if (len >= IFNAMSIZ) return throw_errno(env, ENAMETOOLONG, "ioctl(TUNSETIFF)", name, "interface names are at most 15 bytes");
  int fd = tap_open_fd(name, len, vnet, ifname, &what);
  if (fd < 0) return throw_errno(env, -fd, what, name, open_hint(-fd, what));
  return wrap_handle(env, fd, ifname, vnet);
}

// openAsync(name, cb(err, handle), vnetHdr?): open with the kernel's part (TUNSETIFF waits for the RTNL
// lock, which a busy netlink neighbour can hold for a long time) on a libuv worker thread, so a loop
// serving other sessions never waits. (A port is closed after its device is deleted: that close is free.)
typedef struct open_work {
  napi_async_work work;
  napi_ref cb;
  char name[IFNAMSIZ];
  char ifname[IFNAMSIZ];
  size_t len;
  int fd;  // the fd, or -errno
  int vnet;
  const char *what;
} open_work;

static void open_execute(napi_env env, void *data) {
  (void)env;
  open_work *w = data;
  w->fd = tap_open_fd(w->name, w->len, w->vnet, w->ifname, &w->what);
}

static void open_complete(napi_env env, napi_status status, void *data) {
  open_work *w = data;
  napi_value cb, undef, args[2];
  napi_get_undefined(env, &undef);
  args[0] = undef;
  args[1] = undef;
  if (w->fd < 0) args[0] = errno_error(env, -w->fd, w->what, w->name, open_hint(-w->fd, w->what));
  else if (status != napi_ok) close(w->fd);  // cancelled at exit: nobody will take the fd
  else {
    napi_value h = wrap_handle(env, w->fd, w->ifname, w->vnet);
    if (h == NULL) napi_get_and_clear_last_exception(env, &args[0]);
    else args[1] = h;
  }
  if (status == napi_ok && napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb != NULL)
    napi_call_function(env, undef, cb, 2, args, NULL);
  napi_delete_reference(env, w->cb);
  napi_delete_async_work(env, w->work);
  free(w);
}

// openAsync(name, cb, vnetHdr?)
static napi_value js_open_async(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_valuetype ty;
  bool vnet = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_typeof(env, argv[1], &ty) != napi_ok || ty != napi_function)
    return napi_throw_type_error(env, "EINVAL", "openAsync(name, cb): cb must be a function"), NULL;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &vnet);
  open_work *w = calloc(1, sizeof *w);
  if (!w) return napi_throw_error(env, "ENOMEM", "openAsync: out of memory"), NULL;
  char name[64] = "";
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &w->len) != napi_ok) {
    free(w);
    return napi_throw_type_error(env, "EINVAL", "openAsync(name, cb): name must be a string"), NULL;
  }
  if (w->len >= IFNAMSIZ) {
    free(w);
    return throw_errno(env, ENAMETOOLONG, "ioctl(TUNSETIFF)", name, "interface names are at most 15 bytes");
  }
  memcpy(w->name, name, w->len);
  w->vnet = vnet;
  w->fd = -1;
  w->what = "";
  napi_value label;
  if (napi_create_reference(env, argv[1], 1, &w->cb) != napi_ok) { free(w); throw_last(env); return NULL; }
  if (napi_create_string_utf8(env, "ConnectorTapOpen", NAPI_AUTO_LENGTH, &label) != napi_ok ||
      napi_create_async_work(env, NULL, label, open_execute, open_complete, w, &w->work) != napi_ok ||
      napi_queue_async_work(env, w->work) != napi_ok) {
    napi_delete_reference(env, w->cb);
    free(w);
    throw_last(env);
  }
  return NULL;
}

// start(handle, maxBatch, cb(count, used, err?)) -> the batch Buffer, reused for every batch.
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], buf, name;
  uint32_t max_batch = 0, room = READ_ROOM;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_t *t = unwrap(env, argv[0]);
  if (!t) return NULL;
  if (t->fd < 0) return throw_errno(env, EBADF, "uv_poll_start", t->ifname, "the TAP is closed");
  if (t->poll) return throw_errno(env, EALREADY, "uv_poll_start", t->ifname, "already started");
  if (napi_get_value_uint32(env, argv[1], &max_batch) != napi_ok || max_batch < 1 || max_batch > MAX_BATCH)
    return napi_throw_range_error(env, "EINVAL", "start: maxBatch must be an integer from 1 to 1024"), NULL;
  // A TAP whose MTU the caller fixes (the headend's session ports) reads into a small buffer: thousands
  // of them would otherwise hold 66 KB each for frames that cannot arrive.
  // A vnetHdr TAP whose offloads stay off never delivers a super-frame: it needs no room for one.
  bool small = false;
  if (argc >= 4) {
    napi_valuetype ty;
    CHECK(napi_typeof(env, argv[3], &ty));
    if (ty != napi_undefined && (napi_get_value_uint32(env, argv[3], &room) != napi_ok || room < 1519u || room > READ_ROOM))
      return napi_throw_range_error(env, "EINVAL", "start: readRoom must be an integer from 1519 to 65536"), NULL;
    small = ty != napi_undefined;
  }
  t->max_batch = max_batch;
  if (t->vnet && small) {
    t->room = room + VNET_HDR_LEN;
    t->cap = (size_t)max_batch * (SLOT_BYTES + 4 + VNET_HDR_LEN) + 4 + t->room;
  } else if (t->vnet) {
    t->room = VNET_READ_ROOM;
    t->cap = (size_t)max_batch * (SLOT_BYTES + 4 + VNET_HDR_LEN) + VNET_SUPER_FRAMES * (4 + VNET_READ_ROOM);
  } else {
    t->room = room;
    t->cap = (size_t)max_batch * SLOT_BYTES + 2 + room;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  CHECK(napi_create_buffer(env, t->cap, (void **)&t->data, &buf));
  CHECK(napi_create_reference(env, buf, 1, &t->buf));
  CHECK(napi_create_reference(env, argv[2], 1, &t->cb));
  CHECK(napi_create_reference(env, argv[0], 1, &t->self));  // a polling TAP must not be collected
  CHECK(napi_create_string_utf8(env, "ConnectorTap", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, argv[0], name, &t->actx));
  t->poll = calloc(1, sizeof *t->poll);
  if (!t->poll) return throw_errno(env, ENOMEM, "calloc", t->ifname, NULL);
  int r = uv_poll_init(loop, t->poll, t->fd);
  if (r != 0) {
    free(t->poll);  // init failed: the handle never joined the loop
    t->poll = NULL;
    return throw_errno(env, -r, "uv_poll_init", t->ifname, NULL);
  }
  t->poll->data = t;
  r = uv_poll_start(t->poll, UV_READABLE, on_poll);
  if (r != 0) {
    uv_close((uv_handle_t *)t->poll, (uv_close_cb)(void (*)(void))free);
    t->poll = NULL;
    return throw_errno(env, -r, "uv_poll_start", t->ifname, NULL);
  }
  return buf;
}

// The (handle, boolean) arguments of pause and setOffload: the handle (NULL with an exception pending), and
// the flag with whether a boolean was given.
static tap_t *tap_and_flag(napi_env env, napi_callback_info info, bool *flag, bool *given) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) { throw_last(env); return NULL; }
  tap_t *t = unwrap(env, argv[0]);
  *given = t && argc >= 2 && napi_get_value_bool(env, argv[1], flag) == napi_ok;
  return t;
}

// pause(tap, paused): stops (true) or restarts (false) reading the TAP. While the agent does not read, the
// frames wait in the kernel's queue in front of the TAP (its ring, txqueuelen deep) instead of in a queue
// of the agent's own: its datagram lanes' backpressure.
static napi_value js_pause(napi_env env, napi_callback_info info) {
  bool paused = false, given = false;
  tap_t *t = tap_and_flag(env, info, &paused, &given);
  if (!t) return NULL;
  if (!given) return napi_throw_type_error(env, "EINVAL", "pause(tap, paused): paused must be a boolean"), NULL;
  if (t->fd < 0 || !t->poll) return NULL;  // closed, or not started: nothing to pause
  int r = paused ? uv_poll_stop(t->poll) : uv_poll_start(t->poll, UV_READABLE, on_poll);
  if (r != 0) return throw_errno(env, -r, paused ? "uv_poll_stop" : "uv_poll_start", t->ifname, NULL);
  return NULL;
}

// One frame as the loop would write it: with a plain virtio_net_hdr on a vnet TAP unless one is given.
// Returns 1 written, 0 for a full device queue, -errno otherwise.
static int write_one(tap_t *t, const uint8_t *hdr, const uint8_t *f, size_t len) {
  ssize_t w;
  struct iovec iov[2] = {{(void *)(hdr != NULL ? hdr : PLAIN_HDR), VNET_HDR_LEN}, {(void *)f, len}};
  if (t->vnet) do w = writev(t->fd, iov, 2); while (w < 0 && errno == EINTR);
  else do w = write(t->fd, f, len); while (w < 0 && errno == EINTR);
  if (w >= 0) return 1;
  return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

// On the write thread: one job's frames, in order.
static void tx_run(void *owner, uint8_t *job) {
  tap_t *t = owner;
  tap_job_t *j = (tap_job_t *)job;
  uint8_t *p = (uint8_t *)(j + 1);
  uint64_t dropped = 0, errors = 0;
  int last = 0;
  for (uint32_t i = 0; i < j->count; i++) {
    uint32_t len;
    memcpy(&len, p, sizeof len);
    const uint8_t *hdr = j->vnet ? p + 4 : NULL;
    const uint8_t *f = p + 4 + (j->vnet ? VNET_HDR_LEN : 0);
    int r = write_one(t, hdr, f, len);
    if (r <= 0) dropped++;
    if (r < 0) { errors++; last = -r; }
    p = (uint8_t *)f + len;
  }
  if (dropped) __atomic_fetch_add(&t->tx_dropped, dropped, __ATOMIC_RELAXED);
  if (errors) __atomic_fetch_add(&t->tx_errors, errors, __ATOMIC_RELAXED);
  if (last) __atomic_store_n(&t->tx_last_errno, last, __ATOMIC_RELAXED);
}

// Copies n frames (with `hdr` for each on a vnet TAP, a plain one when NULL) into the ring as one job;
// false when the ring has no room (the frames are the caller's to count as dropped).
static bool queue_frames(tap_t *t, const uint8_t *const *frames, const size_t *lens, uint32_t n, const void *hdr) {
  size_t per = 4 + (t->vnet ? VNET_HDR_LEN : 0), bytes = sizeof(tap_job_t);
  for (uint32_t i = 0; i < n; i++) bytes += per + lens[i];
  tap_job_t *j = (tap_job_t *)tx_ring_reserve(t->tx, bytes);
  if (j == NULL) return false;
  j->count = n;
  j->vnet = (uint32_t)t->vnet;
  uint8_t *p = (uint8_t *)(j + 1);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len = (uint32_t)lens[i];
    memcpy(p, &len, sizeof len);
    p += 4;
    if (t->vnet) {
      memcpy(p, hdr != NULL ? hdr : PLAIN_HDR, VNET_HDR_LEN);
      p += VNET_HDR_LEN;
    }
    memcpy(p, frames[i], len);
    p += len;
  }
  tx_ring_commit(t->tx);
  return true;
}

// write() with a write thread: the valid frames of the array as one job; returns how many were queued.
static napi_value write_queued(napi_env env, tap_t *t, napi_value arr, uint32_t n) {
  const uint8_t *frames[MAX_BATCH];
  size_t lens[MAX_BATCH];
  uint32_t valid = 0, queued = 0;
  size_t bytes = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el, ab;
    napi_typedarray_type type;
    size_t len = 0, boff = 0;
    void *p = NULL;
    CHECK(napi_get_element(env, arr, i, &el));
    if (napi_get_typedarray_info(env, el, &type, &len, &p, &ab, &boff) != napi_ok || type != napi_uint8_array) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      t->write_errors++; t->last_write_errno = EINVAL;
      continue;
    }
    // A job holds at most MAX_BATCH frames and TX_JOB_BYTES; a longer array becomes several, in order.
    if (valid == MAX_BATCH || (valid > 0 && bytes + len > TX_JOB_BYTES)) {
      if (queue_frames(t, frames, lens, valid, NULL)) queued += valid;
      valid = 0;
      bytes = 0;
    }
    frames[valid] = p;
    lens[valid++] = len;
    bytes += len;
  }
  if (valid > 0 && queue_frames(t, frames, lens, valid, NULL)) queued += valid;
  napi_value res;
  CHECK(napi_create_uint32(env, queued, &res));
  return res;
}

// writeThread(handle): from now on a thread of the TAP's own makes the write system calls (above).
static napi_value js_write_thread(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_t *t = unwrap(env, argv[0]);
  if (!t) return NULL;
  if (t->fd < 0) return napi_throw_error(env, "EBADF", "writeThread: the TAP is closed"), NULL;
  if (t->tx != NULL) return NULL;
  int err = 0;
  t->tx = tx_ring_start(TX_RING, "ck-tap-tx", tx_run, t, &err);
  if (t->tx == NULL) return throw_errno(env, -err, "uv_thread_create", t->ifname, NULL);
  return NULL;
}

// write(handle, frames: Uint8Array[]) -> frames accepted. Stops at EAGAIN; a frame the kernel rejects
// (too short, too long) is skipped and counted, so one bad frame never blocks the rest of the batch.
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res;
  uint32_t n = 0, ok = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_t *t = unwrap(env, argv[0]);
  if (!t) return NULL;
  if (argc < 2 || napi_get_array_length(env, argv[1], &n) != napi_ok)
    return napi_throw_type_error(env, "EINVAL", "write(handle, frames): frames must be an array"), NULL;
  if (t->tx != NULL && t->fd >= 0) return write_queued(env, t, argv[1], n);
  for (uint32_t i = 0; i < n && t->fd >= 0; i++) {
    napi_value el;
    napi_typedarray_type type;
    size_t len = 0, boff = 0;
    void *p = NULL;
    napi_value ab;
    CHECK(napi_get_element(env, argv[1], i, &el));
    if (napi_get_typedarray_info(env, el, &type, &len, &p, &ab, &boff) != napi_ok || type != napi_uint8_array) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      t->write_errors++; t->last_write_errno = EINVAL;
      continue;
    }
    int w = write_one(t, NULL, p, len);
    if (w == 0) break;
    if (w < 0) { t->write_errors++; t->last_write_errno = -w; continue; }
    ok++;
  }
  CHECK(napi_create_uint32(env, ok, &res));
  return res;
}

// writeOffload(handle, vnetHdr, frame) -> true when the kernel took the super-frame (its GSO segments it
// toward the bridge). The header is passed on as it came: the caller validated it (tso-segment.ts).
static napi_value js_write_offload(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], res;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_t *t = unwrap(env, argv[0]);
  if (!t) return NULL;
  void *h = NULL, *f = NULL;
  size_t hlen = 0, flen = 0;
  if (argc < 3 || napi_get_buffer_info(env, argv[1], &h, &hlen) != napi_ok || napi_get_buffer_info(env, argv[2], &f, &flen) != napi_ok)
    return napi_throw_type_error(env, "EINVAL", "writeOffload(handle, vnetHdr, frame): two Buffers"), NULL;
  bool ok = false;
  if (t->tx != NULL && t->fd >= 0 && t->vnet && hlen == VNET_HDR_LEN) {
    const uint8_t *one[1] = {f};
    size_t len[1] = {flen};
    ok = queue_frames(t, one, len, 1, h);
  } else if (t->fd >= 0 && t->vnet && hlen == VNET_HDR_LEN) {
    int w = write_one(t, h, f, flen);
    ok = w > 0;
    if (w < 0) { t->write_errors++; t->last_write_errno = -w; }
  }
  CHECK(napi_get_boolean(env, ok, &res));
  return res;
}

// setOffload(handle, on): TUNSETOFFLOAD CSUM|TSO4|TSO6|TSO_ECN (on) or 0 (off) on a vnetHdr TAP.
static napi_value js_set_offload(napi_env env, napi_callback_info info) {
  bool on = false, given = false;
  tap_t *t = tap_and_flag(env, info, &on, &given);
  if (!t) return NULL;
  if (t->fd < 0 || !t->vnet) return throw_errno(env, EINVAL, "ioctl(TUNSETOFFLOAD)", t->ifname, "needs an open vnetHdr TAP");
  unsigned int flags = on ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) : 0;
  if (ioctl(t->fd, TUNSETOFFLOAD, flags) < 0) return throw_errno(env, errno, "ioctl(TUNSETOFFLOAD)", t->ifname, NULL);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_t *t = unwrap(env, argv[0]);
  if (!t) return NULL;
  tap_close(t);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tap_t *t = unwrap(env, argv[0]);
  if (!t) return NULL;
  CHECK(napi_create_object(env, &obj));
  double errors = t->write_errors + (double)__atomic_load_n(&t->tx_errors, __ATOMIC_RELAXED);
  int last = __atomic_load_n(&t->tx_last_errno, __ATOMIC_RELAXED);
  if (last == 0) last = t->last_write_errno;
  napi_create_double(env, t->truncated, &v); napi_set_named_property(env, obj, "truncated", v);
  napi_create_double(env, errors, &v); napi_set_named_property(env, obj, "writeErrors", v);
  set_str(env, obj, "lastWriteError", last ? errno_name(last) : "");
  napi_create_double(env, (double)__atomic_load_n(&t->tx_dropped, __ATOMIC_RELAXED), &v);
  napi_set_named_property(env, obj, "threadDropped", v);
  napi_get_boolean(env, t->tx != NULL, &v); napi_set_named_property(env, obj, "writeThread", v);
  return obj;
}

// setsockopt(fd, level, name, value) -> the value the kernel reports back (getsockopt). Node exposes no
// socket options for TCP; the tunnel needs TCP_NOTSENT_LOWAT and small buffers to bound its queues
// (dropping beats queueing). `fd` is a socket node already owns; nothing else is done to it.
static napi_value js_setsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], res;
  int32_t fd = -1, level = 0, name = 0, value = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &level) != napi_ok ||
      napi_get_value_int32(env, argv[2], &name) != napi_ok || napi_get_value_int32(env, argv[3], &value) != napi_ok || fd < 0)
    return napi_throw_type_error(env, "EINVAL", "setsockopt(fd, level, name, value): four integers, fd >= 0"), NULL;
  char what[32];
  snprintf(what, sizeof what, "fd %d", fd);
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) return throw_errno(env, errno, "setsockopt", what, NULL);
  int got = 0;
  socklen_t len = sizeof got;
  if (getsockopt(fd, level, name, &got, &len) < 0) return throw_errno(env, errno, "getsockopt", what, NULL);
  CHECK(napi_create_int32(env, got, &res));
  return res;
}

// unreadBytes(fd) -> bytes waiting in the socket's receive queue (ioctl SIOCINQ/FIONREAD): lets the
// headend see that the kernel buffer has become a queue behind it, and drop instead of delay.
static napi_value js_unread(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  int32_t fd = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
    return napi_throw_type_error(env, "EINVAL", "unreadBytes(fd): fd must be an integer >= 0"), NULL;
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) < 0) {
    char what[32];
    snprintf(what, sizeof what, "fd %d", fd);
    return throw_errno(env, errno, "ioctl(FIONREAD)", what, NULL);
  }
  CHECK(napi_create_int32(env, n, &res));
  return res;
}

// threadName(name): names the calling thread (at most 15 bytes, as the kernel keeps them), so that `top -H`,
// /proc/<pid>/task/*/comm and perf tell a datagram lane's worker thread from the event loop's.
static napi_value js_thread_name(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1];
  char name[16];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || len == 0)
    return napi_throw_type_error(env, "EINVAL", "threadName(name): name must be a non-empty string"), NULL;
  if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0) return throw_errno(env, errno, "prctl(PR_SET_NAME)", name, NULL);
  return NULL;
}

// malloc_trim: glibc keeps the memory of freed TLS sessions (OpenSSL's per-connection buffers) in its
// arenas after a mass disconnect; trimming hands it back to the kernel. It walks every arena under
// their locks, so it runs on a libuv worker thread, never on the loop. musl returns memory on its own:
// there the addon has no mallocTrim.
#ifdef WITH_MALLOC_TRIM
typedef struct trim_work {
  napi_async_work work;
  napi_ref cb;
  int released;
  double ms;
} trim_work;

static void trim_execute(napi_env env, void *data) {
  (void)env;
  trim_work *w = data;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  w->released = malloc_trim(0);
  clock_gettime(CLOCK_MONOTONIC, &b);
  w->ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

static void trim_complete(napi_env env, napi_status status, void *data) {
  trim_work *w = data;
  napi_value cb, undef, args[2];
  if (status == napi_ok && napi_get_reference_value(env, w->cb, &cb) == napi_ok && napi_get_undefined(env, &undef) == napi_ok &&
      napi_get_boolean(env, w->released > 0, &args[0]) == napi_ok && napi_create_double(env, w->ms, &args[1]) == napi_ok)
    napi_call_function(env, undef, cb, 2, args, NULL);
  napi_delete_reference(env, w->cb);
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], name;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
    return napi_throw_type_error(env, "EINVAL", "mallocTrim(cb): cb must be a function"), NULL;
  trim_work *w = calloc(1, sizeof *w);
  if (w == NULL) return napi_throw_error(env, "ENOMEM", "mallocTrim: out of memory"), NULL;
  CHECK(napi_create_reference(env, argv[0], 1, &w->cb));
  CHECK(napi_create_string_utf8(env, "mallocTrim", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, trim_execute, trim_complete, w, &w->work));
  CHECK(napi_queue_async_work(env, w->work));
  return NULL;
}
#endif

// inetSum(bytes, from, to, initial) -> the ones'-complement sum of bytes[from, to) as big-endian 16-bit
// words plus `initial`, folded to 16 bits and not complemented: 0xffff over a segment (with its
// pseudo-header in `initial`) whose checksum is right. The agent checks each TCP segment it coalesces
// toward the LAN; in JavaScript the loop was a sixth of its time at 1.4 Gbit/s.
static napi_value js_inet_sum(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], ret;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *data = NULL;
  napi_value ab;
  uint32_t from = 0, to = 0;
  double initial = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array ||
      napi_get_value_uint32(env, argv[1], &from) != napi_ok || napi_get_value_uint32(env, argv[2], &to) != napi_ok ||
      napi_get_value_double(env, argv[3], &initial) != napi_ok || from > to || to > length || !(initial >= 0 && initial < 4503599627370496.0))
    return napi_throw_range_error(env, "EINVAL", "inetSum(bytes, from, to, initial): a Uint8Array, 0 <= from <= to <= its length, 0 <= initial < 2^52"), NULL;
  const uint8_t *p = (const uint8_t *)data + from;
  size_t n = to - from;
  uint64_t sum = (uint64_t)initial;
  for (; n >= 4; p += 4, n -= 4) sum += ((uint32_t)p[0] << 8 | p[1]) + ((uint32_t)p[2] << 8 | p[3]);
  if (n >= 2) {
    sum += (uint32_t)p[0] << 8 | p[1];
    p += 2;
    n -= 2;
  }
  if (n) sum += (uint32_t)p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  CHECK(napi_create_uint32(env, (uint32_t)sum, &ret));
  return ret;
}

// netdevGro(ifname) -> whether the interface does GRO (ETHTOOL_GGRO, as `ethtool -k` shows it). The
// headend reads VXLAN with UDP_GRO: with GRO on its fabric interface one read carries a run of a VTEP's
// datagrams, without it one read each (a physical NIC has it on by default; a veth off).
static napi_value js_netdev_gro(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  char name[IFNAMSIZ + 1]; // one more than a name may hold: a longer one is refused, not cut
  size_t len = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || len == 0 || len >= IFNAMSIZ)
    return napi_throw_type_error(env, "EINVAL", "netdevGro(ifname): an interface name of 1-15 bytes"), NULL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", name, NULL);
  struct ethtool_value ev = {.cmd = ETHTOOL_GGRO};
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, len);
  ifr.ifr_data = (void *)&ev;
  int rc = ioctl(fd, SIOCETHTOOL, &ifr);
  int err = errno;
  close(fd);
  if (rc < 0) return throw_errno(env, err, "ioctl(ETHTOOL_GGRO)", name, NULL);
  CHECK(napi_get_boolean(env, ev.data != 0, &res));
  return res;
}

void aead_register(napi_env env, napi_value exports); // aead.c: the datagram channel's AEAD
void udp_register(napi_env env, napi_value exports);  // udp.c: the datagram channel's batched socket

NAPI_MODULE_INIT() {
  aead_register(env, exports);
  udp_register(env, exports);
  napi_property_descriptor props[] = {
    {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
    {"write", NULL, js_write, NULL, NULL, NULL, napi_enumerable, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"openAsync", NULL, js_open_async, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writeOffload", NULL, js_write_offload, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writeThread", NULL, js_write_thread, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setOffload", NULL, js_set_offload, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setsockopt", NULL, js_setsockopt, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unreadBytes", NULL, js_unread, NULL, NULL, NULL, napi_enumerable, NULL},
    {"inetSum", NULL, js_inet_sum, NULL, NULL, NULL, napi_enumerable, NULL},
    {"netdevGro", NULL, js_netdev_gro, NULL, NULL, NULL, napi_enumerable, NULL},
    {"threadName", NULL, js_thread_name, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pause", NULL, js_pause, NULL, NULL, NULL, napi_enumerable, NULL},
#ifdef WITH_MALLOC_TRIM
    {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
#endif
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

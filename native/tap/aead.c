// SPDX-License-Identifier: UNLICENSED
// The datagram channel's AEAD in C (docs/datagram.md): the same seal and open as
// src/shared/tunnel/datagram/codec.ts, byte for byte, with OpenSSL's EVP interface and a cipher context
// kept per epoch key. node:crypto builds a new context, and so a new AES key schedule, for every
// datagram, and costs five calls into C per datagram; here it is one call and a nonce change.
//
// OpenSSL comes from the loading node: its own exports on x64, the shared libcrypto.so.3 of OpenWrt's
// node package on the device. Its functions are looked up when the first context is made (dlsym), not
// linked: a node without them loses only this (aeadNew throws, JS keeps node:crypto), never the TAP
// calls of the same addon, which musl's loader would refuse whole over one missing symbol. The
// interface used is the same in OpenSSL 1.1 and 3. JS checks this build against node:crypto before it
// trusts it.
//
// Layout (OpenVPN's DATA_V2 with the epoch packet id): [12 clear header bytes = AAD][ciphertext][16 tag];
// nonce = the epoch's implicit IV XOR (u16 epoch || u48 counter), left-aligned.
#define NAPI_VERSION 8
#define _GNU_SOURCE 1 // RTLD_DEFAULT
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>
#include <openssl/evp.h>

#define HEADER 12
#define TAG 16
#define IV 12
#define KEY 32

// Each EVP_* name below is a pointer found at run time, typed from OpenSSL's own prototypes.
#define EVP_FUNCS(X)                                                                                        \
  X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_ctrl) X(EVP_aes_256_gcm)                   \
  X(EVP_chacha20_poly1305) X(EVP_EncryptInit_ex) X(EVP_EncryptUpdate) X(EVP_EncryptFinal_ex)              \
  X(EVP_DecryptInit_ex) X(EVP_DecryptUpdate) X(EVP_DecryptFinal_ex)
#define DECLARE(f) static __typeof__(f) *p_##f;
EVP_FUNCS(DECLARE)
#undef DECLARE

static int evp_loaded(void) {
  static int state; // 0 not tried, 1 found, -1 missing
  if (state == 0) {
    state = 1;
#define FIND(f) if ((p_##f = (__typeof__(p_##f))dlsym(RTLD_DEFAULT, #f)) == NULL) state = -1;
    EVP_FUNCS(FIND)
#undef FIND
  }
  return state == 1;
}
#define EVP_CIPHER_CTX_new p_EVP_CIPHER_CTX_new
#define EVP_CIPHER_CTX_free p_EVP_CIPHER_CTX_free
#define EVP_CIPHER_CTX_ctrl p_EVP_CIPHER_CTX_ctrl
#define EVP_aes_256_gcm p_EVP_aes_256_gcm
#define EVP_chacha20_poly1305 p_EVP_chacha20_poly1305
#define EVP_EncryptInit_ex p_EVP_EncryptInit_ex
#define EVP_EncryptUpdate p_EVP_EncryptUpdate
#define EVP_EncryptFinal_ex p_EVP_EncryptFinal_ex
#define EVP_DecryptInit_ex p_EVP_DecryptInit_ex
#define EVP_DecryptUpdate p_EVP_DecryptUpdate
#define EVP_DecryptFinal_ex p_EVP_DecryptFinal_ex

typedef struct aead {
  EVP_CIPHER_CTX *enc, *dec;
  uint8_t iv[IV];
} aead_t;

static napi_value fail(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static void aead_free(aead_t *a) {
  if (a == NULL) return;
  // EVP_CIPHER_CTX_free wipes the key schedule before it frees it.
  EVP_CIPHER_CTX_free(a->enc);
  EVP_CIPHER_CTX_free(a->dec);
  memset(a->iv, 0, IV);
  a->enc = a->dec = NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  aead_free(data);
  free(data);
}

static int get_bytes(napi_env env, napi_value v, uint8_t **p, size_t *n) {
  bool is = false;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  void *d = NULL;
  if (napi_get_buffer_info(env, v, &d, n) != napi_ok) return 0;
  *p = d;
  return 1;
}

static aead_t *get_aead(napi_env env, napi_value v) {
  void *a = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &a) != napi_ok) return NULL;
  return a;
}

static void make_nonce(const aead_t *a, double epoch, double counter, uint8_t out[IV]) {
  uint64_t c = (uint64_t)counter;
  uint64_t e = (uint64_t)epoch & 0xffff;
  uint64_t x = (e << 48) | (c & 0xffffffffffffull);
  memcpy(out, a->iv, IV);
  for (int i = 0; i < 8; i++) out[i] ^= (uint8_t)(x >> (56 - 8 * i));
}

// aeadNew(alg 0 = AES-256-GCM | 1 = ChaCha20-Poly1305, key 32, iv 12) -> external
static napi_value js_new(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  uint32_t alg = 0;
  uint8_t *key, *iv;
  size_t kn, ivn;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return fail(env, "EINVAL", "aeadNew(alg, key, iv)");
  if (napi_get_value_uint32(env, argv[0], &alg) != napi_ok || alg > 1) return fail(env, "EINVAL", "aeadNew: alg must be 0 or 1");
  if (!get_bytes(env, argv[1], &key, &kn) || kn != KEY) return fail(env, "EINVAL", "aeadNew: key must be a 32-byte Buffer");
  if (!get_bytes(env, argv[2], &iv, &ivn) || ivn != IV) return fail(env, "EINVAL", "aeadNew: iv must be a 12-byte Buffer");
  if (!evp_loaded()) return fail(env, "ENOSYS", "aeadNew: the loading node does not export OpenSSL's EVP functions");
  const EVP_CIPHER *cipher = alg == 0 ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
  aead_t *a = calloc(1, sizeof *a);
  if (a == NULL) return fail(env, "ENOMEM", "aeadNew: out of memory");
  a->enc = EVP_CIPHER_CTX_new();
  a->dec = EVP_CIPHER_CTX_new();
  // Both ciphers take a 12-byte nonce by default; the key schedule is made once, here.
  if (cipher == NULL || a->enc == NULL || a->dec == NULL || EVP_EncryptInit_ex(a->enc, cipher, NULL, key, NULL) != 1 ||
      EVP_DecryptInit_ex(a->dec, cipher, NULL, key, NULL) != 1) {
    aead_free(a);
    free(a);
    return fail(env, "ECRYPTO", "aeadNew: this OpenSSL cannot set up the cipher");
  }
  memcpy(a->iv, iv, IV);
  if (napi_create_external(env, a, finalize, NULL, &out) != napi_ok) {
    aead_free(a);
    free(a);
    return fail(env, "ENOMEM", "aeadNew: cannot wrap the context");
  }
  return out;
}

// aeadFree(h): wipes and frees the key schedule now rather than at garbage collection.
static napi_value js_free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  aead_t *a = get_aead(env, argv[0]);
  if (a != NULL) aead_free(a);
  return NULL;
}

// aeadSeal(h, out, epoch, counter, part0, part1?) -> true. `out` holds the 12-byte header (the AAD),
// room for the parts and the tag; the parts are encrypted in order after the header, the tag last.
static napi_value js_seal(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], ret;
  double epoch = 0, counter = 0;
  uint8_t *out, *part[2] = {NULL, NULL};
  size_t outn, partn[2] = {0, 0};
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) return fail(env, "EINVAL", "aeadSeal(h, out, epoch, counter, part0, part1?)");
  aead_t *a = get_aead(env, argv[0]);
  if (a == NULL || a->enc == NULL) return fail(env, "EINVAL", "aeadSeal: context freed or not a context");
  if (!get_bytes(env, argv[1], &out, &outn)) return fail(env, "EINVAL", "aeadSeal: out must be a Buffer");
  if (napi_get_value_double(env, argv[2], &epoch) != napi_ok || napi_get_value_double(env, argv[3], &counter) != napi_ok ||
      counter < 1 || counter > 281474976710655.0)
    return fail(env, "EINVAL", "aeadSeal: counter out of range");
  int parts = argc >= 6 ? 2 : 1;
  for (int i = 0; i < parts; i++)
    if (!get_bytes(env, argv[4 + i], &part[i], &partn[i])) return fail(env, "EINVAL", "aeadSeal: parts must be Buffers");
  if (outn != HEADER + partn[0] + partn[1] + TAG) return fail(env, "EINVAL", "aeadSeal: out is not header + parts + tag long");
  uint8_t nonce[IV];
  make_nonce(a, epoch, counter, nonce);
  int n = 0, ok = EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) == 1 && EVP_EncryptUpdate(a->enc, NULL, &n, out, HEADER) == 1;
  size_t at = HEADER;
  for (int i = 0; ok && i < parts; i++) {
    if (partn[i] == 0) continue;
    ok = EVP_EncryptUpdate(a->enc, out + at, &n, part[i], (int)partn[i]) == 1;
    at += (size_t)n;
  }
  ok = ok && EVP_EncryptFinal_ex(a->enc, out + at, &n) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, TAG, out + outn - TAG) == 1;
  if (!ok) return fail(env, "ECRYPTO", "aeadSeal: the cipher failed");
  napi_get_boolean(env, true, &ret);
  return ret;
}

// aeadOpen(h, datagram, epoch, counter, out) -> whether the datagram is authentic; its payload is then in
// `out` (datagram length - 28 bytes, from the caller's pool: a Buffer made here costs more than the AEAD).
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], ret;
  double epoch = 0, counter = 0;
  uint8_t *d, *p;
  size_t dn, pn;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) return fail(env, "EINVAL", "aeadOpen(h, datagram, epoch, counter, out)");
  aead_t *a = get_aead(env, argv[0]);
  if (a == NULL || a->dec == NULL) return fail(env, "EINVAL", "aeadOpen: context freed or not a context");
  if (!get_bytes(env, argv[1], &d, &dn) || !get_bytes(env, argv[4], &p, &pn)) return fail(env, "EINVAL", "aeadOpen: datagram and out must be Buffers");
  if (napi_get_value_double(env, argv[2], &epoch) != napi_ok || napi_get_value_double(env, argv[3], &counter) != napi_ok)
    return fail(env, "EINVAL", "aeadOpen: epoch and counter must be numbers");
  if (dn < HEADER + TAG + 1 || pn != dn - HEADER - TAG) return fail(env, "EINVAL", "aeadOpen: out must be the datagram's length - 28");
  uint8_t nonce[IV];
  make_nonce(a, epoch, counter, nonce);
  int n = 0;
  int ok = EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) == 1 && EVP_DecryptUpdate(a->dec, NULL, &n, d, HEADER) == 1 &&
           EVP_DecryptUpdate(a->dec, p, &n, d + HEADER, (int)pn) == 1 &&
           EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, TAG, d + dn - TAG) == 1 &&
           EVP_DecryptFinal_ex(a->dec, p + n, &n) == 1;
  // Nothing of a forgery is handed on, not even its unauthenticated plaintext.
  if (!ok) memset(p, 0, pn);
  napi_get_boolean(env, ok, &ret);
  return ret;
}

// The ones'-complement sum of n bytes at p added to sum (big-endian words, not folded). Eight bytes per
// step in host order, byte-swapped once at the end: the sum does not depend on byte order (RFC 1071 §2(B)),
// and a segment's payload is most of what is summed.
static uint64_t sum16(const uint8_t *p, size_t n, uint64_t sum) {
  uint64_t s = 0, w;
  for (; n >= 8; p += 8, n -= 8) {
    memcpy(&w, p, 8);
    s += (w & 0xffffffffu) + (w >> 32);
  }
  for (; n >= 2; p += 2, n -= 2) {
    uint16_t h;
    memcpy(&h, p, 2);
    s += h;
  }
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  s = ((s & 0xff) << 8) | (s >> 8);
#endif
  sum += s;
  if (n) sum += (uint32_t)p[0] << 8;
  return sum;
}

static uint16_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

#define MAX_HEADERS 256
#define MAX_SEGMENTS 256

// aeadSealSegments(h, out, head, counter, kind, frame, l3, l4, headers, ipEnd, ipv6, mss) -> datagrams
//
// A TCP super-frame (validated by tso-segment.ts's parseOffload: Ethernet/IP/TCP headers end at `headers`,
// the IP packet at `ipEnd`) cut into segments of `mss` payload bytes exactly as segmentOffload() cuts it
// (IPv4 length, id + i and checksum, IPv6 payload length, TCP seq + i*mss, FIN/PSH on the last only, CWR
// on the first only, the full TCP checksum), each sealed as one datagram [head (6)][u48 counter + i]
// [kind][segment][tag] into `out`, one after the other with no gap: equal-sized but the last, which is
// what a UDP GSO send takes. `out` must be exactly that long. Counters are the caller's to reserve.
static napi_value js_seal_segments(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12], ret;
  uint8_t *out, *head, *frame;
  size_t outn, headn, framen;
  double counter0 = 0;
  uint32_t kind = 0, l3 = 0, l4 = 0, headers = 0, ip_end = 0, mss = 0;
  bool v6 = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 12)
    return fail(env, "EINVAL", "aeadSealSegments(h, out, head, counter, kind, frame, l3, l4, headers, ipEnd, ipv6, mss)");
  aead_t *a = get_aead(env, argv[0]);
  if (a == NULL || a->enc == NULL) return fail(env, "EINVAL", "aeadSealSegments: context freed or not a context");
  if (!get_bytes(env, argv[1], &out, &outn) || !get_bytes(env, argv[2], &head, &headn) || !get_bytes(env, argv[5], &frame, &framen) || headn != 6)
    return fail(env, "EINVAL", "aeadSealSegments: out, head (6 bytes) and frame must be Buffers");
  if (napi_get_value_double(env, argv[3], &counter0) != napi_ok || napi_get_value_uint32(env, argv[4], &kind) != napi_ok ||
      napi_get_value_uint32(env, argv[6], &l3) != napi_ok || napi_get_value_uint32(env, argv[7], &l4) != napi_ok ||
      napi_get_value_uint32(env, argv[8], &headers) != napi_ok || napi_get_value_uint32(env, argv[9], &ip_end) != napi_ok ||
      napi_get_value_bool(env, argv[10], &v6) != napi_ok || napi_get_value_uint32(env, argv[11], &mss) != napi_ok)
    return fail(env, "EINVAL", "aeadSealSegments: counter, kind, offsets and mss must be numbers, ipv6 a boolean");
  // The offsets come from JS's own parse; these checks keep a wrong one from reading or writing out of bounds.
  if (headers > MAX_HEADERS || l3 + (v6 ? 40u : 20u) > l4 || l4 + 20 > headers || headers >= ip_end || ip_end > framen || mss < 1 || kind > 255)
    return fail(env, "EINVAL", "aeadSealSegments: the offsets do not describe a TCP super-frame in this frame");
  uint32_t payload = ip_end - headers, n = (payload + mss - 1) / mss;
  size_t full = HEADER + 1 + headers + mss + TAG;
  size_t want = (size_t)(n - 1) * full + HEADER + 1 + headers + (payload - (n - 1) * mss) + TAG;
  if (n > MAX_SEGMENTS) return fail(env, "EINVAL", "aeadSealSegments: more than 256 segments");
  if (outn != want) return fail(env, "EINVAL", "aeadSealSegments: out is not the datagrams' length");
  if (counter0 < 1 || counter0 + n - 1 > 281474976710655.0) return fail(env, "EINVAL", "aeadSealSegments: counter out of range");
  uint8_t hdr[MAX_HEADERS], nonce[IV], k = (uint8_t)kind;
  uint32_t ihl = v6 ? 40 : (uint32_t)(frame[l3] & 0x0f) * 4;
  if (!v6 && l3 + ihl != l4) return fail(env, "EINVAL", "aeadSealSegments: the IPv4 header does not end at l4");
  uint32_t seq0 = (uint32_t)frame[l4 + 4] << 24 | (uint32_t)frame[l4 + 5] << 16 | (uint32_t)frame[l4 + 6] << 8 | frame[l4 + 7];
  uint32_t id0 = v6 ? 0 : (uint32_t)(frame[l3 + 4] << 8 | frame[l3 + 5]);
  uint8_t flags = frame[l4 + 13];
  // The pseudo-header's addresses are the same for every segment.
  uint64_t addr_sum = v6 ? sum16(frame + l3 + 8, 32, 0) : sum16(frame + l3 + 12, 8, 0);
  uint16_t epoch = (uint16_t)(head[4] << 8 | head[5]);
  uint8_t *d = out;
  int ok = 1;
  for (uint32_t i = 0; ok && i < n; i++) {
    uint32_t from = headers + i * mss, take = ip_end - from < mss ? ip_end - from : mss;
    uint32_t ip_len = headers + take - l3;
    memcpy(hdr, frame, headers);
    if (v6) put16(hdr + l3 + 4, ip_len - 40);
    else {
      put16(hdr + l3 + 2, ip_len);
      put16(hdr + l3 + 4, (id0 + i) & 0xffff);
      put16(hdr + l3 + 10, 0);
      put16(hdr + l3 + 10, (uint16_t)~fold(sum16(hdr + l3, ihl, 0)));
    }
    uint32_t seq = seq0 + i * mss;
    hdr[l4 + 4] = (uint8_t)(seq >> 24);
    hdr[l4 + 5] = (uint8_t)(seq >> 16);
    hdr[l4 + 6] = (uint8_t)(seq >> 8);
    hdr[l4 + 7] = (uint8_t)seq;
    uint8_t f = flags;
    if (i < n - 1) f &= (uint8_t)~0x09; // FIN, PSH
    if (i > 0) f &= (uint8_t)~0x80;     // CWR
    hdr[l4 + 13] = f;
    put16(hdr + l4 + 16, 0);
    uint32_t tcp_len = headers + take - l4;
    uint64_t s = addr_sum + 6 + tcp_len;
    s = sum16(hdr + l4, headers - l4, s);
    // The payload's sum needs its offset's parity: headers - l4 (the TCP header) is a multiple of 4.
    s = sum16(frame + from, take, s);
    put16(hdr + l4 + 16, (uint16_t)~fold(s));
    memcpy(d, head, 6);
    uint64_t c = (uint64_t)counter0 + i;
    for (int b = 0; b < 6; b++) d[6 + b] = (uint8_t)(c >> (40 - 8 * b));
    make_nonce(a, epoch, (double)c, nonce);
    int m = 0;
    size_t at = HEADER;
    ok = EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) == 1 && EVP_EncryptUpdate(a->enc, NULL, &m, d, HEADER) == 1;
    ok = ok && EVP_EncryptUpdate(a->enc, d + at, &m, &k, 1) == 1;
    at += (size_t)m;
    ok = ok && EVP_EncryptUpdate(a->enc, d + at, &m, hdr, (int)headers) == 1;
    at += (size_t)m;
    ok = ok && EVP_EncryptUpdate(a->enc, d + at, &m, frame + from, (int)take) == 1;
    at += (size_t)m;
    ok = ok && EVP_EncryptFinal_ex(a->enc, d + at, &m) == 1;
    at += (size_t)m;
    ok = ok && EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, TAG, d + at) == 1;
    d += at + TAG;
  }
  if (!ok) return fail(env, "ECRYPTO", "aeadSealSegments: the cipher failed");
  napi_create_uint32(env, n, &ret);
  return ret;
}

void aead_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"aeadNew", NULL, js_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"aeadFree", NULL, js_free, NULL, NULL, NULL, napi_enumerable, NULL},
    {"aeadSeal", NULL, js_seal, NULL, NULL, NULL, napi_enumerable, NULL},
    {"aeadOpen", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"aeadSealSegments", NULL, js_seal_segments, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

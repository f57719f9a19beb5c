// SPDX-License-Identifier: UNLICENSED
// wan: a userspace WAN delay line for labs whose kernel has no netem (no sch_netem, no modules).
// It joins two interfaces at layer 2 (like a cable with a router's bottleneck in it) and, per direction,
// applies random loss, a drop-tail bottleneck (rate + byte limit) and a one-way delay with jitter that
// never reorders. docs/lab.md and docs/performance.md describe the model, the figures measured and the limits.
// It is a test and benchmark tool only (the stand-in for `tc netem`, which this kernel lacks); it never ships.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <math.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Every frame travels with its virtio_net_hdr: veth hands AF_PACKET GSO "super-frames" of up to 64 KiB
// with checksums still to be done, and only this header says how to cut them and lets the far side's
// kernel finish the checksums. Without it such frames arrive truncated or with bad checksums.
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4 // uapi headers older than the kernels that send it
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif
#define VH ((uint32_t)sizeof(struct virtio_net_hdr))
#define SLOT (VH + 65536 + 64) // IP's 64 KiB limit plus L2 headers; BIG TCP frames are larger and dropped
#define BATCH 64
#define ALIGN(n) (((n) + 63u) & ~63u)

struct ent {
	uint64_t pos;   // free-running arena offset
	int64_t t;      // release time, CLOCK_MONOTONIC ns
	uint32_t len;   // vnet header + frame
	uint32_t wire;  // bytes the bottleneck serialised (headers repeated per segment)
	uint32_t segs;  // wire frames in this (maybe GSO) frame
};

struct stats {
	uint64_t rx_pkts, rx_bytes, rx_segs, tx_pkts, tx_bytes, tx_segs, splits, opaque_gso;
	uint64_t loss, queue, mem, trunc, rxerr, txerr, kernel, qmax, linemax;
	int64_t late_max, late_sum, wake_max; // behind schedule at release; arrival to read, ns
};

struct dir {
	const char *name, *in, *out;
	int rx, tx;
	double delay_ns, jitter_ns, rate, loss, limit;
	uint8_t *arena;
	uint64_t asz, head, tail; // arena: bytes [tail, head) are in the line
	struct ent *q;
	uint64_t qmask, qh, qt;   // FIFO of entries [qh, qt)
	int64_t busy, last;       // bottleneck busy until; release time of the newest entry
	uint64_t rs[4];
	struct stats st;
};

static struct dir D[2];
static int g_normal, g_segment, g_spin_ns;
static int64_t g_poll_ns = -1, g_batch_ns = 50000;
static double g_overhead;
static uint64_t g_seed;
static const char *g_stats = "-";
static volatile sig_atomic_t g_stop, g_dump;
static int64_t g_t0;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("wan: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// xoshiro256**: fast, and a fixed seed reproduces a run's loss/jitter pattern exactly per direction.
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rnd(uint64_t *s)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
	return r;
}
static double urand(uint64_t *s) { return (rnd(s) >> 11) * 0x1.0p-53; }
static void seed(uint64_t *s, uint64_t v)
{
	for (int i = 0; i < 4; i++) { // splitmix64, so that nearby seeds give unrelated streams
		uint64_t z = (v += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		s[i] = z ^ (z >> 31);
	}
}

static int64_t jitter(struct dir *d)
{
	if (d->jitter_ns <= 0) return 0;
	if (!g_normal) return (int64_t)((2 * urand(d->rs) - 1) * d->jitter_ns);
	double z;
	do // Box-Muller, cut at 3 sigma so a rare tail draw cannot stall the FIFO behind it
		z = sqrt(-2 * log(1 - urand(d->rs))) * cos(2 * M_PI * urand(d->rs));
	while (fabs(z) > 3);
	return (int64_t)(z * d->jitter_ns);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16), put16(p + 2, v); }
static uint32_t sum16(const uint8_t *p, uint32_t n, uint32_t s)
{
	for (; n > 1; n -= 2, p += 2) s += get16(p);
	return n ? s + (uint32_t)(p[0] << 8) : s;
}
static uint16_t fold(uint32_t s)
{
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

// Where a GSO frame's headers are: the IP header that carries the L4 header (ip), for a tunnel also the
// outer IP and UDP headers (oip, oudp; 0 without), and the end of all headers (hlen).
struct hdrs {
	uint32_t ip, oip, oudp, hlen;
};

// The IP header at o, if one is there whose length field runs to the frame's end (as a GSO frame's
// do); returns its protocol and sets *next to what follows, or returns -1.
static int ip_at(const uint8_t *f, uint32_t flen, uint32_t o, uint32_t *next)
{
	if (o + 40 > flen) return -1;
	if (f[o] >> 4 == 4 && (f[o] & 15) >= 5 && get16(f + o + 2) == flen - o) return *next = o + (f[o] & 15u) * 4, f[o + 9];
	if (f[o] >> 4 == 6 && get16(f + o + 4) == flen - o - 40) return *next = o + 40, f[o + 6]; // no ext. headers
	return -1;
}

// Parses a GSO frame far enough to cut it into segments. Besides plain TCP/UDP over IP, one level of
// UDP encapsulation (VXLAN, GENEVE, FOU: a kernel tunnel on a sending host) is understood: its bytes
// between the outer UDP and the inner IP header are copied as they are. Returns 0 for anything else.
static int gso_parse(const struct virtio_net_hdr *vh, const uint8_t *f, uint32_t flen, struct hdrs *h)
{
	uint32_t o = 12, et, l4 = vh->csum_start, n, t = vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	while (o + 2 <= flen && ((et = get16(f + o)) == 0x8100 || et == 0x88a8)) o += 4;
	int want = t == VIRTIO_NET_HDR_GSO_UDP_L4 ? 17 : 6, p = ip_at(f, flen, o + 2, &n);
	if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) || !vh->gso_size || l4 + 20 > flen || p < 0) return 0;
	if (t != VIRTIO_NET_HDR_GSO_TCPV4 && t != VIRTIO_NET_HDR_GSO_TCPV6 && t != VIRTIO_NET_HDR_GSO_UDP_L4) return 0;
	*h = (struct hdrs){.ip = o + 2};
	if (n != l4) { // encapsulated: the inner IP header ends where the L4 header starts
		uint32_t m;
		if (p != 17 || n + 8 > l4) return 0;
		h->oip = h->ip, h->oudp = n;
		if (l4 >= n + 28 && ip_at(f, flen, l4 - 20, &m) == want && m == l4) h->ip = l4 - 20;
		else if (l4 >= n + 48 && ip_at(f, flen, l4 - 40, &m) == want && m == l4) h->ip = l4 - 40;
		else return 0;
	} else if (p != want) {
		return 0;
	}
	h->hlen = l4 + (want == 6 ? (uint32_t)(f[l4 + 12] >> 4) * 4 : 8);
	return h->hlen < flen;
}

// Sets an IP header's length (tot bytes from it on) and id for segment `first`; returns the L4
// pseudo-header sum without the length.
static uint32_t fix_ip(uint8_t *ip, uint32_t tot, uint32_t first, uint32_t proto)
{
	if (ip[0] >> 4 == 6) {
		put16(ip + 4, tot - 40);
		return sum16(ip + 8, 32, proto);
	}
	put16(ip + 2, tot);
	put16(ip + 4, get16(ip + 4) + first); // GSO numbers IPv4 ids consecutively
	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~fold(sum16(ip, (ip[0] & 15u) * 4, 0)));
	return sum16(ip + 12, 8, proto);
}

// Rewrites the copied headers of a run of segments starting at segment `first` that was cut out of a
// GSO frame, doing what the kernel's GSO would do per segment. Without a tunnel the L4 checksum stays
// "partial" (pseudo-header only) for the receiving kernel to finish, as the vnet header asks; a tunnel
// frame is cut into single frames with every checksum complete, since the kernel will not cut or
// finish those when we send them (their vnet header cannot describe the encapsulation).
static void fix_headers(uint8_t *f, const struct virtio_net_hdr *vh, const struct hdrs *h, uint32_t plen,
			uint32_t first, int last)
{
	uint32_t l4 = vh->csum_start, l4len = h->hlen - l4 + plen;
	int tcp = (vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_UDP_L4;
	uint8_t *th = f + l4, *ck = th + vh->csum_offset;
	if (tcp) {
		put32(th + 4, get32(th + 4) + first * vh->gso_size);
		if (first) th[13] &= (uint8_t)~0x80;        // CWR only on the first segment
		if (!last) th[13] &= (uint8_t)~(0x01 | 0x08); // FIN and PSH only on the last
	} else {
		put16(th + 4, l4len);
	}
	uint32_t ps = fix_ip(f + h->ip, h->hlen - h->ip + plen, first, tcp ? 6u : 17u) + l4len;
	if (!h->oudp) {
		put16(ck, fold(ps));
		return;
	}
	put16(ck, 0);
	uint16_t c = (uint16_t)~fold(sum16(th, l4len, ps));
	put16(ck, c || tcp ? c : 0xffff);
	uint8_t *u = f + h->oudp;
	uint32_t ulen = h->hlen - h->oudp + plen;
	ps = fix_ip(f + h->oip, h->hlen - h->oip + plen, first, 17) + ulen;
	put16(u + 4, ulen);
	if (get16(u + 6)) { // a zero outer checksum (usual for VXLAN over IPv4) means "none" and stays so
		put16(u + 6, 0);
		c = (uint16_t)~fold(sum16(u, ulen, ps));
		put16(u + 6, c ? c : 0xffff);
	}
}

// Reserves room at the head of the line and stamps the release time: serialisation at the bottleneck
// (FIFO behind what is already queued), then propagation delay + jitter, never before the previous
// frame (jitter without reordering, as netem does once a rate is set).
static uint8_t *line_put(struct dir *d, uint32_t len, uint32_t segs, uint32_t wire, int64_t now)
{
	uint64_t pos = d->head, need = ALIGN(len);
	if (pos % d->asz + need > d->asz) pos += d->asz - pos % d->asz; // frames never wrap
	if (pos + need - d->tail > d->asz || d->qt - d->qh > d->qmask) {
		d->st.mem += segs;
		return NULL;
	}
	int64_t t = now;
	if (d->rate > 0) {
		if (d->busy < now) d->busy = now;
		d->busy += (int64_t)(wire * 8e9 / d->rate + 0.5);
		t = d->busy;
	}
	int64_t j = (int64_t)d->delay_ns + jitter(d);
	t += j > 0 ? j : 0;
	if (t < d->last) t = d->last;
	d->last = t;
	struct ent *e = &d->q[d->qt++ & d->qmask];
	*e = (struct ent){.pos = pos, .t = t, .len = len, .wire = wire, .segs = segs};
	d->head = pos + need;
	if (d->head - d->tail > d->st.linemax) d->st.linemax = d->head - d->tail;
	return d->arena + pos % d->asz;
}

static uint8_t g_keep[65536];

// One frame (vnet header + Ethernet frame) in from the wire: decide each wire segment's fate, then
// queue the survivors, cutting GSO frames only where a segment was dropped or when --segment asks.
static void ingest(struct dir *d, const uint8_t *p, uint32_t len, int64_t now)
{
	const struct virtio_net_hdr *vh = (const void *)p;
	const uint8_t *f = p + VH;
	uint32_t flen = len - VH, hlen = 0, mss = flen, nseg = 1, pay = flen;
	struct hdrs h = {0};
	d->st.rx_pkts++, d->st.rx_bytes += flen;
	if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
		if (gso_parse(vh, f, flen, &h)) hlen = h.hlen, mss = vh->gso_size, pay = flen - hlen, nseg = (pay + mss - 1) / mss;
		else if (!d->st.opaque_gso++)
			fprintf(stderr, "wan: %s: a GSO frame of a kind we cannot cut (type %u); such frames are likely to be "
					"refused on sending (tx_error): turn segmentation offload off on the sender\n", d->name, vh->gso_type);
	}
	if (nseg <= 1) nseg = 1, hlen = 0, pay = mss = flen;
	d->st.rx_segs += nseg;
	// Loss is drawn first (netem drops before enqueueing), then drop-tail: a segment that does not fit
	// under the byte limit behind the current backlog is dropped, as a router's queue would.
	double backlog = d->rate > 0 && d->busy > now ? (double)(d->busy - now) * d->rate / 8e9 : 0;
	int cut1 = g_segment || h.oudp, whole = !(cut1 && nseg > 1); // tunnel frames: always single frames
	for (uint32_t k = 0; k < nseg; k++) {
		double w = hlen + (k + 1 < nseg ? mss : pay - k * mss) + g_overhead;
		g_keep[k] = 0;
		if (d->loss > 0 && urand(d->rs) < d->loss) d->st.loss++, whole = 0;
		else if (d->rate > 0 && backlog + w > d->limit) d->st.queue++, whole = 0;
		else backlog += d->rate > 0 ? w : 0, g_keep[k] = 1;
	}
	if (backlog > d->st.qmax) d->st.qmax = (uint64_t)backlog;
	uint32_t oh = (uint32_t)g_overhead;
	if (whole) {
		uint8_t *o = line_put(d, len, nseg, flen + (nseg - 1) * hlen + nseg * oh, now);
		if (o) memcpy(o, p, len);
		return;
	}
	for (uint32_t k = 0, e; k < nseg; k = e) {
		if (!g_keep[k]) {
			e = k + 1;
			continue;
		}
		for (e = k + 1; e < nseg && g_keep[e] && !cut1; e++) {}
		uint32_t off = hlen + k * mss, end = hlen + e * mss < flen ? hlen + e * mss : flen, plen = end - off, n = e - k;
		uint8_t *o = line_put(d, VH + hlen + plen, n, n * (hlen + oh) + plen, now);
		if (!o) continue;
		d->st.splits++;
		memcpy(o, p, VH + hlen);
		memcpy(o + VH + hlen, f + off, plen);
		struct virtio_net_hdr *ov = (void *)o;
		if (n == 1) ov->gso_type = VIRTIO_NET_HDR_GSO_NONE, ov->gso_size = 0;
		if (h.oudp) ov->flags = 0; // checksums complete
		fix_headers(o + VH, vh, &h, plen, k, e == nseg);
	}
}

// Sends everything whose release time has come, in order, in batches.
static void release(struct dir *d, int64_t now)
{
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	for (;;) {
		int n = 0;
		for (uint64_t i = d->qh; i != d->qt && n < BATCH; i++, n++) {
			struct ent *e = &d->q[i & d->qmask];
			if (e->t > now) break;
			iov[n] = (struct iovec){d->arena + e->pos % d->asz, e->len};
			m[n].msg_hdr = (struct msghdr){.msg_iov = &iov[n], .msg_iovlen = 1};
		}
		if (!n) return;
		int r = sendmmsg(d->tx, m, (unsigned)n, 0);
		if (r < 0 && errno == EINTR) continue;
		int bad = r < 0; // the first frame was refused: drop it, or the line would wedge on it
		if (bad) r = 1;
		for (int i = 0; i < r; i++) {
			struct ent *e = &d->q[d->qh++ & d->qmask];
			if (bad) d->st.txerr += e->segs;
			else d->st.tx_pkts++, d->st.tx_bytes += e->len - VH, d->st.tx_segs += e->segs;
			int64_t late = now - g_batch_ns - e->t; // from the real clock, not the batch horizon
			d->st.late_sum += late;
			if (late > d->st.late_max) d->st.late_max = late;
			d->tail = e->pos + ALIGN(e->len);
		}
	}
}

static uint8_t *g_stage;

// Drains one interface's socket, bounded so that the other direction is not starved. Each frame is
// timed by the kernel's receive timestamp, not by when we got round to reading it: on a busy box our
// wake-up can be milliseconds late, and that must not add to the emulated delay.
static int receive(struct dir *d)
{
	int got = 0;
	static struct mmsghdr m[BATCH];
	static struct iovec iov[BATCH];
	static union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl[BATCH];
	for (int round = 0; round < 8; round++) { // budget: 8 * BATCH frames
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){g_stage + (size_t)i * SLOT, SLOT};
			m[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1, .msg_control = ctl[i].buf,
						       .msg_controllen = sizeof ctl[i].buf};
		}
		int r = recvmmsg(d->rx, m, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR) return got;
			d->st.rxerr++; // e.g. EINVAL: a GSO kind the vnet header cannot describe; the kernel dropped it
			continue;
		}
		struct timespec rt;
		clock_gettime(CLOCK_REALTIME, &rt);
		int64_t now = now_ns(), off = rt.tv_sec * 1000000000LL + rt.tv_nsec - now;
		for (int i = 0; i < r; i++) {
			if ((m[i].msg_hdr.msg_flags & MSG_TRUNC) || m[i].msg_len > SLOT || m[i].msg_len < VH + 14) {
				d->st.trunc++;
				continue;
			}
			int64_t at = now;
			struct cmsghdr *c = CMSG_FIRSTHDR(&m[i].msg_hdr);
			if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(c), sizeof ts);
				int64_t k = ts.tv_sec * 1000000000LL + ts.tv_nsec - off;
				if (k <= now && k > now - 1000000000LL) at = k; // a wall-clock step would make it nonsense
				if (now - at > d->st.wake_max) d->st.wake_max = now - at;
			}
			ingest(d, g_stage + (size_t)i * SLOT, m[i].msg_len, at);
		}
		release(d, now + g_batch_ns); // zero-delay frames leave at once
		got += r;
		if (r < BATCH) return got;
	}
	return got;
}

static void dump_json(FILE *o)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	fprintf(o, "{\"uptime_s\":%.3f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"seed\":%llu,\"segment\":%s,",
		(now_ns() - g_t0) / 1e9, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, (unsigned long long)g_seed, g_segment ? "true" : "false");
	for (int i = 0; i < 2; i++) {
		struct dir *d = &D[i];
		struct stats *s = &d->st;
		struct tpacket_stats ks;
		socklen_t kl = sizeof ks;
		if (!getsockopt(d->rx, SOL_PACKET, PACKET_STATISTICS, &ks, &kl)) s->kernel += ks.tp_drops; // reading resets
		fprintf(o,
			"\"%s\":{\"in\":\"%s\",\"out\":\"%s\",\"delay_ms\":%g,\"jitter_ms\":%g,\"rate_bps\":%.0f,\"loss\":%g,"
			"\"limit_bytes\":%.0f,\"rx_packets\":%llu,\"rx_bytes\":%llu,\"rx_segments\":%llu,\"tx_packets\":%llu,"
			"\"tx_bytes\":%llu,\"tx_segments\":%llu,\"in_line\":%llu,\"splits\":%llu,\"opaque_gso\":%llu,"
			"\"drops\":{\"loss\":%llu,\"queue\":%llu,\"memory\":%llu,\"truncated\":%llu,\"rx_error\":%llu,"
			"\"tx_error\":%llu,\"kernel\":%llu},\"queue_max_bytes\":%llu,\"line_max_bytes\":%llu,\"late_avg_us\":%.1f,\"late_max_us\":%.1f,\"read_lag_max_us\":%.1f}%s",
			d->name, d->in, d->out, d->delay_ns / 1e6, d->jitter_ns / 1e6, d->rate, d->loss, d->limit,
			(unsigned long long)s->rx_pkts, (unsigned long long)s->rx_bytes, (unsigned long long)s->rx_segs,
			(unsigned long long)s->tx_pkts, (unsigned long long)s->tx_bytes, (unsigned long long)s->tx_segs,
			(unsigned long long)(d->qt - d->qh), (unsigned long long)s->splits, (unsigned long long)s->opaque_gso,
			(unsigned long long)s->loss, (unsigned long long)s->queue, (unsigned long long)s->mem,
			(unsigned long long)s->trunc, (unsigned long long)s->rxerr, (unsigned long long)s->txerr,
			(unsigned long long)s->kernel, (unsigned long long)s->qmax, (unsigned long long)s->linemax,
			s->tx_pkts ? s->late_sum / 1e3 / s->tx_pkts : 0.0, s->late_max / 1e3, s->wake_max / 1e3, i ? "}\n" : ",");
	}
}

// Stats go to stdout, or replace PATH atomically so that a reader never sees half a document.
static void dump(void)
{
	if (!strcmp(g_stats, "-")) {
		dump_json(stdout);
		fflush(stdout);
		return;
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", g_stats);
	FILE *o = fopen(tmp, "w");
	if (!o) {
		fprintf(stderr, "wan: --stats %s: %s\n", tmp, strerror(errno));
		return;
	}
	dump_json(o);
	if (fclose(o) || rename(tmp, g_stats)) fprintf(stderr, "wan: --stats %s: %s\n", g_stats, strerror(errno));
}

static int open_if(const char *name)
{
	unsigned idx = if_nametoindex(name);
	if (!idx) die("interface '%s': %s", name, strerror(errno));
	// Protocol 0 until bound: a socket made with ETH_P_ALL would meanwhile catch every interface's frames.
	int fd = socket(AF_PACKET, SOCK_RAW, 0), one = 1, rb = 64 << 20, sb = 16 << 20;
	if (fd < 0) die("socket(AF_PACKET): %s (needs CAP_NET_RAW)", strerror(errno));
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one)) die("PACKET_VNET_HDR: %s", strerror(errno));
	// Our own transmissions on this interface must not come back in as traffic from it.
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one))
		die("PACKET_IGNORE_OUTGOING: %s (kernel >= 4.20 needed)", strerror(errno));
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one); // only a speed-up
	if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one)) die("SO_TIMESTAMPNS: %s", strerror(errno));
	// Bursts arrive while we sleep towards a deadline; a small buffer would drop them in the kernel.
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb)) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb)) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)idx};
	if (bind(fd, (struct sockaddr *)&sll, sizeof sll)) die("bind to '%s': %s", name, strerror(errno));
	// A cable passes every frame, not only those addressed to this end's MAC.
	struct packet_mreq mr = {.mr_ifindex = (int)idx, .mr_type = PACKET_MR_PROMISC};
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr)) die("promiscuous '%s': %s", name, strerror(errno));
	return fd;
}

static const char *const HINT[] = {"milliseconds, e.g. 6 or 0.5", "bit/s, e.g. 100m or 1g",
				   "bytes, e.g. 1500000 or 2m", "a probability 0..1 or a percentage, e.g. 0.001 or 0.1%"};

// "X" sets both directions, "X,Y" sets a->b and b->a. kind: 0 ms, 1 bit/s, 2 bytes, 3 probability.
static void pair(const char *opt, const char *arg, int kind, double out[2])
{
	const char *s = arg;
	for (int i = 0; i < 2; i++) {
		char *end;
		errno = 0;
		double v = strtod(s, &end), m = 1, b = kind == 2 ? 1024 : 1000;
		if (end == s || errno || !isfinite(v) || v < 0) break;
		if ((kind == 1 || kind == 2) && *end && strchr("kKmMgG", *end))
			m = *end == 'k' || *end == 'K' ? b : *end == 'm' || *end == 'M' ? b * b : b * b * b, end++;
		else if (kind == 3 && *end == '%')
			m = 0.01, end++;
		out[i] = out[1] = v * m;
		if (kind == 3 && out[i] > 1) break;
		if (*end == 0) return;
		if (*end != ',' || i == 1) break;
		s = end + 1;
	}
	die("--%s: bad value '%s' (want %s; 'X,Y' sets a->b,b->a)", opt, arg, HINT[kind]);
}

static long num(const char *opt, const char *arg, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (end == arg || *end || errno || v < lo || v > hi) die("--%s: bad value '%s' (want an integer %ld..%ld)", opt, arg, lo, hi);
	return v;
}

static void usage(FILE *o)
{
	fputs("usage: wan -a IF -b IF [options]   (as root, in the namespace that holds both interfaces)\n"
	      "Forwards every frame between IF a and IF b; per direction: loss, bottleneck, delay, jitter.\n"
	      "Per-direction options take X (both directions) or X,Y (a->b,b->a).\n"
	      "  -a, --if-a IF          first interface\n"
	      "  -b, --if-b IF          second interface\n"
	      "  -d, --delay MS         one-way delay in ms (default 0)\n"
	      "  -j, --jitter MS        jitter in ms: uniform +-MS, or normal sigma MS cut at 3 sigma; never reorders\n"
	      "      --dist uniform|normal  jitter distribution (default uniform)\n"
	      "  -r, --rate BPS         bottleneck rate in bit/s, k/m/g = 1e3/1e6/1e9 (default 0 = none)\n"
	      "  -q, --limit BYTES      drop-tail queue limit, k/m = KiB/MiB (default one BDP:\n"
	      "                         rate x (delay a2b + delay b2a), at least 64 KiB)\n"
	      "  -l, --loss P           random loss per wire frame: 0..1 or N% (default 0)\n"
	      "      --overhead BYTES   bytes added per frame when serialising, e.g. 24 = preamble+FCS+gap (default 0)\n"
	      "  -s, --seed N           random seed (default from the clock; reported in the stats)\n"
	      "      --mem BYTES        delay-line memory per direction (default rate x delay + limit, twice, >= 64m)\n"
	      "      --segment          cut GSO bursts into wire frames: per-frame timing, more CPU\n"
	      "      --batch-us N       frames due within N us of a wake-up leave with it, up to N us early (default 50)\n"
	      "      --spin-us N        busy-poll the last N us before a release instead of sleeping (default 0)\n"
	      "      --poll-us N        read frames in batches every N us, 0 = on arrival (default: half the\n"
	      "                         shortest delay, at most 1000; 0 below 40 us of delay)\n"
	      "      --rt PRIO          run SCHED_FIFO at PRIO 1..99: on a loaded box, wake-ups are then rarely late\n"
	      "      --stats PATH       JSON stats there on SIGUSR1 and at exit (default '-': stdout)\n"
	      "  -h, --help\n",
	      o);
}

static void on_sig(int s)
{
	if (s == SIGUSR1) g_dump = 1;
	else g_stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"if-a", 1, 0, 'a'}, {"if-b", 1, 0, 'b'}, {"delay", 1, 0, 'd'}, {"jitter", 1, 0, 'j'}, {"dist", 1, 0, 'D'},
		{"rate", 1, 0, 'r'}, {"limit", 1, 0, 'q'}, {"loss", 1, 0, 'l'}, {"overhead", 1, 0, 'O'}, {"seed", 1, 0, 's'},
		{"mem", 1, 0, 'M'}, {"segment", 0, 0, 'S'}, {"batch-us", 1, 0, 'L'}, {"spin-us", 1, 0, 'P'},
		{"stats", 1, 0, 'T'}, {"rt", 1, 0, 'R'}, {"poll-us", 1, 0, 'p'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	const char *ifa = NULL, *ifb = NULL;
	double delay[2] = {0, 0}, jit[2] = {0, 0}, rate[2] = {0, 0}, limit[2] = {-1, -1}, loss[2] = {0, 0}, mem[2] = {0, 0};
	long rt = 0;
	int c;
	g_seed = (uint64_t)now_ns() ^ (uint64_t)getpid() << 32;
	while ((c = getopt_long(argc, argv, "a:b:d:j:r:q:l:s:h", lo, NULL)) != -1) {
		switch (c) {
		case 'a': ifa = optarg; break;
		case 'b': ifb = optarg; break;
		case 'd': pair("delay", optarg, 0, delay); break;
		case 'j': pair("jitter", optarg, 0, jit); break;
		case 'D':
			if (!strcmp(optarg, "normal")) g_normal = 1;
			else if (strcmp(optarg, "uniform")) die("--dist: bad value '%s' (want uniform or normal)", optarg);
			break;
		case 'r': pair("rate", optarg, 1, rate); break;
		case 'q': pair("limit", optarg, 2, limit); break;
		case 'l': pair("loss", optarg, 3, loss); break;
		case 'O': g_overhead = (double)num("overhead", optarg, 0, 1000); break;
		case 's': g_seed = (uint64_t)num("seed", optarg, 0, LONG_MAX); break;
		case 'M': pair("mem", optarg, 2, mem); break;
		case 'S': g_segment = 1; break;
		case 'L': g_batch_ns = num("batch-us", optarg, 0, 100000) * 1000; break;
		case 'P': g_spin_ns = (int)num("spin-us", optarg, 0, 100000) * 1000; break;
		case 'T': g_stats = optarg; break;
		case 'p': g_poll_ns = num("poll-us", optarg, 0, 1000000) * 1000; break;
		case 'R': rt = num("rt", optarg, 1, 99); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) die("unexpected argument '%s' (see --help)", argv[optind]);
	if (!ifa || !ifb) die("both -a IF and -b IF are required (see --help)");
	if (!strcmp(ifa, ifb)) die("-a and -b must be different interfaces");
	double rtt_s = (delay[0] + delay[1]) / 1e3;
	g_stage = malloc((size_t)BATCH * SLOT);
	if (!g_stage) die("out of memory");
	for (int i = 0; i < 2; i++) {
		struct dir *d = &D[i];
		d->name = i ? "b2a" : "a2b", d->in = i ? ifb : ifa, d->out = i ? ifa : ifb;
		d->delay_ns = delay[i] * 1e6, d->jitter_ns = jit[i] * 1e6, d->rate = rate[i], d->loss = loss[i];
		d->limit = limit[i] >= 0 ? limit[i] : fmax(rate[i] / 8 * rtt_s, 65536);
		if (d->rate > 0 && d->limit < 1600) die("--limit %.0f is below one full-size frame", d->limit);
		double want = mem[i] > 0 ? mem[i] : fmax(64 << 20, 2 * (rate[i] / 8 * (delay[i] + 3 * jit[i]) / 1e3 + d->limit));
		d->asz = want < 4.0 * SLOT ? 4 * SLOT : (uint64_t)want;
		uint64_t qn = 4096; // entries: at most one per 128 bytes of arena (64-byte padding + vnet header)
		while (qn < d->asz / 128) qn <<= 1;
		d->qmask = qn - 1;
		d->arena = mmap(NULL, d->asz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		d->q = calloc(qn, sizeof *d->q);
		if (d->arena == MAP_FAILED || !d->q) die("cannot allocate %llu bytes of delay line", (unsigned long long)d->asz);
		seed(d->rs, g_seed + (uint64_t)i);
	}
	D[0].rx = D[1].tx = open_if(ifa);
	D[1].rx = D[0].tx = open_if(ifb);
	// Wake-ups are made exact (no timer slack; real-time tasks get none anyway) and batching is done
	// here instead (--batch-us): a wake-up also sends what is due within the batch window, so at high
	// frame rates one wake-up serves many frames, and an isolated frame still leaves on time.
	prctl(PR_SET_TIMERSLACK, 1);
	if (rt) {
		struct sched_param sp = {.sched_priority = (int)rt};
		if (sched_setscheduler(0, SCHED_FIFO, &sp)) die("--rt %ld: %s", rt, strerror(errno));
		mlockall(MCL_CURRENT | MCL_FUTURE); // best effort: a page fault is a late release too
	}

	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT), sigaddset(&block, SIGTERM), sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old); // delivered only inside epoll_pwait2, so none is missed
	struct sigaction sa = {.sa_handler = on_sig};
	sigaction(SIGINT, &sa, NULL), sigaction(SIGTERM, &sa, NULL), sigaction(SIGUSR1, &sa, NULL);

	int ep = epoll_create1(0), ep_timer = epoll_create1(0); // ep_timer watches nothing: a signal-safe sleep
	if (g_poll_ns < 0) { // half the shortest time a frame spends in the line, at most 1 ms
		double lo = 1e6;
		for (int i = 0; i < 2; i++) lo = fmin(lo, (D[i].delay_ns - D[i].jitter_ns * (g_normal ? 3 : 1)) / 2);
		g_poll_ns = lo < 20000 ? 0 : (int64_t)lo;
	}
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		if (ep < 0 || ep_timer < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, D[i].rx, &ev)) die("epoll: %s", strerror(errno));
	}
	g_t0 = now_ns();
	fprintf(stderr, "wan: ready %s <-> %s pid %d seed %llu poll %lld us\n", ifa, ifb, getpid(),
		(unsigned long long)g_seed, (long long)(g_poll_ns / 1000));
	// With a poll interval, frames are read in batches every interval instead of one wake-up per frame:
	// their kernel timestamps keep the timing exact as long as they are read before they are due. The
	// first frame after a quiet spell still wakes us at once (idle).
	int64_t next_poll = 0;
	int idle = 1;
	while (!g_stop) {
		if (g_dump) g_dump = 0, dump();
		int64_t now = now_ns(), next = INT64_MAX;
		if (g_poll_ns && !idle && now >= next_poll) {
			int a = receive(&D[0]), b = receive(&D[1]);
			// A read that hit its budget left frames behind: come back right after the releases.
			next_poll = a >= 8 * BATCH || b >= 8 * BATCH ? now : now + g_poll_ns;
			idle = !a && !b && D[0].qh == D[0].qt && D[1].qh == D[1].qt;
		}
		for (int i = 0; i < 2; i++) {
			release(&D[i], now + g_batch_ns);
			if (D[i].qh != D[i].qt && D[i].q[D[i].qh & D[i].qmask].t < next) next = D[i].q[D[i].qh & D[i].qmask].t;
		}
		int on_rx = !g_poll_ns || idle;
		if (!on_rx && next_poll < next) next = next_poll;
		struct timespec ts, *tp = NULL;
		if (next != INT64_MAX) {
			int64_t w = next - now_ns() - g_spin_ns;
			if (w < 0) w = 0;
			ts.tv_sec = w / 1000000000, ts.tv_nsec = w % 1000000000, tp = &ts;
		}
		struct epoll_event ev[2];
		int n = epoll_pwait2(on_rx ? ep : ep_timer, ev, 2, tp, &old);
		if (n < 0 && errno != EINTR) die("epoll_pwait2: %s", strerror(errno));
		for (int i = 0; i < n; i++) receive(&D[ev[i].data.u32]);
		if (n > 0 && g_poll_ns) idle = 0, next_poll = now_ns() + g_poll_ns;
	}
	dump();
	return 0;
}

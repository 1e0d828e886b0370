// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* gen's xdp-live engine: run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on a
 * copy of the profile's frame 0. Turns the frame into frame n (the same bytes
 * profiles::Template::write produces) and returns XDP_TX, which sends it out of the
 * interface given as ingress_ifindex.
 *
 * n = k * nqueues + queue_id, with k the queue's count of frames sent (array map
 * `qstate`). queue_id is rodata: one program instance per queue, because live
 * frames always carry rx_queue_index 0 (the test run registers its own rxq 0). Every varying field is rewritten and both checksums
 * recomputed, and the whole frame is first restored from the template in rodata,
 * so the result does not depend on what the recycled page held before.
 *
 * Why the restore and the trim (issue 9): live frames come from a page pool and
 * are recycled when whoever consumed them returns them. On veth, a DUT that answers
 * with XDP_TX hands *our* page back through the peer, after rewriting it in place
 * (addresses swapped, an answer appended with bpf_xdp_adjust_tail). The kernel's
 * reset_ctx() only notices a moved data pointer or changed flags, so the next run
 * of the page got the DUT's bytes and the DUT's frame length: the frames turned into
 * "replies" with a UDP length past the end (XDP_ABORTED after we had counted them)
 * or went out with the wrong addresses. So every frame we send is rewritten in full
 * from `tmpl`, and user space passes the frame with one pad byte that the program
 * trims (bpf_xdp_adjust_tail -1): a changed data_end makes the kernel rebuild the
 * xdp_frame from our context (length included) after every run.
 *
 * Pacing happens here, because one BPF_PROG_RUN call costs milliseconds of set-up
 * (page pool) and cannot be issued per packet: user space starts long runs and the
 * program sends (XDP_TX) only when the queue's next departure time has come
 * (bpf_ktime_get_ns, CLOCK_MONOTONIC, the clock of Rust's Instant) and returns
 * XDP_DROP otherwise, so the kernel's run loop is the busy-wait. CBR departures are
 * t0 + k * gap; Poisson adds exponential gaps drawn from a 4096-entry table. The
 * lateness (now - scheduled) of every frame sent goes into a log-linear histogram
 * (`devhist`, 32 sub-buckets per power of two) that user space reads at the end. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_PATCHES 6
#define MAX_LIST 256
#define MAX_LABEL 16
#define MAX_UDP_WORDS 256
#define MAX_FRAME 560 /* template bytes, multiple of 8 */
#define IP_AT 14
#define UDP_AT 34

enum { KIND_INCREMENT = 0, KIND_RANDOM = 1, KIND_LIST = 2 };

struct patch {
	__u32 offset;
	__u32 width;
	__u32 kind;
	__u32 nvals;
	__u64 min;
	__u64 span;
	__u64 arg; /* increment: step; random: seed */
};

const volatile struct patch patches[MAX_PATCHES] = {};
const volatile __u32 npatches = 0;
const volatile __u32 nqueues = 1;
const volatile __u32 queue_id = 0;
const volatile __u32 varies = 0;
const volatile __u32 dns_on = 0;
const volatile __u32 dns_id_at = 0;
const volatile __u32 dns_port_at = 0;
const volatile __u32 dns_first_port = 0;
const volatile __u32 dns_ports = 1;
const volatile __u32 dns_label_at = 0;
const volatile __u32 dns_label_len = 0;
const volatile __u32 dns_random = 0;
const volatile __u64 dns_count = 1;
const volatile __u64 dns_seed = 0;
const volatile __u32 radix = 1;
const volatile __u8 charset[64] = {};
/* The template's frame 0 and its length; its UDP length (host order). */
const volatile __u64 tmpl[MAX_FRAME / 8] = {};
const volatile __u32 tmpl_len = 0;
const volatile __u32 udp_len = 0;

#define DEV_BUCKETS 1184
#define EXP_TABLE 4096

struct qstate {
	__u64 k;           /* frames sent */
	__u64 limit;       /* send no more than this */
	__u64 t0_ns;       /* schedule origin (monotonic) */
	__u64 gap_fp;      /* mean gap, ns << 16; 0 = unpaced */
	__u64 next_fp;     /* Poisson: next departure, ns << 16 after t0 */
	__u64 rng;         /* Poisson: xorshift state */
	__u64 deadline_ns; /* monotonic; 0 = none */
	__u64 idle;        /* runs that sent nothing (not due) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct qstate);
} qstate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256 * DEV_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} devhist SEC(".maps");

/* -ln(u) << 16 for u uniform over 4096 cells; filled by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EXP_TABLE);
	__type(key, __u32);
	__type(value, __u64);
} exptab SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PATCHES * MAX_LIST);
	__type(key, __u32);
	__type(value, __u64);
} lists SEC(".maps");

static __always_inline __u64 splitmix64(__u64 x)
{
	__u64 z = x + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* High 64 bits of a 64x64-bit product. */
static __always_inline __u64 mulhi(__u64 a, __u64 b)
{
	__u64 al = a & 0xffffffff, ah = a >> 32, bl = b & 0xffffffff, bh = b >> 32;
	__u64 p0 = al * bl, p1 = al * bh, p2 = ah * bl, p3 = ah * bh;
	__u64 mid = (p0 >> 32) + (p1 & 0xffffffff) + (p2 & 0xffffffff);

	return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

static __always_inline __u32 dev_bucket(__u64 v)
{
	__u32 e = 0, b;
	__u64 x = v;

	if (v < 64)
		return (__u32)v;
	if (x >> 32) { e += 32; x >>= 32; }
	if (x >> 16) { e += 16; x >>= 16; }
	if (x >> 8) { e += 8; x >>= 8; }
	if (x >> 4) { e += 4; x >>= 4; }
	if (x >> 2) { e += 2; x >>= 2; }
	if (x >> 1) { e += 1; }
	b = 64 + (e - 6) * 32 + (__u32)((v >> (e - 5)) & 31);
	return b < DEV_BUCKETS ? b : DEV_BUCKETS - 1;
}

SEC("xdp")
int gen_live(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 q = queue_id;
	struct qstate *st;
	__u64 k, n, v;
	__u32 i, j;

	st = bpf_map_lookup_elem(&qstate, &q);
	if (!st)
		return XDP_ABORTED;
	k = st->k;
	if (k >= st->limit)
		return XDP_DROP;
	if (st->gap_fp) {
		__u64 now = bpf_ktime_get_ns(), sched, dev;
		__u32 key;
		__u64 *h;

		if (st->deadline_ns && now >= st->deadline_ns)
			return XDP_DROP;
		sched = st->t0_ns + ((st->next_fp ? st->next_fp : k * st->gap_fp) >> 16);
		if (now < sched) {
			st->idle++;
			return XDP_DROP;
		}
		dev = now - sched;
		key = (q & 255) * DEV_BUCKETS + dev_bucket(dev);
		h = bpf_map_lookup_elem(&devhist, &key);
		if (h)
			*h += 1;
		if (st->next_fp) {
			__u64 r = st->rng;
			__u32 ek;
			__u64 *ev;

			r ^= r >> 12;
			r ^= r << 25;
			r ^= r >> 27;
			st->rng = r;
			ek = (__u32)((r * 0x2545f4914f6cdd1dULL) >> 52) & (EXP_TABLE - 1);
			ev = bpf_map_lookup_elem(&exptab, &ek);
			st->next_fp += ev ? (st->gap_fp >> 8) * (*ev) >> 8 : st->gap_fp;
		}
	}
	st->k = k + 1;
	/* One pad byte beyond the frame: trimming it marks the context changed, so
	 * the kernel refreshes the xdp_frame (length) from it after this run. */
	if (bpf_xdp_adjust_tail(ctx, -1))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	/* Restore the template over whatever the page held. */
	for (i = 0; i < MAX_FRAME / 8; i++) {
		__u64 *w = data + i * 8;

		if (i * 8 + 8 > tmpl_len)
			break;
		if ((void *)(w + 1) > end)
			return XDP_ABORTED;
		*w = tmpl[i];
	}
	for (j = 0; j < 8; j++) {
		__u32 at = (tmpl_len & ~7u) + j, w8;
		__u8 *b;

		if (at >= tmpl_len || at >= MAX_FRAME)
			break;
		b = data + (at & 1023);
		if ((void *)(b + 1) > end)
			return XDP_ABORTED;
		w8 = at >> 3;
		if (w8 >= MAX_FRAME / 8)
			break;
		*b = (__u8)(tmpl[w8] >> (8 * j));
	}
	if (!varies)
		return XDP_TX;
	n = k * nqueues + q;

	for (i = 0; i < MAX_PATCHES; i++) {
		__u8 *p;
		__u32 w;

		if (i >= npatches)
			break;
		w = patches[i].width;
		if (patches[i].kind == KIND_INCREMENT) {
			v = patches[i].min +
			    ((n % patches[i].span) * (patches[i].arg % patches[i].span)) % patches[i].span;
		} else if (patches[i].kind == KIND_RANDOM) {
			v = patches[i].min + mulhi(splitmix64(n ^ patches[i].arg), patches[i].span);
		} else {
			__u32 key = i * MAX_LIST + (__u32)(n % patches[i].nvals);
			__u64 *lv = bpf_map_lookup_elem(&lists, &key);

			if (!lv)
				return XDP_ABORTED;
			v = *lv;
		}
		p = data + (patches[i].offset & 0x7ff);
		if ((void *)(p + 8) > end)
			return XDP_ABORTED;
		for (j = 0; j < 8; j++) {
			if (j >= w)
				break;
			p[j] = (__u8)(v >> (8 * (w - 1 - j)));
		}
	}

	if (dns_on) {
		__u8 *p = data + (dns_id_at & 0x7ff);
		__u16 port = dns_first_port + (__u16)((n >> 16) % dns_ports);
		__u64 idx;

		if ((void *)(p + 2) > end)
			return XDP_ABORTED;
		p[0] = (__u8)(n >> 8);
		p[1] = (__u8)n;
		p = data + (dns_port_at & 0x7ff);
		if ((void *)(p + 2) > end)
			return XDP_ABORTED;
		p[0] = port >> 8;
		p[1] = port & 0xff;
		if (dns_label_len) {
			idx = dns_random ? splitmix64(n ^ dns_seed) % dns_count : n % dns_count;
			p = data + (dns_label_at & 0x7ff);
			for (j = 0; j < MAX_LABEL; j++) {
				__u32 at;

				if (j >= dns_label_len)
					break;
				at = (dns_label_len - 1 - j) & (MAX_LABEL - 1);
				if ((void *)(p + at + 1) > end)
					return XDP_ABORTED;
				p[at] = charset[(idx % radix) & 63];
				idx /= radix;
			}
		}
	}

	/* IPv4 header checksum. */
	{
		__u16 *ip = data + IP_AT;
		__u64 s = 0;

		if ((void *)(ip + 10) > end)
			return XDP_ABORTED;
		ip[5] = 0;
		for (j = 0; j < 10; j++)
			s += ip[j];
		ip[5] = ~fold(s);
	}
	/* UDP checksum over the pseudo header and the datagram. */
	{
		__u16 *ip = data + IP_AT;
		__u8 *udp = data + UDP_AT;
		__u16 *uw = (void *)udp;
		__u32 ulen;
		__u64 s = 0;
		__u16 c;

		if ((void *)(udp + 8) > end)
			return XDP_ABORTED;
		ulen = udp_len & 0xffff;
		uw[3] = 0;
		s += ip[6] + ip[7] + ip[8] + ip[9];
		s += bpf_htons(17);
		s += bpf_htons((__u16)ulen);
		for (j = 0; j < MAX_UDP_WORDS; j++) {
			__u16 *w = (void *)(udp + j * 2);

			if (j * 2 + 1 >= ulen)
				break;
			if ((void *)(w + 1) > end)
				return XDP_ABORTED;
			s += *w;
		}
		if (ulen & 1) {
			__u8 *last = udp + ((ulen - 1) & 0x7ff);

			if ((void *)(last + 1) > end)
				return XDP_ABORTED;
			s += bpf_htons((__u16)(*last) << 8);
		}
		c = ~fold(s);
		if (c == 0)
			c = 0xffff;
		uw[3] = c;
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

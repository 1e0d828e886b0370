// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* gen's xdp-live engine: run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on a
 * copy of the profile's frame 0. Turns the frame into frame n (the same bytes
 * profiles::Template::write produces) and returns XDP_TX, which sends it out of the
 * interface given as ingress_ifindex.
 *
 * n = k * nqueues + queue_id, with k the queue's count of frames sent (array map
 * `qstate`). queue_id is rodata: one program instance per queue, because live
 * frames always carry rx_queue_index 0 (the test run registers its own rxq 0). Every varying field is rewritten and both checksums
 * updated, and the whole frame is first restored from the template in rodata,
 * so the result does not depend on what the recycled page held before.
 *
 * Cost (gen/bench/ablate.sh: the program alone, plain test runs, trim cut out,
 * min-multi-flow, best of 7 on 2 shared cores): 73 ns per frame at first, 45 with
 * the residue cache and checksum updates below, 30 with the per-run constants in
 * rodata; the bench's reference with the same restore 31-34. No division on the
 * common path: each queue's instance caches the residues (n * step) % span of its
 * next frame n + nqueues in .bss and recomputes them only for another n (first
 * frame, a jump in k); the step (nqueues * step) % span is rodata. No pass over the
 * header and datagram for the checksums: they are updated from the template's by
 * each field's change (RFC 1624), computed from the field's value (2^16 = 1 mod
 * 0xffff). Everything that depends only on the template is computed by user space
 * (LiveProgram::load_for in gen/src/live.rs) into rodata: which checksums cover
 * each patch (PF_IP, PF_UDP), the patches that go byte by byte (PF_BYTES: two
 * patches overlap, or one straddles a checksum's range), and the checksum bases
 * ip_base/udp_base (~checksum of frame 0 minus the template sums of the fields
 * whose new sums are added), so a frame only adds its fields' sums. The restore's
 * tail is one 4-, 2- and 1-byte store, not a byte loop (~6 ns).
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
 * The trim is a fixed amount (the pad byte, and for a smaller size of a mix what
 * lies beyond it), so it needs every run to start at the length user space passed.
 * It does: the context is the page's own copy in the test run's page header, which
 * no consumer of the frame writes (they get the xdp_frame or an skb built from it,
 * both from the data pointer on), and reset_ctx() restores it to the original
 * before the page's next run whenever the context changed, which our trim always
 * does. A DUT that drops natively, one that passes to the stack and one that
 * answers in our page were each checked frame by frame (gen/tests/gen.rs:
 * xdp_live_frames_keep_their_sizes_whatever_the_dut_does_with_the_pages).
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
#define MAX_FRAME 1528 /* template bytes, multiple of 8: 1518 + two VLAN tags */

enum { KIND_INCREMENT = 0, KIND_RANDOM = 1, KIND_LIST = 2 };

/* Per-patch flags, set by user space (gen/src/live.rs) from the template. */
#define PF_BYTES 1 /* byte by byte: overlaps another patch, straddles a checksum's
		    * range edge, or is 8 bytes ending at an odd offset */
#define PF_IP 2    /* under the IPv4 header checksum */
#define PF_UDP 4   /* under the transport checksum (pseudo header included) */

struct patch {
	__u32 offset;
	__u32 width;
	__u32 kind;
	__u32 nvals;
	__u64 min;
	__u64 span;
	__u64 arg;   /* increment: step; random: seed */
	__u64 rstep; /* increment, list: (nqueues * step) % span (list: step 1, span nvals) */
	__u32 flags; /* PF_* */
	__u32 shift; /* 8 if the field ends at an odd offset (its sum is rotated), else 0 */
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
/* The DNS fields lie in the UDP datagram, apart from each other and from every
 * patch: their sums are added from their values (the template's are in
 * udp_base); else byte by byte from the bytes they replace. */
const volatile __u32 dns_fast = 0;
const volatile __u32 dns_id_shift = 0;   /* 8 if the ID ends at an odd offset */
const volatile __u32 dns_port_shift = 0; /* same for the source port */
const volatile __u64 dns_rstep = 0;      /* nqueues % dns_count */
const volatile __u32 dns_random = 0;
const volatile __u64 dns_count = 1;
const volatile __u64 dns_seed = 0;
const volatile __u32 radix = 1;
const volatile __u8 charset[64] = {};
/* The template's frame 0 and its length. Where its IPv4 or IPv6 and UDP/TCP headers
 * start (after any VLAN tags), the length the transport checksum covers (UDP or TCP
 * header and payload), the checksum field's offset in the transport header (UDP 6,
 * TCP 16) and whether a computed zero goes out as 0xffff (UDP). IPv4 (ip_csum_on)
 * has a header checksum at ip_at + 10 and its length field (total length) at
 * ip_at + 2, its pseudo-header addresses at ip_at + 12; IPv6 has no header checksum,
 * its payload length at ip_at + 4 and its addresses at ip_at + 8 (ip_len_at,
 * pseudo_at). Both pseudo-headers' addresses run up to the transport header. */
const volatile __u64 tmpl[MAX_FRAME / 8] = {};
const volatile __u32 tmpl_len = 0;
const volatile __u32 ip_at = 14;
const volatile __u32 l4_at = 34;
const volatile __u32 l4_len = 0;
const volatile __u32 l4_csum_off = 6;
const volatile __u32 l4_zero_ffff = 1;
const volatile __u32 ip_csum_on = 1;
const volatile __u32 ip_len_at = 16;
const volatile __u32 pseudo_at = 26;
/* Frame 0's checksums as sums to add each frame's changes to: ~checksum plus,
 * for every field whose sum is added from its value (not PF_BYTES; the DNS fields
 * with dns_fast), minus the field's template sum (0xffff - sum). Not folded. */
const volatile __u64 ip_base = 0;
const volatile __u64 udp_base = 0;

/* IMIX (nsizes > 0): tmpl holds a frame of the largest size; frame n has size
 * sched[n % sched_len], whose buffer length, IPv4 total length (IPv6: payload
 * length), UDP length (0 for
 * TCP) and checksum bases (as ip_base/udp_base, for tmpl's bytes with these
 * lengths) are below. The frame is trimmed to its size with the pad byte. */
#define MAX_SIZES 8
#define MAX_SCHED 4096
const volatile __u32 nsizes = 0;
const volatile __u64 sched_len = 1;
const volatile __u64 sched_rstep = 0; /* nqueues % sched_len */
const volatile __u8 sched[MAX_SCHED] = {};
const volatile __u32 size_len[MAX_SIZES] = {};
const volatile __u32 size_ip_total[MAX_SIZES] = {};
const volatile __u32 size_udp_len[MAX_SIZES] = {};
const volatile __u64 size_ip_base[MAX_SIZES] = {};
const volatile __u64 size_udp_base[MAX_SIZES] = {};

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
	__u64 last_ns;     /* paced: when the last frame was sent (monotonic) */
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

/* Per-instance cache (each queue has its own program instance, run by its one
 * thread): the residues that frame n needs, kept for the next frame of this queue
 * (n + nqueues) so the common case needs no division. A frame with any other n
 * (the first one, a jump in k) recomputes them with divisions. Slots: the
 * patches, then the DNS name index. */
#define NRESID (MAX_PATCHES + 2)
#define SLOT_DNS MAX_PATCHES
#define SLOT_SIZE (MAX_PATCHES + 1)
__u64 next_n = ~0ULL;
__u64 resid[NRESID];  /* (n * step) % span for frame next_n - nqueues */
__u64 port_hi = ~0ULL; /* n >> 16 of the cached DNS source port */
__u64 port_val = 0;

/* (n * step) % span as profiles::Template computes it, from the cache when n is
 * the queue's next frame. */
static __always_inline __u64 residue(__u32 slot, int hit, __u64 n, __u64 step, __u64 span,
				     __u64 rstep)
{
	__u64 r;

	if (slot >= NRESID)
		return 0;
	if (hit) {
		r = resid[slot] + rstep;
		if (r >= span)
			r -= span;
	} else {
		r = ((n % span) * (step % span)) % span;
	}
	resid[slot] = r;
	return r;
}

/* Writes byte nb at frame offset pos and adds the change to the one's complement
 * sums of the checksums covering it (network-order words; the IP and transport
 * headers start at even offsets, so a byte at an even offset is a word's high
 * byte). dip is only written for IPv4. */
static __always_inline void put8(__u8 *p, __u32 pos, __u8 nb, __u64 *dip, __u64 *dudp)
{
	__u64 ob = *p, d;

	*p = nb;
	if (pos & 1)
		d = (__u64)nb + (0xffff - ob);
	else
		d = ((__u64)nb << 8) + (0xffff - (ob << 8));
	if (pos >= ip_at && pos < l4_at)
		*dip += d;
	if (pos >= pseudo_at && pos < l4_at + l4_len)
		*dudp += d;
}

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

/* The one's complement sum (mod 0xffff, not folded) of a field holding the
 * big-endian value v, shifted left by 8 when the field ends at an odd offset: 2^16
 * = 1 mod 0xffff, so a field whose bytes sit at their words' usual positions adds
 * v mod 0xffff, one shifted by a byte v * 2^8 (PF_BYTES when that overflows). */
static __always_inline __u64 sum16(__u64 v, __u32 shift)
{
	v <<= shift & 8;
	return (v & 0xffff) + ((v >> 16) & 0xffff) + ((v >> 32) & 0xffff) + (v >> 48);
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

/* Frame k of queue q's schedule has come (1; its lateness recorded), or not yet, or
 * the deadline passed (0: the caller returns XDP_DROP). `due` is the frame's
 * departure in ns after t0 (a replay's recorded timing), or NO_DUE for the
 * queue's CBR (k * gap) or Poisson (next_fp) schedule. */
#define NO_DUE (~0ULL)
static __always_inline int due_now(struct qstate *st, __u32 q, __u64 k, __u64 due)
{
	__u64 now = bpf_ktime_get_ns(), sched, dev;
	__u32 key;
	__u64 *h;

	if (st->deadline_ns && now >= st->deadline_ns)
		return 0;
	if (due != NO_DUE)
		sched = st->t0_ns + due;
	else
		sched = st->t0_ns + ((st->next_fp ? st->next_fp : k * st->gap_fp) >> 16);
	if (now < sched) {
		st->idle++;
		return 0;
	}
	dev = now - sched;
	key = (q & 255) * DEV_BUCKETS + dev_bucket(dev);
	h = bpf_map_lookup_elem(&devhist, &key);
	if (h)
		*h += 1;
	st->last_ns = now;
	if (due == NO_DUE && st->next_fp) {
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
	return 1;
}

SEC("xdp")
int gen_live(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 q = queue_id;
	struct qstate *st;
	__u64 k, n, v, dip = 0, dudp = 0, ipb = ip_base, ub = udp_base;
	__u32 i, j, len = tmpl_len, sz = 0;
	int hit;

	st = bpf_map_lookup_elem(&qstate, &q);
	if (!st)
		return XDP_ABORTED;
	k = st->k;
	if (k >= st->limit)
		return XDP_DROP;
	if (st->gap_fp && !due_now(st, q, k, NO_DUE))
		return XDP_DROP;
	st->k = k + 1;
	n = k * nqueues + q;
	hit = n == next_n;
	next_n = ~0ULL; /* invalid until this frame is complete */
	if (nsizes) {
		sz = (__u32)residue(SLOT_SIZE, hit, n, 1, sched_len, sched_rstep);
		sz = sched[sz & (MAX_SCHED - 1)] & (MAX_SIZES - 1);
		len = size_len[sz];
		if (len > tmpl_len)
			return XDP_ABORTED;
		ipb = size_ip_base[sz];
		ub = size_udp_base[sz];
	}
	/* One pad byte beyond the frame (and, for a smaller size of a mix, what lies
	 * beyond that size): trimming it marks the context changed, so the kernel
	 * refreshes the xdp_frame (length) from it after this run. */
	if (bpf_xdp_adjust_tail(ctx, -(int)(1 + tmpl_len - len)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	/* Restore the template over whatever the page held. */
	for (i = 0; i < MAX_FRAME / 8; i++) {
		__u64 *w = data + i * 8;

		if (i * 8 + 8 > len)
			break;
		if ((void *)(w + 1) > end)
			return XDP_ABORTED;
		*w = tmpl[i];
	}
	/* The last tmpl_len % 8 bytes: one 4-, 2- and 1-byte store at most
	 * (tmpl packs the frame little-endian, as this machine stores). */
	if (len & 7) {
		__u32 at = len & ~7u, w8 = at >> 3;
		__u64 last;
		__u8 *b;

		if (w8 >= MAX_FRAME / 8)
			return XDP_ABORTED;
		last = tmpl[w8];
		b = data + (at & 2047);
		if (len & 4) {
			if ((void *)(b + 4) > end)
				return XDP_ABORTED;
			*(__u32 *)b = (__u32)last;
			b += 4;
			last >>= 32;
		}
		if (len & 2) {
			if ((void *)(b + 2) > end)
				return XDP_ABORTED;
			*(__u16 *)b = (__u16)last;
			b += 2;
			last >>= 16;
		}
		if (len & 1) {
			if ((void *)(b + 1) > end)
				return XDP_ABORTED;
			*b = (__u8)last;
		}
	}
	if (nsizes) {
		/* This size's lengths (their sums are in its checksum bases). */
		__u8 *p = data + (ip_len_at & 2047);

		if ((void *)(p + 2) > end)
			return XDP_ABORTED;
		*(__u16 *)p = bpf_htons((__u16)size_ip_total[sz]);
		if (size_udp_len[sz]) {
			p = data + ((l4_at + 4) & 2047);
			if ((void *)(p + 2) > end)
				return XDP_ABORTED;
			*(__u16 *)p = bpf_htons((__u16)size_udp_len[sz]);
		}
	}
	if (!varies)
		return XDP_TX;

#pragma unroll
	for (i = 0; i < MAX_PATCHES; i++) {
		__u8 *p;
		__u32 w, off, fl;

		if (i >= npatches)
			break;
		w = patches[i].width;
		fl = patches[i].flags;
		if (patches[i].kind == KIND_INCREMENT) {
			v = patches[i].min + residue(i, hit, n, patches[i].arg, patches[i].span,
						     patches[i].rstep);
		} else if (patches[i].kind == KIND_RANDOM) {
			v = patches[i].min + mulhi(splitmix64(n ^ patches[i].arg), patches[i].span);
		} else {
			__u32 key = i * MAX_LIST + (__u32)residue(i, hit, n, 1, patches[i].nvals,
								  patches[i].rstep);
			__u64 *lv = bpf_map_lookup_elem(&lists, &key);

			if (!lv)
				return XDP_ABORTED;
			v = *lv;
		}
		off = patches[i].offset & 0x7ff;
		p = data + off;
		if ((void *)(p + 8) > end)
			return XDP_ABORTED;
		if (fl & PF_BYTES) {
			/* Byte by byte, each change from the byte it replaces. */
			for (j = 0; j < 8; j++) {
				if (j >= w)
					break;
				put8(p + j, off + j, (__u8)(v >> (8 * (w - 1 - j))), &dip, &dudp);
			}
			continue;
		}
		if (fl & (PF_IP | PF_UDP)) {
			/* The template's sum is in the bases: add the new value's. */
			__u64 d = sum16(v, patches[i].shift);

			if (fl & PF_IP)
				dip += d;
			if (fl & PF_UDP)
				dudp += d;
		}
		if (w == 8) {
			/* An IPv6 address's low half. */
			*(__u64 *)p = bpf_cpu_to_be64(v);
		} else if (w == 4) {
			*(__u32 *)p = bpf_htonl((__u32)v);
		} else if (w == 2) {
			*(__u16 *)p = bpf_htons((__u16)v);
		} else {
			for (j = 0; j < 8; j++) {
				if (j >= w)
					break;
				p[j] = (__u8)(v >> (8 * (w - 1 - j)));
			}
		}
	}

	if (dns_on) {
		__u32 at = dns_id_at & 0x7ff;
		__u8 *p = data + at;
		__u16 port;
		__u64 idx;

		if ((void *)(p + 2) > end)
			return XDP_ABORTED;
		if ((n >> 16) != port_hi) {
			port_val = dns_first_port + (__u16)((n >> 16) % dns_ports);
			port_hi = n >> 16;
		}
		port = (__u16)port_val;
		if (dns_fast) {
			*(__u16 *)p = bpf_htons((__u16)n);
			dudp += sum16((__u16)n, dns_id_shift);
		} else {
			put8(p, at, (__u8)(n >> 8), &dip, &dudp);
			put8(p + 1, at + 1, (__u8)n, &dip, &dudp);
		}
		at = dns_port_at & 0x7ff;
		p = data + at;
		if ((void *)(p + 2) > end)
			return XDP_ABORTED;
		if (dns_fast) {
			*(__u16 *)p = bpf_htons(port);
			dudp += sum16(port, dns_port_shift);
		} else {
			put8(p, at, port >> 8, &dip, &dudp);
			put8(p + 1, at + 1, port & 0xff, &dip, &dudp);
		}
		if (dns_label_len) {
			idx = dns_random ? splitmix64(n ^ dns_seed) % dns_count
					 : residue(SLOT_DNS, hit, n, 1, dns_count, dns_rstep);
			at = dns_label_at & 0x7ff;
			p = data + at;
			for (j = 0; j < MAX_LABEL; j++) {
				__u32 o;
				__u8 c;

				if (j >= dns_label_len)
					break;
				o = (dns_label_len - 1 - j) & (MAX_LABEL - 1);
				if ((void *)(p + o + 1) > end)
					return XDP_ABORTED;
				c = charset[(idx % radix) & 63];
				if (dns_fast) {
					p[o] = c;
					dudp += (__u64)c << ((~(at + o) & 1) << 3);
				} else {
					put8(p + o, at + o, c, &dip, &dudp);
				}
				idx /= radix;
			}
		}
	}
	next_n = n + nqueues;

	/* Checksums updated from the template's by the changes (RFC 1624: HC' =
	 * ~(~HC + ~m + m')): ip_base/udp_base hold ~HC and ~m. fold() of a non-zero
	 * sum is the class's representative in [1, 0xffff], the value a full
	 * recomputation folds to, so the result is byte for byte what summing the
	 * whole header/datagram gives. */
	{
		__u8 *c = data + ((ip_at + 10) & 2047);
		__u8 *u = data + ((l4_at + l4_csum_off) & 2047);
		__u16 f;

		if ((void *)(c + 2) > end || (void *)(u + 2) > end)
			return XDP_ABORTED;
		if (ip_csum_on) {
			f = fold(ipb + dip);
			f = ~(f ? f : 0xffff);
			*(__u16 *)c = bpf_htons(f);
		}
		f = fold(ub + dudp);
		f = ~(f ? f : 0xffff);
		if (f == 0 && l4_zero_ffff)
			f = 0xffff;
		*(__u16 *)u = bpf_htons(f);
	}
	return XDP_TX;
}

/* gen_replay: `gen --pcap` on xdp-live. The capture's frames, in file order, one per
 * entry of `replay` (user space sizes the map to the file and shares it between
 * the queues' instances; --dst-mac/--dst-ip rewrites are already applied). Frame n
 * = k * nqueues + queue_id of the run is the file's frame n % replay_count; with
 * replay_timed it is due at pass * replay_pass_ns + its recorded offset (both
 * already divided by --speed: gen/src/replay.rs's due_ns), else on the queue's CBR
 * schedule (--rate) or unpaced. The program writes the frame's bytes over the live
 * frame (bpf_xdp_store_bytes) after setting its length from the context's current
 * one (bpf_xdp_get_buff_len: no assumption about what the recycled page's context
 * holds). User space passes a buffer one pad byte longer than the longest frame, so
 * the context always differs from the one the run started with and the kernel
 * rebuilds the xdp_frame from it (see the top of this file). */
#define REPLAY_MAX 1792 /* gen's UMEM frame less XDP headroom: the afxdp engine's limit */

struct replay_frame {
	__u64 due_ns; /* recorded offset from the file's first frame / --speed */
	__u32 len;
	__u32 pad;
	__u8 data[REPLAY_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set to the file's frame count before load */
	__type(key, __u32);
	__type(value, struct replay_frame);
} replay SEC(".maps");

const volatile __u64 replay_count = 1;
const volatile __u64 replay_pass_ns = 0;
const volatile __u32 replay_timed = 0;

SEC("xdp")
int gen_replay(struct xdp_md *ctx)
{
	__u32 q = queue_id, idx, len;
	struct replay_frame *fr;
	struct qstate *st;
	__u64 k, n, pass;
	int cur;

	st = bpf_map_lookup_elem(&qstate, &q);
	if (!st)
		return XDP_ABORTED;
	k = st->k;
	if (k >= st->limit)
		return XDP_DROP;
	n = k * nqueues + q;
	pass = n / replay_count;
	idx = (__u32)(n - pass * replay_count);
	fr = bpf_map_lookup_elem(&replay, &idx);
	if (!fr)
		return XDP_ABORTED;
	if (replay_timed) {
		if (!due_now(st, q, k, pass * replay_pass_ns + fr->due_ns))
			return XDP_DROP;
	} else if (st->gap_fp && !due_now(st, q, k, NO_DUE)) {
		return XDP_DROP;
	}
	st->k = k + 1;
	len = fr->len;
	if (len == 0 || len > REPLAY_MAX)
		return XDP_ABORTED;
	/* To len bytes from whatever length the context has now. */
	cur = (int)bpf_xdp_get_buff_len(ctx);
	if (bpf_xdp_adjust_tail(ctx, (int)len - cur))
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, fr->data, len))
		return XDP_ABORTED;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

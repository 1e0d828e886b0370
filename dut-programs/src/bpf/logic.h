/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The per-packet logic of every DUT program, written once and compiled
 * twice: into the XDP programs (src/bpf/<name>.bpf.c) and, with DUT_HOST
 * defined, into the host shim (src/shim/shim.c) that the user-space
 * execution point runs on AF_XDP frames. The few things that differ are
 * macros: the context (struct xdp_md or struct dut_hctx), growing/shrinking
 * the frame, the counters, the configuration and the cache lookup.
 *
 * Invariants: every program parses past up to two VLAN tags (parsing.h)
 * and keeps them: an answer goes back with the query's tags. A frame is
 * answered (XDP_TX) only if it is a well-formed Ethernet (<= 2 tags)/IPv4
 * (no options, not a fragment) or IPv6 (UDP right after the fixed header,
 * UDP checksum not zero)/UDP query to port 53 with
 * exactly one uncompressed question and no answer/authority records; the
 * answer is exactly header + question (+ one 16-byte A or 28-byte AAAA
 * record), EDNS and other trailing bytes dropped, ARCOUNT 0; over IPv4 the
 * IP checksum right and the UDP checksum 0, over IPv6 the (mandatory) UDP
 * checksum right over the IPv6 pseudo-header. Everything else is passed
 * (or, for drop/checksum, dropped) and
 * counted. syn-filter drops only a TCP SYN without ACK whose IPv4 (IPv6)
 * source the allow-list (LPM trie syn_allow, syn_allow6) does not cover, and
 * passes everything else; over IPv6 only TCP right after the fixed header is
 * judged (extension headers are not followed: passed as not handled).
 * checksum sums IPv6's first 20 header bytes N times. */
#ifndef DUT_LOGIC_H
#define DUT_LOGIC_H

#include <linux/bpf.h>
#include "wire.h"
#include "parsing.h"

/* Largest UDP segment of an answer: UDP 8 + DNS header 12 + name 255 +
 * type/class 4 + AAAA record 28 = 307, rounded up to a multiple of 4, plus
 * room for the zero word written after it. */
#define DNS_MAX_SEGMENT 308
#define DUT_SCRATCH_LEN (DNS_MAX_SEGMENT + 4)

/* Where an IPv6 answer's UDP segment is copied to be summed. */
struct dut_scratch {
	__u8 b[DUT_SCRATCH_LEN];
} __attribute__((aligned(8)));

#ifdef DUT_HOST
/* ---- user space: the shim's context mirrors struct xdp_md ---- */
#include <stddef.h>
#include <string.h>

struct dut_hctx {
	unsigned char *data;
	unsigned char *data_end;
	unsigned char *frame_end; /* end of the buffer: how far the tail may grow */
	const struct dut_config *cfg;
	struct dut_counters *counters;
	/* dns-cache lookup: returns a struct dns_value or NULL */
	const void *(*lookup)(void *arg, const struct dns_key *key);
	void *lookup_arg;
	/* syn-filter allow-list: 1 if the source (network order) is allowed */
	int (*allow)(void *arg, __u32 saddr);
	void *allow_arg;
	/* syn-filter IPv6 allow-list: 1 if the 16-byte source is allowed */
	int (*allow6)(void *arg, const __u8 *saddr);
};

#define DUT_CTX struct dut_hctx
#define DUT_DATA(c) ((void *)(c)->data)
#define DUT_DATA_END(c) ((void *)(c)->data_end)
#define DUT_CFG(c) (*(c)->cfg)
#define DUT_COUNTERS(c) ((c)->counters)
#define DUT_CACHE_LOOKUP(c, k) \
	((const struct dns_value *)((c)->lookup ? (c)->lookup((c)->lookup_arg, (k)) : NULL))
#define DUT_ALLOWED(c, k) ((c)->allow ? (c)->allow((c)->allow_arg, (k)->addr) : 0)
#define DUT_ALLOWED6(c, k) ((c)->allow6 ? (c)->allow6((c)->allow_arg, (k)->addr) : 0)

static inline int dut_adjust_tail(struct dut_hctx *c, int delta)
{
	unsigned char *end = c->data_end + delta;

	if (end < c->data + ETH_HLEN || end > c->frame_end)
		return -1;
	c->data_end = end;
	return 0;
}
#define DUT_ADJUST_TAIL(c, d) dut_adjust_tail((c), (d))

static inline long dut_loop(__u32 n, long (*fn)(__u32, void *), void *arg)
{
	__u32 i;

	for (i = 0; i < n; i++)
		if (fn(i, arg))
			return i + 1;
	return n;
}
#define DUT_LOOP(n, fn, arg) dut_loop((n), (fn), (arg))
#define dut_memset(p, v, n) memset((p), (v), (n))
#define dut_memcpy(d, s, n) memcpy((d), (s), (n))

/* The scratch buffer the IPv6 UDP checksum is summed in: the stack here. */
#define DUT_SCRATCH(name)                    \
	struct dut_scratch name##_buf;       \
	struct dut_scratch *name = &name##_buf

/* bpf_xdp_load_bytes: `len` bytes at offset `off` of the frame, or -1. */
static inline long dut_load_bytes(struct dut_hctx *c, __u32 off, void *to, __u32 len)
{
	if (off > (__u32)(c->data_end - c->data) || len > (__u32)(c->data_end - c->data) - off)
		return -1;
	memcpy(to, c->data + off, len);
	return 0;
}
#define DUT_LOAD_BYTES(c, off, to, len) dut_load_bytes((c), (off), (to), (len))

/* bpf_csum_diff(NULL, 0, buf, len, 0): the 32-bit one's-complement sum of
 * `len` bytes (a multiple of 4) as 16-bit words in memory order. */
static inline long dut_csum(const void *buf, __u32 len)
{
	const __u16 *w = buf;
	__u64 sum = 0;

	for (__u32 i = 0; i < len / 2; i++)
		sum += w[i];
	while (sum >> 32)
		sum = (sum & 0xffffffffu) + (sum >> 32);
	return (long)sum;
}
#define DUT_CSUM(buf, len) dut_csum((buf), (len))

#else
/* ---- the kernel ---- */
#include <bpf/bpf_helpers.h>

const volatile struct dut_config dut_cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dut_counters);
} dut_stats SEC(".maps");

#ifdef DUT_WITH_CACHE
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DNS_CACHE_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dns_key);
	__type(value, struct dns_value);
} dns_cache SEC(".maps");
#define DUT_CACHE_LOOKUP(c, k) ((const struct dns_value *)bpf_map_lookup_elem(&dns_cache, (k)))
#endif

#ifdef DUT_WITH_ALLOW
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SYN_ALLOW_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct syn_allow_key);
	__type(value, __u8);
} syn_allow SEC(".maps");
#define DUT_ALLOWED(c, k) (bpf_map_lookup_elem(&syn_allow, (k)) != NULL)

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SYN_ALLOW_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct syn_allow6_key);
	__type(value, __u8);
} syn_allow6 SEC(".maps");
#define DUT_ALLOWED6(c, k) (bpf_map_lookup_elem(&syn_allow6, (k)) != NULL)
#endif

static __always_inline struct dut_counters *dut_counters_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dut_stats, &zero);
}

#define DUT_CTX struct xdp_md
#define DUT_DATA(c) ((void *)(long)(c)->data)
#define DUT_DATA_END(c) ((void *)(long)(c)->data_end)
#define DUT_CFG(c) dut_cfg
#define DUT_COUNTERS(c) dut_counters_get()
#define DUT_ADJUST_TAIL(c, d) bpf_xdp_adjust_tail((c), (d))
#define DUT_LOOP(n, fn, arg) bpf_loop((n), (fn), (arg), 0)
#define dut_memset(p, v, n) __builtin_memset((p), (v), (n))
#define dut_memcpy(d, s, n) __builtin_memcpy((d), (s), (n))

/* The scratch buffer the IPv6 UDP checksum is summed in: a per-CPU array
 * (the stack is too small for a 255-byte name). NULL only if the map
 * lookup fails, which an array of one entry never does. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dut_scratch);
} dut_scratch SEC(".maps");
#define DUT_SCRATCH(name)                  \
	__u32 name##_zero = 0;             \
	struct dut_scratch *name = bpf_map_lookup_elem(&dut_scratch, &name##_zero)
#define DUT_LOAD_BYTES(c, off, to, len) bpf_xdp_load_bytes((c), (off), (to), (len))
#define DUT_CSUM(buf, len) bpf_csum_diff(NULL, 0, (__be32 *)(buf), (len), 0)
#endif

/* Offsets of a DNS query we answer: the IP header at `l3` = ETH_HLEN + 4
 * per VLAN tag (0..2), the UDP header at `l4` = l3 + 20 (IPv4, no options)
 * or l3 + 40 (IPv6, no extension headers); the rest from the UDP header. */
#define L3_MAX (ETH_HLEN + DUT_MAX_VLANS * DUT_VLAN_HLEN)
#define IP4_HLEN 20
#define IP6_HLEN 40
#define L4_MAX (L3_MAX + IP6_HLEN)
#define UDP_HLEN 8
#define DNS_HLEN 12
#define OFF_QNAME (UDP_HLEN + DNS_HLEN) /* from the UDP header */
#define DNS_MAX_NAME 255
#define DNS_MAX_LABELS 128

#define DNS_QR 0x8000
#define DNS_OPCODE 0x7800
#define DNS_AA 0x0400
#define DNS_RD 0x0100
#define DNS_CD 0x0010
#define RCODE_NOERROR 0
#define RCODE_NXDOMAIN 3

struct dnshdr {
	__u16 id;
	__u16 flags;
	__u16 qdcount;
	__u16 ancount;
	__u16 nscount;
	__u16 arcount;
};

/* ---- verdict and tenant bookkeeping, common to all programs ---- */

static __always_inline int dut_count_verdict(struct dut_counters *c, int v)
{
	switch (v) {
	case XDP_PASS:
		c->pass++;
		break;
	case XDP_DROP:
		c->drop++;
		break;
	case XDP_TX:
		c->tx++;
		break;
	case XDP_REDIRECT:
		c->redirect++;
		break;
	default:
		c->aborted++;
		break;
	}
	return v;
}

/* The tenant guard: 1 if the frame is ours to process, 0 if it must be
 * passed untouched. No guard: every frame. An IPv4 guard (--only-dst
 * A.B.C.D/LEN): IPv4 frames to that prefix. An IPv6 guard (ADDR/LEN): IPv6
 * frames whose fixed header's destination is in that prefix. A frame of the
 * other IP version, a non-IP frame or one too short for its IP header is
 * outside every guard. The destination is read after up to two VLAN tags. */
static __always_inline int dut_tenant_ok(const volatile struct dut_config *cfg, void *data, void *data_end)
{
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	__u32 flags = cfg->flags;
	__u32 d;
	int proto, i;

	if (!(flags & (DUT_CFG_TENANT | DUT_CFG_TENANT6)))
		return 1;
	proto = parse_ethhdr(&nh, data_end, &eth);
	if (flags & DUT_CFG_TENANT) {
		if (proto != dut_htons(ETH_P_IP))
			return 0;
		ip = nh.pos;
		if ((void *)(ip + 1) > data_end)
			return 0;
		return (ip->daddr & cfg->tenant_mask) == cfg->tenant_addr;
	}
	if (proto != dut_htons(ETH_P_IPV6))
		return 0;
	ip6 = nh.pos;
	if ((void *)(ip6 + 1) > data_end)
		return 0;
#pragma unroll
	for (i = 0; i < 4; i++) {
		__builtin_memcpy(&d, (__u8 *)&ip6->daddr + 4 * i, 4);
		if ((d & cfg->tenant6_mask[i]) != cfg->tenant6_addr[i])
			return 0;
	}
	return 1;
}

/* ---- drop ---- */

static __always_inline int dut_drop_process(DUT_CTX *ctx, struct dut_counters *c)
{
	(void)ctx;
	(void)c;
	return XDP_DROP;
}

/* ---- checksum: N rounds of the IPv4 header checksum, then drop; on IPv6
 * the same 16-bit one's-complement sum over the first 20 bytes of the fixed
 * header (IPv6 has no header checksum: the work is the same as IPv4's
 * option-less header, so rates compare; checksum_bad is not judged) ---- */

struct csum_state {
	__u16 w[30]; /* the IPv4 header, options included */
	__u32 words; /* ihl * 2 */
	__u32 result; /* last round's folded, inverted sum: 0 if right */
};

static long csum_round(__u32 index, void *arg)
{
	struct csum_state *s = arg;
	__u32 sum = 0;

	(void)index;
	for (__u32 k = 0; k < 30; k++) {
		if (k >= s->words)
			break;
		sum += s->w[k];
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	s->result = (__u16)~sum;
	return 0;
}

static __always_inline int dut_checksum_process(DUT_CTX *ctx, struct dut_counters *c,
						__u32 rounds)
{
	void *data = DUT_DATA(ctx);
	void *data_end = DUT_DATA_END(ctx);
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *ip;
	struct csum_state s;
	__u32 k;

	int proto = parse_ethhdr(&nh, data_end, &eth);

	if (proto < 0) {
		c->parse_errors++; /* ends inside a VLAN tag */
		return XDP_DROP;
	}
	if (proto == dut_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;

		if (parse_ip6hdr(&nh, data_end, &ip6) < 0) {
			c->parse_errors++; /* truncated, or not version 6 */
			return XDP_DROP;
		}
		dut_memset(&s, 0, sizeof(s));
		s.words = 10;
		dut_memcpy(s.w, ip6, 20);
		if (rounds > DUT_MAX_CHECKSUMS)
			rounds = DUT_MAX_CHECKSUMS;
		if (rounds > 0) {
			DUT_LOOP(rounds, csum_round, &s);
			c->checksums += rounds;
		}
		return XDP_DROP;
	}
	if (proto != dut_htons(ETH_P_IP)) {
		c->not_handled++;
		return XDP_DROP;
	}
	if (parse_iphdr(&nh, data_end, &ip) < 0) {
		c->parse_errors++;
		return XDP_DROP;
	}
	dut_memset(&s, 0, sizeof(s));
	s.words = ip->ihl * 2;
	for (k = 0; k < 30; k++) {
		__u16 *p = (__u16 *)ip + k;

		if (k >= s.words)
			break;
		if ((void *)(p + 1) > data_end)
			break;
		s.w[k] = *p;
	}
	if (rounds > DUT_MAX_CHECKSUMS)
		rounds = DUT_MAX_CHECKSUMS;
	if (rounds > 0) {
		DUT_LOOP(rounds, csum_round, &s);
		c->checksums += rounds;
		if (s.result != 0)
			c->checksum_bad++;
	}
	return XDP_DROP;
}

/* ---- DNS: parse a query, build the answer in place ---- */

enum dns_parse {
	DNS_OK = 0,
	DNS_NOT_OURS = 1,  /* well-formed, not a query for us: pass */
	DNS_MALFORMED = 2, /* pass (the stack will judge it) and count */
};

struct dns_query {
	__u32 l3;       /* offset of the IP header: ETH_HLEN + 4 per VLAN tag */
	__u32 l4;       /* offset of the UDP header: l3 + 20 (IPv4) or l3 + 40 (IPv6) */
	__u32 v6;       /* 1 if the query came over IPv6 */
	__u32 name_len; /* wire length of the question name, 1..255 */
	__u16 qtype;    /* host order */
	__u16 qclass;
};

/* The IP part of a query: IPv4 (no options, not a fragment, header
 * checksum right) or IPv6 (UDP right after the fixed header). Sets q->l3,
 * q->l4, q->v6 and *udp_total, the UDP length the IP header says. */
static __always_inline int dns_parse_ip(struct hdr_cursor *nh, void *data, void *data_end,
					struct dns_query *q, __u32 *udp_total)
{
	struct ethhdr *eth;
	__u32 frame_len = data_end - data;
	__u32 vlans, l3;
	int proto;

	proto = parse_ethhdr_vlans(nh, data_end, &eth, &vlans);
	if (proto < 0)
		return DNS_MALFORMED;
	l3 = ETH_HLEN + vlans * DUT_VLAN_HLEN;
	if (l3 > L3_MAX)
		return DNS_MALFORMED;
	if (proto == dut_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6;
		__u32 pay_len;

		proto = parse_ip6hdr(nh, data_end, &ip6);
		if (proto < 0)
			return DNS_MALFORMED; /* truncated, or not version 6 */
		if (proto != IPPROTO_UDP)
			return DNS_NOT_OURS; /* not UDP, or extension headers */
		pay_len = dut_ntohs(ip6->payload_len);
		if (pay_len < UDP_HLEN || l3 + IP6_HLEN + pay_len > frame_len)
			return DNS_MALFORMED;
		q->l3 = l3;
		q->l4 = l3 + IP6_HLEN;
		q->v6 = 1;
		*udp_total = pay_len;
		return DNS_OK;
	}
	if (proto != dut_htons(ETH_P_IP))
		return DNS_NOT_OURS;
	{
		struct iphdr *ip = nh->pos;
		__u32 tot_len;

		if ((void *)(ip + 1) > data_end)
			return DNS_MALFORMED;
		if (ip->version != 4 || ip->ihl < 5)
			return DNS_MALFORMED;
		if (ip->ihl != 5)
			return DNS_NOT_OURS; /* IP options: not handled */
		if (ip->frag_off & dut_htons(0x3fff))
			return DNS_NOT_OURS; /* a fragment */
		proto = parse_iphdr(nh, data_end, &ip);
		if (proto < 0)
			return DNS_MALFORMED;
		if (proto != IPPROTO_UDP)
			return DNS_NOT_OURS;
		if (ipv4_csum20(ip) != 0)
			return DNS_MALFORMED;
		tot_len = dut_ntohs(ip->tot_len);
		if (tot_len < IP4_HLEN + UDP_HLEN || l3 + tot_len > frame_len)
			return DNS_MALFORMED;
		q->l3 = l3;
		q->l4 = l3 + IP4_HLEN;
		q->v6 = 0;
		*udp_total = tot_len - IP4_HLEN;
		return DNS_OK;
	}
}

static __always_inline int dns_parse_query(void *data, void *data_end, struct dns_query *q)
{
	struct hdr_cursor nh = { .pos = data };
	struct udphdr *udp;
	struct dnshdr *dns;
	__u32 udp_total = 0, udp_len, dns_len, pos = 0, l4;
	int r, i, done = 0;
	__u8 *qt;

	r = dns_parse_ip(&nh, data, data_end, q, &udp_total);
	if (r != DNS_OK)
		return r;
	l4 = q->l4;
	if (l4 > L4_MAX)
		return DNS_MALFORMED;
	if (parse_udphdr(&nh, data_end, &udp) < 0)
		return DNS_MALFORMED;
	if (udp->dest != dut_htons(53))
		return DNS_NOT_OURS;
	udp_len = dut_ntohs(udp->len);
	if (udp_len != udp_total)
		return DNS_MALFORMED;
	if (q->v6 && udp->check == 0)
		return DNS_MALFORMED; /* RFC 8200 8.1: a zero UDP checksum is invalid */
	dns_len = udp_len - UDP_HLEN;
	dns = nh.pos;
	if (dns_len < DNS_HLEN || (void *)(dns + 1) > data_end)
		return DNS_MALFORMED;
	if (dns->flags & dut_htons(DNS_QR | DNS_OPCODE))
		return DNS_NOT_OURS; /* a response, or not a standard query */
	if (dns->qdcount != dut_htons(1) || dns->ancount || dns->nscount)
		return DNS_NOT_OURS;

	/* Walk the labels: lengths 1..63, no compression, at most 255 bytes,
	 * everything inside the DNS message. */
	for (i = 0; i < DNS_MAX_LABELS; i++) {
		__u8 *p;
		__u8 len;

		if (pos >= DNS_MAX_NAME || DNS_HLEN + pos >= dns_len)
			return DNS_MALFORMED;
		p = data + l4 + OFF_QNAME + pos;
		if ((void *)(p + 1) > data_end)
			return DNS_MALFORMED;
		len = *p;
		pos += 1;
		if (len == 0) {
			done = 1;
			break;
		}
		if (len > 63)
			return DNS_MALFORMED; /* compression pointer or reserved */
		pos += len;
	}
	if (!done || pos > DNS_MAX_NAME)
		return DNS_MALFORMED;
	if (DNS_HLEN + pos + 4 > dns_len)
		return DNS_MALFORMED;
	qt = data + l4 + OFF_QNAME + pos;
	if ((void *)(qt + 4) > data_end)
		return DNS_MALFORMED;
	q->name_len = pos;
	q->qtype = (__u16)(qt[0] << 8 | qt[1]);
	q->qclass = (__u16)(qt[2] << 8 | qt[3]);
	return DNS_OK;
}

/* The IPv6 UDP checksum of the answer's segment (`seg_len` bytes at l4):
 * the segment is copied to the scratch buffer (zero padded to 4 bytes) and
 * summed with the pseudo-header (addresses, upper-layer length, next header
 * 17). Returns the checksum to store (never 0), or 0 on failure. */
static __always_inline __u16 dns_udp6_csum(DUT_CTX *ctx, const struct ipv6hdr *ip6, __u32 l4,
					   __u64 seg_len)
{
	const __u16 *a = (const __u16 *)&ip6->saddr;
	__u64 sum = 0, len4, zero_at;
	long part;
	DUT_SCRATCH(s);

	/* The compiler can prove these bounds from the caller's and drop the
	 * checks; the verifier cannot, so an empty asm hides each value and
	 * the check is made on the very register that is used. */
	asm volatile("" : "+r"(seg_len));
	if (!s || seg_len < UDP_HLEN || seg_len > DNS_MAX_SEGMENT)
		return 0;
	zero_at = seg_len & ~3ull;
	asm volatile("" : "+r"(zero_at));
	if (zero_at > DNS_MAX_SEGMENT)
		return 0;
	len4 = (seg_len + 3) & ~3ull;
	asm volatile("" : "+r"(len4));
	if (len4 > DNS_MAX_SEGMENT)
		return 0;
	dut_memset(s->b + zero_at, 0, 4);
	if (DUT_LOAD_BYTES(ctx, l4, s->b, seg_len))
		return 0;
	part = DUT_CSUM(s->b, len4);
	if (part < 0)
		return 0;
	sum = (__u32)part;
#pragma unroll
	for (int i = 0; i < 16; i++) /* source and destination: 32 bytes */
		sum += a[i];
	sum += dut_htons((__u16)seg_len);
	sum += dut_htons(IPPROTO_UDP);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (__u16)~sum;
	return sum ? (__u16)sum : 0xffff;
}

/* Turns the query into its answer: resize to header + question (+ the
 * `rec_len`-byte record: 0, DNS_RECORD_LEN or DNS_RECORD6_LEN), swap
 * addresses and ports, set the DNS header; over IPv6 compute the UDP
 * checksum. Returns XDP_TX, or XDP_PASS if the frame could not be resized
 * (then it is unchanged). */
static __always_inline int dns_answer(DUT_CTX *ctx, const struct dns_query *q, __u16 rcode,
				      int aa, const __u8 *rec, __u32 rec_len)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct udphdr *udp;
	struct dnshdr *dns;
	__u8 mac[ETH_ALEN];
	__u32 l3 = q->l3, l4 = q->l4, name_len = q->name_len, new_len, dns_len;
	__u16 port, flags;
	__u8 copy[DNS_RECORD6_LEN];
	int delta;

	if (name_len > DNS_MAX_NAME || l3 > L3_MAX || l4 > L4_MAX)
		return XDP_PASS;
	if (rec_len == DNS_RECORD6_LEN && rec)
		dut_memcpy(copy, rec, DNS_RECORD6_LEN);
	else if (rec_len == DNS_RECORD_LEN && rec)
		dut_memcpy(copy, rec, DNS_RECORD_LEN);
	else
		rec_len = 0;
	dns_len = DNS_HLEN + name_len + 4 + rec_len;
	new_len = l4 + UDP_HLEN + dns_len;
	delta = (int)new_len - (int)(DUT_DATA_END(ctx) - DUT_DATA(ctx));
	if (delta != 0 && DUT_ADJUST_TAIL(ctx, delta))
		return XDP_PASS;

	data = DUT_DATA(ctx);
	data_end = DUT_DATA_END(ctx);
	if (l3 > L3_MAX || l4 > L4_MAX)
		return XDP_ABORTED;
	eth = data;
	udp = data + l4;
	dns = data + l4 + UDP_HLEN;
	if ((void *)(dns + 1) > data_end)
		return XDP_ABORTED;

	dut_memcpy(mac, eth->h_dest, ETH_ALEN);
	dut_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	dut_memcpy(eth->h_source, mac, ETH_ALEN);

	if (q->v6) {
		struct ipv6hdr *ip6 = data + l3;
		struct in6_addr a;

		if ((void *)(ip6 + 1) > data_end)
			return XDP_ABORTED;
		a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		/* Version 6, traffic class and flow label 0 (as IPv4's TOS). */
		((__u8 *)ip6)[0] = 0x60;
		((__u8 *)ip6)[1] = 0;
		((__u8 *)ip6)[2] = 0;
		((__u8 *)ip6)[3] = 0;
		ip6->payload_len = dut_htons(UDP_HLEN + dns_len);
		ip6->hop_limit = 64;
	} else {
		struct iphdr *ip = data + l3;
		__u32 addr;

		if ((void *)(ip + 1) > data_end)
			return XDP_ABORTED;
		addr = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = addr;
		ip->tot_len = dut_htons(IP4_HLEN + UDP_HLEN + dns_len);
		ip->ttl = 64;
		ip->tos = 0;
		ip->frag_off = dut_htons(0x4000); /* DF */
		ip->check = 0;
		ip->check = ipv4_csum20(ip);
	}

	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	udp->len = dut_htons(UDP_HLEN + dns_len);
	udp->check = 0;

	flags = dut_ntohs(dns->flags) & (DNS_RD | DNS_CD);
	flags |= DNS_QR | rcode | (aa ? DNS_AA : 0);
	dns->flags = dut_htons(flags);
	dns->ancount = dut_htons(rec_len ? 1 : 0);
	dns->nscount = 0;
	dns->arcount = 0;

	if (rec_len) {
		__u32 off = l4 + OFF_QNAME + name_len + 4;
		__u8 *r;

		if (off > L4_MAX + OFF_QNAME + DNS_MAX_NAME + 4)
			return XDP_ABORTED;
		r = data + off;
		if (rec_len == DNS_RECORD6_LEN) {
			if ((void *)(r + DNS_RECORD6_LEN) > data_end)
				return XDP_ABORTED;
			dut_memcpy(r, copy, DNS_RECORD6_LEN);
		} else {
			if ((void *)(r + DNS_RECORD_LEN) > data_end)
				return XDP_ABORTED;
			dut_memcpy(r, copy, DNS_RECORD_LEN);
		}
	}
	if (q->v6) {
		struct ipv6hdr *ip6 = data + l3;
		__u16 csum;

		if ((void *)(ip6 + 1) > data_end)
			return XDP_ABORTED;
		csum = dns_udp6_csum(ctx, ip6, l4, UDP_HLEN + dns_len);
		if (!csum)
			return XDP_ABORTED;
		/* Packet pointers again: the helper calls above may not keep them. */
		data = DUT_DATA(ctx);
		data_end = DUT_DATA_END(ctx);
		udp = data + l4;
		if (l4 > L4_MAX || (void *)(udp + 1) > data_end)
			return XDP_ABORTED;
		udp->check = csum;
	}
	return XDP_TX;
}

static __always_inline int dut_dns_ping_process(DUT_CTX *ctx, struct dut_counters *c)
{
	struct dns_query q;
	int r = dns_parse_query(DUT_DATA(ctx), DUT_DATA_END(ctx), &q);

	if (r == DNS_MALFORMED) {
		c->parse_errors++;
		return XDP_PASS;
	}
	if (r != DNS_OK) {
		c->not_handled++;
		return XDP_PASS;
	}
	r = dns_answer(ctx, &q, RCODE_NXDOMAIN, 0, NULL, 0);
	if (r == XDP_TX)
		c->answers++;
	return r;
}

#if defined(DUT_WITH_CACHE) || defined(DUT_HOST)
/* dns-cache: a hit on an A/ANY IN question gets the A record, on an AAAA
 * IN question the AAAA record; a hit on another type gets NOERROR without
 * answers (the name exists); a miss NXDOMAIN. Over IPv4 and IPv6 alike. */
static __always_inline int dut_dns_cache_process(DUT_CTX *ctx, struct dut_counters *c)
{
	void *data = DUT_DATA(ctx);
	void *data_end = DUT_DATA_END(ctx);
	struct dns_query q;
	struct dns_key key;
	const struct dns_value *val;
	const __u8 *rec = NULL;
	__u32 i, rec_len = 0;
	__u16 rcode = RCODE_NOERROR;
	int r = dns_parse_query(data, data_end, &q);

	if (r == DNS_MALFORMED) {
		c->parse_errors++;
		return XDP_PASS;
	}
	if (r != DNS_OK) {
		c->not_handled++;
		return XDP_PASS;
	}
	if (q.name_len > DNS_KEY_LEN) {
		c->too_long++;
		return XDP_PASS;
	}
	if (q.l4 > L4_MAX)
		return XDP_PASS;
	dut_memset(&key, 0, sizeof(key));
	for (i = 0; i < DNS_KEY_LEN; i++) {
		__u8 *p = data + q.l4 + OFF_QNAME + i;

		if (i >= q.name_len)
			break;
		if ((void *)(p + 1) > data_end)
			return XDP_PASS;
		key.name[i] = *p;
	}
	val = DUT_CACHE_LOOKUP(ctx, &key);
	if (val) {
		c->hits++;
		if (q.qclass == 1 && (q.qtype == 1 || q.qtype == 255)) {
			rec = val->record;
			rec_len = DNS_RECORD_LEN;
		} else if (q.qclass == 1 && q.qtype == 28) {
			rec = val->record6;
			rec_len = DNS_RECORD6_LEN;
		}
	} else {
		c->misses++;
		rcode = RCODE_NXDOMAIN;
	}
	r = dns_answer(ctx, &q, rcode, 1, rec, rec_len);
	if (r == XDP_TX)
		c->answers++;
	return r;
}
#endif

/* ---- syn-filter: drop TCP SYNs (SYN set, ACK clear) from sources outside
 * the allow-list (LPM tries of IPv4 and IPv6 prefixes); pass everything
 * else ---- */

#define TCP_HLEN 20
#define TCP_FLAG_SYN_BIT 0x02
#define TCP_FLAG_ACK_BIT 0x10

#if defined(DUT_WITH_ALLOW) || defined(DUT_HOST)
static __always_inline int dut_syn_filter_process(DUT_CTX *ctx, struct dut_counters *c)
{
	void *data = DUT_DATA(ctx);
	void *data_end = DUT_DATA_END(ctx);
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *ip = NULL;
	struct ipv6hdr *ip6 = NULL;
	struct syn_allow_key key;
	struct syn_allow6_key key6;
	__u8 *tcp;
	__u32 doff;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto < 0) {
		c->parse_errors++; /* ends inside a VLAN tag */
		return XDP_PASS;
	}
	if (proto == dut_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6);
		if (proto < 0) {
			c->parse_errors++; /* truncated, or not version 6 */
			return XDP_PASS;
		}
		/* Extension headers are not followed: TCP must come right
		 * after the fixed header; anything else is passed. */
		if (proto != IPPROTO_TCP) {
			c->not_handled++;
			return XDP_PASS;
		}
	} else if (proto == dut_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &ip);
		if (proto < 0) {
			c->parse_errors++; /* truncated, not version 4, IHL < 5 */
			return XDP_PASS;
		}
		if (proto != IPPROTO_TCP || (ip->frag_off & dut_htons(0x1fff))) {
			c->not_handled++; /* not TCP, or a non-first fragment (no TCP header) */
			return XDP_PASS;
		}
	} else {
		c->not_handled++;
		return XDP_PASS;
	}
	tcp = nh.pos;
	if ((void *)(tcp + TCP_HLEN) > data_end) {
		c->parse_errors++;
		return XDP_PASS;
	}
	doff = tcp[12] >> 4;
	if (doff < 5 || (void *)(tcp + doff * 4) > data_end) {
		c->parse_errors++; /* data offset below the header, or options cut */
		return XDP_PASS;
	}
	if ((tcp[13] & (TCP_FLAG_SYN_BIT | TCP_FLAG_ACK_BIT)) != TCP_FLAG_SYN_BIT) {
		c->not_handled++; /* not a connection request */
		return XDP_PASS;
	}
	if (ip6) {
		key6.prefixlen = 128;
		dut_memcpy(key6.addr, &ip6->saddr, 16);
		if (DUT_ALLOWED6(ctx, &key6))
			return XDP_PASS;
		return XDP_DROP;
	}
	if (!ip)
		return XDP_PASS;
	key.prefixlen = 32;
	key.addr = ip->saddr;
	if (DUT_ALLOWED(ctx, &key))
		return XDP_PASS;
	return XDP_DROP;
}
#endif

/* ---- entry points: counters, tenant guard, verdict ---- */

#define DUT_ENTRY(name, body)                                                   \
	static __always_inline int dut_run_##name(DUT_CTX *ctx)                 \
	{                                                                       \
		struct dut_counters *c = DUT_COUNTERS(ctx);                     \
		void *data = DUT_DATA(ctx);                                     \
		void *data_end = DUT_DATA_END(ctx);                             \
		int v;                                                          \
		if (!c)                                                         \
			return XDP_ABORTED;                                     \
		c->packets++;                                                   \
		c->bytes += data_end - data;                                    \
		if (!dut_tenant_ok(&DUT_CFG(ctx), data, data_end)) {         \
			c->not_tenant++;                                        \
			return dut_count_verdict(c, XDP_PASS);                  \
		}                                                               \
		v = body;                                                       \
		return dut_count_verdict(c, v);                                 \
	}

DUT_ENTRY(drop, dut_drop_process(ctx, c))
DUT_ENTRY(checksum, dut_checksum_process(ctx, c, DUT_CFG(ctx).checksums))
DUT_ENTRY(dns_ping, dut_dns_ping_process(ctx, c))
#if defined(DUT_WITH_CACHE) || defined(DUT_HOST)
DUT_ENTRY(dns_cache, dut_dns_cache_process(ctx, c))
#endif
#if defined(DUT_WITH_ALLOW) || defined(DUT_HOST)
DUT_ENTRY(syn_filter, dut_syn_filter_process(ctx, c))
#endif

#endif

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* AF_XDP redirect program of the AF_XDP layer (xdp-layer/src/redirect.rs).
 *
 * Frames that match the filter (configured in rodata before load) are
 * redirected to the AF_XDP socket bound to the receiving queue: the XSKMAP
 * `xsks` is keyed by ctx->rx_queue_index. A frame that does not match, or
 * that arrives on a queue without a socket, goes to the kernel (XDP_PASS),
 * so ARP and everything not for us keep working.
 *
 * counters[0]: redirected (or attempted), counters[1]: passed,
 * counters[2]: no room for metadata (xsk_redirect_meta only).
 *
 * xsk_redirect_meta is the same program, loaded device-bound (only when RX
 * timestamps are asked for), that first asks the driver for the frame's hardware
 * RX timestamp (XDP RX-metadata kfunc) and puts a struct xsk_meta in the
 * metadata area just before the frame, where the AF_XDP reader finds it. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64); /* resized by user space before load */
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* 1: redirect every frame (no parsing). 0: apply the fields below. */
const volatile __u8 match_all = 1;
/* IP version the frame must carry: 4, 6, or 0 for either (set by user space to
 * the version of the addresses asked for; non-IP frames never match). */
const volatile __u8 match_version = 0;
/* IPv4 protocol / IPv6 next header to match (0: any). IPv6 extension headers are
 * not walked: a UDP datagram behind one does not match a UDP filter. */
const volatile __u8 match_proto = 0;
/* IPv4 addresses and masks in network byte order, addresses already masked
 * (mask 0: any). */
const volatile __u32 match_src_ip = 0;
const volatile __u32 match_src_mask = 0;
const volatile __u32 match_dst_ip = 0;
const volatile __u32 match_dst_mask = 0;
/* IPv6 addresses and masks as four 32-bit words in network byte order, addresses
 * already masked (mask 0: any). */
const volatile __u32 match_src_ip6[4] = {};
const volatile __u32 match_src_mask6[4] = {};
const volatile __u32 match_dst_ip6[4] = {};
const volatile __u32 match_dst_mask6[4] = {};
/* UDP/TCP ports in host byte order (0: any). */
const volatile __u16 match_src_port = 0;
const volatile __u16 match_dst_port = 0;

/* Written before the frame (data_meta .. data) by xsk_redirect_meta. */
struct xsk_meta {
	__u64 rx_ts;  /* NIC RX timestamp (ns), valid when err == 0 */
	__s32 err;    /* kfunc result: 0, -ENODATA (no timestamp), -EOPNOTSUPP (driver) */
	__u32 magic;  /* XSK_META_MAGIC */
};
#define XSK_META_MAGIC 0x7873746d /* "xstm" */

extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym __weak;

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += 1;
}

/* The source and destination ports at l4 (UDP and TCP both start with them). */
static __always_inline int ports_match(struct udphdr *l4, void *end)
{
	if ((void *)l4 + 4 > end)
		return 0;
	if (match_src_port && l4->source != bpf_htons(match_src_port))
		return 0;
	if (match_dst_port && l4->dest != bpf_htons(match_dst_port))
		return 0;
	return 1;
}

/* An IPv6 packet at l3: next header, masked addresses, ports. */
static __always_inline int matches6(void *l3, void *end)
{
	struct ipv6hdr *ip6 = l3;
	int i;

	if ((void *)(ip6 + 1) > end)
		return 0;
	if (match_proto && ip6->nexthdr != match_proto)
		return 0;
#pragma unroll
	for (i = 0; i < 4; i++) {
		if ((ip6->saddr.in6_u.u6_addr32[i] & match_src_mask6[i]) != match_src_ip6[i])
			return 0;
		if ((ip6->daddr.in6_u.u6_addr32[i] & match_dst_mask6[i]) != match_dst_ip6[i])
			return 0;
	}
	if (!match_src_port && !match_dst_port)
		return 1;
	if (ip6->nexthdr != IPPROTO_UDP && ip6->nexthdr != IPPROTO_TCP)
		return 0;
	return ports_match((void *)(ip6 + 1), end);
}

static __always_inline int matches(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *l4;
	void *l3;
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > end)
		return 0;
	proto = eth->h_proto;
	l3 = eth + 1;
	/* Up to two VLAN tags (802.1Q, 802.1ad, the old 0x9100 QinQ outer tag), as
	 * the DUT programs parse them: the filter matches the IPv4 or IPv6 inside. */
	for (i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD) &&
		    proto != bpf_htons(0x9100))
			break;
		if (l3 + 4 > end)
			return 0;
		proto = *(__be16 *)(l3 + 2);
		l3 += 4;
	}
	if (proto == bpf_htons(ETH_P_IPV6))
		return match_version != 4 && matches6(l3, end);
	if (proto != bpf_htons(ETH_P_IP) || match_version == 6)
		return 0;
	ip = l3;
	if ((void *)(ip + 1) > end)
		return 0;
	if (match_proto && ip->protocol != match_proto)
		return 0;
	if ((ip->saddr & match_src_mask) != match_src_ip)
		return 0;
	if ((ip->daddr & match_dst_mask) != match_dst_ip)
		return 0;
	if (!match_src_port && !match_dst_port)
		return 1;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP)
		return 0;
	if (ip->ihl < 5)
		return 0;
	l4 = (void *)ip + ip->ihl * 4;
	return ports_match(l4, end);
}

SEC("xdp")
int xsk_redirect(struct xdp_md *ctx)
{
	if (!match_all && !matches(ctx)) {
		count(1);
		return XDP_PASS;
	}
	count(0);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int xsk_redirect_meta(struct xdp_md *ctx)
{
	struct xsk_meta *meta;
	void *data;
	__u64 ts = 0;
	int err;

	if (!match_all && !matches(ctx)) {
		count(1);
		return XDP_PASS;
	}
	err = bpf_xdp_metadata_rx_timestamp(ctx, &ts);
	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct xsk_meta))) {
		count(2);
	} else {
		meta = (void *)(long)ctx->data_meta;
		data = (void *)(long)ctx->data;
		if ((void *)(meta + 1) <= data) {
			meta->rx_ts = ts;
			meta->err = err;
			meta->magic = XSK_META_MAGIC;
		}
	}
	count(0);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* gen's reply counter: counts what comes back at XDP speed, then drops it.
 *
 * Every IPv4/UDP frame, and every IPv6 frame with UDP right after the fixed
 * header, arriving on gen's interface is a reply for gen's purposes: counted
 * (frames, bytes), DNS responses (source port 53, QR set) by RCODE, gen's
 * probes (magic 0x5eb5 at the start of the payload) apart, then XDP_DROP.
 * Everything else (ARP, IPv6 neighbour discovery and other ICMPv6, IPv6 with
 * extension headers, TCP) goes to the kernel with XDP_PASS and is counted as
 * passed. Per-CPU counters: no atomics on the hot path; user space sums the CPUs.
 * VLAN tags (802.1Q, 802.1ad) are skipped, up to two. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct rxcount {
	__u64 packets;
	__u64 bytes;
	__u64 passed;
	__u64 probes;
	__u64 rcodes[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rxcount);
} rxcount SEC(".maps");

#define PROBE_MAGIC 0x5eb5

SEC("xdp")
int gen_rx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0, off = sizeof(struct ethhdr), ihl;
	struct rxcount *c = bpf_map_lookup_elem(&rxcount, &zero);
	struct ethhdr *eth = data;
	__u16 proto;
	struct iphdr *ip;
	struct udphdr *udp;
	__u8 *p;
	int i;

	if (!c)
		return XDP_PASS;
	if ((void *)(eth + 1) > end)
		goto pass;
	proto = eth->h_proto;
	for (i = 0; i < 2; i++) {
		__u16 *tag;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		tag = data + off;
		if ((void *)(tag + 2) > end)
			goto pass;
		proto = tag[1];
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
			goto pass;
		udp = (void *)(ip6 + 1);
	} else if (proto == bpf_htons(ETH_P_IP)) {
		ip = data + off;
		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP)
			goto pass;
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip))
			goto pass;
		udp = (void *)ip + ihl;
	} else {
		goto pass;
	}
	if ((void *)(udp + 1) > end)
		goto pass;
	c->packets++;
	c->bytes += end - data;
	p = (void *)(udp + 1);
	if (udp->source == bpf_htons(53)) {
		/* DNS header: ID (2), flags (2): QR is the top bit, RCODE the low 4. */
		if ((void *)(p + 4) <= end && (p[2] & 0x80))
			c->rcodes[p[3] & 15]++;
	} else if ((void *)(p + 2) <= end && p[0] == (PROBE_MAGIC >> 8) && p[1] == (PROBE_MAGIC & 0xff)) {
		c->probes++;
	}
	return XDP_DROP;
pass:
	c->passed++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

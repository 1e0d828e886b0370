/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Bounds-checked header parsing in the style of xdp-tools' parsing_helpers.h:
 * a cursor moves over the frame, each parse_* checks `pos + size <=
 * data_end` (what the verifier needs) before it hands out a header pointer,
 * and returns the next protocol or -1. Shared by the BPF programs and the
 * host shim, so it only uses what both C environments have. */
#ifndef DUT_PARSING_H
#define DUT_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/in.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define dut_htons(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define dut_ntohs(x) ((__u16)__builtin_bswap16((__u16)(x)))
#else
#define dut_htons(x) ((__u16)(x))
#define dut_ntohs(x) ((__u16)(x))
#endif

struct hdr_cursor {
	void *pos;
};

/* A VLAN tag after the MAC addresses (802.1Q / 802.1ad). */
struct dut_vlanhdr {
	__u16 tci;
	__u16 proto; /* the next EtherType (or TPID) */
};

/* Most VLAN tags parsed before the IPv4 header (QinQ). */
#define DUT_MAX_VLANS 2
#define DUT_VLAN_HLEN 4
#define DUT_ETH_P_8021Q 0x8100
#define DUT_ETH_P_8021AD 0x88A8
#define DUT_ETH_P_QINQ1 0x9100 /* pre-standard QinQ: accepted as the outer tag only */

/* 1 if `proto` (network order) is a TPID we parse past at tag position i
 * (0: outer). */
static __always_inline int dut_is_vlan(int proto, int i)
{
	return proto == dut_htons(DUT_ETH_P_8021Q) || proto == dut_htons(DUT_ETH_P_8021AD) ||
	       (i == 0 && proto == dut_htons(DUT_ETH_P_QINQ1));
}

/* Ethernet header and up to DUT_MAX_VLANS VLAN tags; returns the EtherType
 * after the tags (network order), or -1 when the frame ends inside the
 * Ethernet header or a tag. A third tag's TPID comes back as it is: not
 * IPv4, so not ours. *vlans is the number of tags parsed (0..2); the L3
 * header starts at ETH_HLEN + *vlans * DUT_VLAN_HLEN. */
static __always_inline int parse_ethhdr_vlans(struct hdr_cursor *nh, void *data_end,
					      struct ethhdr **eth, __u32 *vlans)
{
	struct ethhdr *h = nh->pos;
	int proto;

	*vlans = 0;
	if ((void *)(h + 1) > data_end)
		return -1;
	nh->pos = h + 1;
	*eth = h;
	proto = h->h_proto;
#pragma unroll
	for (int i = 0; i < DUT_MAX_VLANS; i++) {
		struct dut_vlanhdr *v = nh->pos;

		if (!dut_is_vlan(proto, i))
			break;
		if ((void *)(v + 1) > data_end)
			return -1;
		proto = v->proto;
		nh->pos = v + 1;
		*vlans += 1;
	}
	return proto;
}

/* Ethernet header (and VLAN tags, see parse_ethhdr_vlans); returns the
 * EtherType after the tags or -1. */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end,
					struct ethhdr **eth)
{
	__u32 vlans;

	return parse_ethhdr_vlans(nh, data_end, eth, &vlans);
}

/* IPv4 header including options; returns the protocol or -1. */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct iphdr **iph)
{
	struct iphdr *h = nh->pos;
	int len;

	if ((void *)(h + 1) > data_end)
		return -1;
	if (h->version != 4 || h->ihl < 5)
		return -1;
	len = h->ihl * 4;
	if (nh->pos + len > data_end)
		return -1;
	nh->pos += len;
	*iph = h;
	return h->protocol;
}

/* The fixed 40-byte IPv6 header (extension headers are not followed);
 * returns the next-header value or -1 (truncated, or version not 6). */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct ipv6hdr **ip6h)
{
	struct ipv6hdr *h = nh->pos;

	if ((void *)(h + 1) > data_end)
		return -1;
	if (h->version != 6)
		return -1;
	nh->pos = h + 1;
	*ip6h = h;
	return h->nexthdr;
}

/* UDP header; returns the UDP length from the header or -1. */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end,
					struct udphdr **udph)
{
	struct udphdr *h = nh->pos;

	if ((void *)(h + 1) > data_end)
		return -1;
	nh->pos = h + 1;
	*udph = h;
	return dut_ntohs(h->len);
}

/* One's complement sum of the 20-byte IPv4 header (no options), folded and
 * inverted: 0 when the header's checksum is right, the checksum to store
 * when the checksum field is zero. */
static __always_inline __u16 ipv4_csum20(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
